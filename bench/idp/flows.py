#!/usr/bin/python3
"""flows.py: closed-loop load for bench/idp/run-flows.sh (standard library only, plus
idpbench.py's /proc snapshots). Every target is http://127.0.0.1; every loop is
bounded by a deadline.

Subcommands (USERS is a file of "username password" lines; REDIRECT is the client's
registered redirect_uri, never contacted: the redirect to it is only parsed):
  code BASE CLIENT_ID SECRET REDIRECT USERNAME PASSWORD
        one complete code flow (PKCE S256, the login form, the code at /token);
        prints the token response (JSON).
  refresh BASE CLIENT_ID SECRET REDIRECT USERS N SECONDS SNAP PID...
        N chains, each seeded by one code flow (not timed) with its own user; then for
        SECONDS each chain, on its own keep-alive connection, POSTs /token
        grant_type=refresh_token with the refresh token of its previous response.
  login BASE CLIENT_ID SECRET REDIRECT USERS N SECONDS SNAP PID...
        N concurrent complete flows for SECONDS, users taken round-robin from USERS
        (flow k of chain i: user (i + k*N) mod len(USERS)); a fresh cookie jar per flow,
        one keep-alive connection per chain (a browser's).
  argon2-cost N
        Argon2id verifications (libsodium through ctypes, crypto_pwhash_str at
        OPSLIMIT_INTERACTIVE / MEMLIMIT_INTERACTIVE, the cost `idpctl user add` uses):
        N in a row on one thread, then N on each of nproc threads at once; prints
        "seq_ms=<mean ms> par_per_s=<verifications/s> par_cpu_ms=<CPU ms each>".
For refresh and login, /proc snapshots of the PIDs' process trees (idpbench.py snap
format) are written to SNAP.snap0 / SNAP.snap1 right around the timed part, and one
line is printed:
  BENCH ok=.. bad=.. non2xx=.. errors=.. duration_us=.. p50_us=.. p99_us=.. client_cpu_s=..
(login adds p50/p99 of each step: authorize_*, login_*, token_*); the first few
failures are printed to stderr.
"""

import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idpbench  # noqa: E402

HOST = "127.0.0.1"
FAILS_SHOWN = 10


class Fail(Exception):
    def __init__(self, what, status=0):
        super().__init__(what)
        self.status = status


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def basic(cid, secret):
    u = urllib.parse.quote(cid, safe="")
    p = urllib.parse.quote(secret, safe="")
    return "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()


class Conn:
    """One keep-alive connection to 127.0.0.1:port, reopened after an error."""

    def __init__(self, port):
        self.port, self.c = port, None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(HOST, self.port, timeout=30)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, r.getheaders(), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError


def code_flow(conn, base, cid, secret, redirect, user, pw, times=None):
    """The browser part and the code redemption; returns the token response (dict)."""
    verifier = b64url(secrets.token_bytes(32))
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_hex(8)
    params = {"response_type": "code", "client_id": cid, "redirect_uri": redirect,
              "scope": "openid profile email", "state": state,
              "code_challenge": challenge, "code_challenge_method": "S256"}
    cookies = {}

    def req(method, url, body=None):
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        h = {}
        if cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        status, headers, data = conn.request(method, path, body, h)
        hd = {}
        for k, v in headers:
            k = k.lower()
            hd[k] = v
            if k == "set-cookie":
                name, _, rest = v.partition("=")
                if re.search(r"max-age=0", v, re.I):
                    cookies.pop(name.strip(), None)
                else:
                    cookies[name.strip()] = rest.split(";")[0]
        return status, hd, data.decode("utf-8", "replace")

    t0 = time.monotonic()
    url = base + "/authorize?" + urllib.parse.urlencode(params)
    status, headers, body = req("GET", url)
    step, q = "authorize", None
    for _ in range(10):
        if status in (302, 303):
            loc = urllib.parse.urljoin(url, headers["location"])
            if loc.startswith(redirect):
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
                break
            url = loc
            status, headers, body = req("GET", loc)
            continue
        if status != 200:
            raise Fail(f"{step}: HTTP {status}: {body[:200]!r}", status)
        m = re.search(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', body, re.S)
        if not m:
            raise Fail(f"{step}: no form: {body[:200]!r}")
        fields = [(html.unescape(a), html.unescape(b)) for a, b in
                  re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', m.group(2))]
        if 'name="password"' in body:
            fields += [("username", user), ("password", pw)]
            step = "login"
        else:
            fields += [("decision", "allow")]
            step = "consent"
        if times is not None and "authorize" not in times:
            times["authorize"] = time.monotonic() - t0
        t1 = time.monotonic()
        url = urllib.parse.urljoin(url, html.unescape(m.group(1)))
        status, headers, body = req("POST", url, urllib.parse.urlencode(fields))
        if times is not None and step == "login":
            times["login"] = time.monotonic() - t1
    if q is None:
        raise Fail("authorize: too many steps")
    if q.get("state") != state or "code" not in q:
        raise Fail(f"redirect without code: {q}")
    t2 = time.monotonic()
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": q["code"],
                                   "redirect_uri": redirect, "code_verifier": verifier})
    status, _, data = conn.request("POST", "/token", form, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": basic(cid, secret)})
    if times is not None:
        times["token"] = time.monotonic() - t2
    if status != 200 or b'"access_token"' not in data:
        raise Fail(f"token: HTTP {status}: {data[:200]!r}", status)
    return json.loads(data)


def port_of(base):
    u = urllib.parse.urlsplit(base)
    if u.hostname != HOST:
        raise SystemExit("flows.py: only http://127.0.0.1")
    return u.port


def read_users(path):
    with open(path) as f:
        return [tuple(line.rstrip("\n").split(" ", 1)) for line in f if line.strip()]


def pct(xs, p):
    if not xs:
        return 0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Run:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat, self.ok, self.bad, self.non2xx, self.errors = [], 0, 0, 0, 0
        self.steps = {"authorize": [], "login": [], "token": []}
        self.fails = []

    def fail(self, e):
        with self.lock:
            if isinstance(e, Fail):
                self.bad += 1
                if not (200 <= e.status < 300) and e.status:
                    self.non2xx += 1
            else:
                self.errors += 1
            if len(self.fails) < FAILS_SHOWN:
                self.fails.append(f"{type(e).__name__}: {e}")


def timed(snap, pids, run, threads):
    idpbench.cmd_snap(snap + ".snap0", *pids)
    c0 = os.times()
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dur = time.monotonic() - t0
    c1 = os.times()
    idpbench.cmd_snap(snap + ".snap1", *pids)
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    line = ("BENCH ok=%d bad=%d non2xx=%d errors=%d duration_us=%d p50_us=%d p99_us=%d "
            "client_cpu_s=%.2f" % (run.ok, run.bad, run.non2xx, run.errors, dur * 1e6,
                                   pct(run.lat, 50) * 1e6, pct(run.lat, 99) * 1e6, cpu))
    for k, v in run.steps.items():
        if v:
            line += " %s_p50_us=%d %s_p99_us=%d" % (k, pct(v, 50) * 1e6, k, pct(v, 99) * 1e6)
    print(line, flush=True)
    for f in run.fails:
        sys.stderr.write("flows.py: failure: %s\n" % f)
    return 0


def cmd_code(base, cid, secret, redirect, user, pw):
    print(json.dumps(code_flow(Conn(port_of(base)), base, cid, secret, redirect, user, pw)))
    return 0


def cmd_refresh(base, cid, secret, redirect, users, n, seconds, snap, *pids):
    n, seconds, port = int(n), float(seconds), port_of(base)
    users = read_users(users)
    auth = basic(cid, secret)
    seeds = []
    for i in range(n):
        u, p = users[i % len(users)]
        seeds.append(code_flow(Conn(port), base, cid, secret, redirect, u, p)["refresh_token"])
    run = Run()
    deadline = [0.0]

    def chain(rt):
        conn = Conn(port)
        h = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}
        while time.monotonic() < deadline[0]:
            body = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": rt})
            t = time.monotonic()
            try:
                status, _, data = conn.request("POST", "/token", body, h)
            except Exception as e:  # noqa: BLE001
                run.fail(e)
                return
            dt = time.monotonic() - t
            if status != 200 or b'"refresh_token"' not in data:
                run.fail(Fail(f"refresh: HTTP {status}: {data[:200]!r}", status))
                return  # the chain is broken: its token may be spent
            rt = json.loads(data)["refresh_token"]
            with run.lock:
                run.ok += 1
                run.lat.append(dt)

    threads = [threading.Thread(target=chain, args=(rt,)) for rt in seeds]
    deadline[0] = time.monotonic() + seconds
    return timed(snap, pids, run, threads)


def cmd_login(base, cid, secret, redirect, users, n, seconds, snap, *pids):
    n, seconds, port = int(n), float(seconds), port_of(base)
    users = read_users(users)
    run = Run()
    deadline = [0.0]

    def chain(i):
        conn = Conn(port)
        k = 0
        while time.monotonic() < deadline[0]:
            u, p = users[(i + k * n) % len(users)]
            k += 1
            times = {}
            t = time.monotonic()
            try:
                code_flow(conn, base, cid, secret, redirect, u, p, times)
            except Exception as e:  # noqa: BLE001
                run.fail(e)
                conn = Conn(port)
                continue
            dt = time.monotonic() - t
            with run.lock:
                run.ok += 1
                run.lat.append(dt)
                for s, v in times.items():
                    run.steps[s].append(v)

    threads = [threading.Thread(target=chain, args=(i,)) for i in range(n)]
    deadline[0] = time.monotonic() + seconds
    return timed(snap, pids, run, threads)


def cmd_argon2_cost(n):
    import ctypes
    import ctypes.util
    n = int(n)
    name = ctypes.util.find_library("sodium") or "libsodium.so.23"
    na = ctypes.CDLL(name)
    if na.sodium_init() < 0:
        raise SystemExit("flows.py: sodium_init failed")
    ops = ctypes.c_ulonglong(na.crypto_pwhash_opslimit_interactive())
    na.crypto_pwhash_memlimit_interactive.restype = ctypes.c_size_t
    mem = ctypes.c_size_t(na.crypto_pwhash_memlimit_interactive())
    out = ctypes.create_string_buffer(na.crypto_pwhash_strbytes())
    pw = secrets.token_hex(12).encode()
    if na.crypto_pwhash_str(out, pw, ctypes.c_ulonglong(len(pw)), ops, mem) != 0:
        raise SystemExit("flows.py: crypto_pwhash_str failed")
    bad = []

    def verify(k):
        for _ in range(k):  # ctypes lets go of the GIL for the call
            if na.crypto_pwhash_str_verify(out, pw, ctypes.c_ulonglong(len(pw))) != 0:
                bad.append(1)

    t0 = time.monotonic()
    verify(n)
    seq = (time.monotonic() - t0) * 1000 / n
    nt = os.cpu_count() or 1
    threads = [threading.Thread(target=verify, args=(n,)) for _ in range(nt)]
    c0, t0 = os.times(), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt, c1 = time.monotonic() - t0, os.times()
    if bad:
        raise SystemExit("flows.py: crypto_pwhash_str_verify failed")
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    print("seq_ms=%.1f par_per_s=%.1f par_cpu_ms=%.1f" % (seq, n * nt / dt, cpu * 1000 / (n * nt)))
    return 0


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    table = {"code": cmd_code, "refresh": cmd_refresh, "login": cmd_login,
             "argon2-cost": cmd_argon2_cost}
    cmd = sys.argv[1]
    if cmd not in table:
        sys.stderr.write(__doc__)
        return 2
    return table[cmd](*sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
