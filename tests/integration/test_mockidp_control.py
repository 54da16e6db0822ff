#!/usr/bin/python3
"""test_mockidp_control.py: mockidp's own features, driven over real HTTP against the
real binary: --config, the /_mockidp/ control API, `mockidp token`, --issuer/--ttl,
concurrent and abandoned /token requests (signed on a thread pool), HTTPS, and bad
input (each must get a clear error while the server keeps serving).

Usage: test_mockidp_control.py MOCKIDP_BINARY
Tokens are verified with PyJWT (Debian python3-jwt) against the server's own JWKS."""

import base64
import concurrent.futures
import http.client
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import jwt

MOCKIDP = os.path.abspath(sys.argv[1])
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name} {detail}")


class Server:
    """A mockidp on 127.0.0.1 and a free port (-p 0), ready when it prints its port."""

    def __init__(self, *args, tls=False):
        self.proc = subprocess.Popen([MOCKIDP, "-a", "127.0.0.1", "-p", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.tls = tls
        self.port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("OAuth 2 server listening on "):
                self.port = int(line.rsplit(":", 1)[1])
            if line.startswith("OAuth 2 issuer is "):
                self.issuer = line.split(" is ", 1)[1].strip()
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("mockidp did not start: " + self.proc.stderr.read())

    def request(self, method, path, body=None, headers=None):
        if self.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r, data

    def json(self, method, path, body=None, headers=None):
        st, r, data = self.request(method, path, body, headers)
        try:
            return st, r, json.loads(data)
        except ValueError:
            return st, r, data

    def token(self, form):
        return self.json("POST", "/token", form,
                         {"Content-Type": "application/x-www-form-urlencoded"})

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.proc.returncode


def verify(srv, token, **kw):
    """Verify with PyJWT against the server's own JWKS, as a relying party would."""
    ctx = None
    if srv.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    client = jwt.PyJWKClient(f"{'https' if srv.tls else 'http'}://127.0.0.1:{srv.port}/jwks",
                             ssl_context=ctx) if "ssl_context" in jwt.PyJWKClient.__init__.__code__.co_varnames \
        else jwt.PyJWKClient(f"http://127.0.0.1:{srv.port}/jwks")
    key = client.get_signing_key_from_jwt(token)
    alg = jwt.get_unverified_header(token)["alg"]
    return jwt.decode(token, key.key, algorithms=[alg], issuer=srv.issuer,
                      options={"verify_aud": False}, **kw)


def code_flow(srv, nonce="n-1"):
    st, r, _ = srv.request("GET", f"/authorize?response_type=code&redirect_uri=http://rp/cb&nonce={nonce}")
    code = r.getheader("Location").split("code=")[1].split("&")[0]
    return srv.token(f"grant_type=authorization_code&code={code}&client_id=rp")


tmp = tempfile.mkdtemp(prefix="mockidp-test-")
cfg_path = os.path.join(tmp, "config.json")
with open(cfg_path, "w") as f:
    json.dump({"ttl": 120, "claims": {"access_token": {"tenant": "t1"}},
               "userinfo": {"sub": "cfg-user"}}, f)

# --- --config and the control API -------------------------------------------------
srv = Server("--config", cfg_path)
try:
    st, _, s = srv.json("GET", "/_mockidp")
    check("GET /_mockidp shows the --config settings",
          st == 200 and s["ttl"] == 120 and s["claims"]["access_token"] == {"tenant": "t1"}, s)

    st, _, t = srv.token("grant_type=client_credentials")
    claims = verify(srv, t["access_token"])
    check("--config claims and ttl reach the access token",
          claims["tenant"] == "t1" and claims["exp"] - claims["iat"] == 120 and t["expires_in"] == 120,
          claims)

    st, _, u = srv.json("GET", "/userinfo")
    check("--config userinfo", u == {"sub": "cfg-user"}, u)

    st, _, s = srv.json("POST", "/_mockidp/claims",
                        {"access_token": {"sub": "alice", "roles": ["admin"], "nbf": None},
                         "id_token": {"email": "alice@example.com"}})
    check("POST /_mockidp/claims accepted", st == 200, s)
    st, _, t = code_flow(srv)
    at = verify(srv, t["access_token"])
    idt = verify(srv, t["id_token"], audience="rp")
    check("persistent claims override and add", at["sub"] == "alice" and at["roles"] == ["admin"], at)
    check("a null claim removes it", "nbf" not in at, at)
    check("persistent claims replace the earlier set", "tenant" not in at, at)
    check("id_token claims", idt["email"] == "alice@example.com" and idt["nonce"] == "n-1", idt)

    srv.json("POST", "/_mockidp/claims", {"access_token": {"sub": "bob"}, "once": True})
    _, _, t1 = srv.token("grant_type=client_credentials")
    _, _, t2 = srv.token("grant_type=client_credentials")
    c1, c2 = verify(srv, t1["access_token"]), verify(srv, t2["access_token"])
    check("once claims apply to the next response only",
          c1["sub"] == "bob" and c2["sub"] == "alice", (c1, c2))

    st, _, _ = srv.json("DELETE", "/_mockidp/claims")
    _, _, t = srv.token("grant_type=client_credentials")
    c = verify(srv, t["access_token"])
    check("DELETE /_mockidp/claims", st == 200 and "sub" not in c and "nbf" in c, c)

    st, _, _ = srv.json("PUT", "/_mockidp/userinfo", {"sub": "carol", "email": "c@example.com"})
    _, r, u = srv.json("GET", "/userinfo")
    check("PUT /_mockidp/userinfo", st == 200 and u == {"sub": "carol", "email": "c@example.com"}, u)

    st, _, _ = srv.json("POST", "/_mockidp/fail",
                        {"route": "/token", "status": 503,
                         "body": {"error": "temporarily_unavailable"}, "count": 2})
    results = [srv.token("grant_type=client_credentials") for _ in range(3)]
    check("forced failure for count responses, then normal",
          [x[0] for x in results] == [503, 503, 200]
          and results[0][2] == {"error": "temporarily_unavailable"}
          and results[0][1].getheader("Access-Control-Allow-Origin") == "*",
          [x[0] for x in results])
    srv.json("POST", "/_mockidp/fail", {"route": "/jwks", "status": 500, "body": "boom"})
    st, r, body = srv.request("GET", "/jwks")
    check("forced failure with a text body", st == 500 and body == b"boom"
          and r.getheader("Content-Type").startswith("text/plain"), (st, body))
    st, _, _ = srv.request("GET", "/jwks")
    check("failure count defaults to one", st == 200)

    # Bad input to the control API: a clear 400, nothing changed, still serving.
    for name, body in [("malformed JSON", "{not json"), ("duplicate keys", '{"route":"/token","route":"/jwks","status":500}'),
                       ("unknown member", '{"route":"/token","status":500,"colour":"red"}'),
                       ("unknown route", '{"route":"/nope","status":500}'),
                       ("bad status", '{"route":"/token","status":"500"}'),
                       ("array", '[1,2]')]:
        st, r, b = srv.json("POST", "/_mockidp/fail", body, {"Content-Type": "application/json"})
        check(f"control API rejects {name}", st == 400 and r.getheader("Content-Type").startswith("application/problem+json")
              and isinstance(b, dict) and b.get("detail"), (st, b))
    st, _, b = srv.json("POST", "/_mockidp/claims", '{"access_token": 5}', {"Content-Type": "application/json"})
    check("claims must be objects", st == 400, b)
    st, _, b = srv.json("POST", "/_mockidp/config", '{"ttl": -5}', {"Content-Type": "application/json"})
    check("config rejects a bad ttl", st == 400 and "ttl" in b["detail"], b)
    st, _, b = srv.json("GET", "/_mockidp/nothing")
    check("unknown control route is 404", st == 404)
    st, r, _ = srv.json("GET", "/_mockidp/reset")
    check("wrong method on a control route is 405", st == 405 and r.getheader("Allow") == "POST")
    st, _, _ = srv.token("grant_type=client_credentials")
    check("still serving after bad control input", st == 200)

    st, _, s = srv.json("POST", "/_mockidp/config", {"ttl": 30, "issuer": "https://idp.example"})
    _, _, t = srv.token("grant_type=client_credentials")
    p = jwt.decode(t["access_token"], options={"verify_signature": False})
    check("POST /_mockidp/config changes issuer and ttl",
          p["iss"] == "https://idp.example" and p["exp"] - p["iat"] == 30, p)
    st, _, d = srv.json("GET", "/.well-known/openid-configuration")
    check("discovery follows the issuer", d["issuer"] == "https://idp.example"
          and d["token_endpoint"] == "https://idp.example/token", d)

    st, _, s = srv.json("POST", "/_mockidp/reset")
    _, _, t = srv.token("grant_type=client_credentials")
    c = verify(srv, t["access_token"])
    _, _, u = srv.json("GET", "/userinfo")
    check("reset returns to the start-up settings",
          st == 200 and c["tenant"] == "t1" and c["exp"] - c["iat"] == 120 and u == {"sub": "cfg-user"}
          and c["iss"] == srv.issuer, (c, u))

    # Bad input on the OAuth routes.
    # The server answers 413 as soon as it sees the length, without reading the body.
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: %d\r\n\r\ngrant_type=client_credentials&x=" % (2 << 20))
    resp = s.recv(4096)
    s.close()
    check("an oversized body gets 413", resp.startswith(b"HTTP/1.1 413"), resp[:40])
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: 29\r\nContent-Length: 5\r\n\r\ngrant_type=client_credentials")
    resp = s.recv(4096)
    s.close()
    check("two Content-Length headers get 400", resp.startswith(b"HTTP/1.1 400"), resp[:40])
    st, _, b = srv.token("grant_type=client_credentials&grant_type=password")
    check("a repeated grant_type is refused", st == 400 and b["detail"] == "Invalid 'grant_type' type", b)
    st, _, b = srv.token("grant_type=client_credentials&code=%00")
    check("a NUL byte in a form is refused", st == 400, b)
    st, _, b = srv.json("POST", "/token", '{"grant_type": "client_credentials", "scope": {"a": 1}}',
                        {"Content-Type": "application/json"})
    check("a JSON scope object is refused", st == 400 and b["detail"] == "Invalid 'scope' type", b)
    st, _, _ = srv.request("GET", "/jwks")
    check("still serving after bad OAuth input", st == 200)
finally:
    check("SIGTERM stops the server cleanly", srv.stop() == 0)

# --- flags ---------------------------------------------------------------------------
jwk_path = os.path.join(tmp, "key.json")
out = subprocess.run([MOCKIDP, "token", "--alg", "ES256", "--save-jwk", "--claim", "sub=alice",
                      "--claim", 'roles=["a","b"]', "--claim", "n=42", "--claim", "nbf=null",
                      "--ttl", "60", "--issuer", "https://issuer.test"],
                     cwd=tmp, capture_output=True, text=True)
tok = out.stdout.strip()
hdr = jwt.get_unverified_header(tok)
saved = os.path.join(tmp, hdr["kid"] + ".json")
check("mockidp token --save-jwk writes <kid>.json", out.returncode == 0 and os.path.exists(saved), out.stderr)
os.rename(saved, jwk_path)
key = jwt.PyJWK(json.load(open(jwk_path)))
p = jwt.decode(tok, key.key, algorithms=["ES256"], issuer="https://issuer.test")
check("mockidp token claims", p["sub"] == "alice" and p["roles"] == ["a", "b"] and p["n"] == 42
      and "nbf" not in p and p["exp"] - p["iat"] == 60 and hdr["alg"] == "ES256" and hdr["typ"] == "JWT", p)

srv = Server("--jwk", jwk_path, "--issuer", "http://idp.internal:9000", "--ttl", "300")
try:
    st, _, t = srv.token("grant_type=client_credentials")
    c = verify(srv, t["access_token"])
    check("--jwk, --issuer and --ttl", srv.issuer == "http://idp.internal:9000" and
          c["iss"] == "http://idp.internal:9000" and c["exp"] - c["iat"] == 300 and
          jwt.get_unverified_header(t["access_token"])["kid"] == hdr["kid"], c)
    out = subprocess.run([MOCKIDP, "token", "--jwk", jwk_path, "--claim", "sub=x", "--issuer", srv.issuer],
                         capture_output=True, text=True)
    c = verify(srv, out.stdout.strip())
    check("a token minted offline verifies against the server's JWKS", c["sub"] == "x", c)
finally:
    srv.stop()

# --- many /token requests at once: signing runs on a thread pool ----------------------
out = subprocess.run([MOCKIDP, "token", "--alg", "RS256", "--save-jwk"], cwd=tmp,
                     capture_output=True, text=True)
rs_kid = jwt.get_unverified_header(out.stdout.strip())["kid"]
es_kid = hdr["kid"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token_form(i):
    """Every third request also gets an id token (two signatures in one response)."""
    if i % 3 == 0:
        return f"grant_type=password&username=user{i}&client_id=rp"
    return f"grant_type=client_credentials&scope=s{i}"


def abort_request(port, i):
    """Send a /token request and close at once: FIN for even i, RST for odd i."""
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    body = token_form(i).encode()
    s.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    s.close()


def token_client(port, first, n):
    """n requests first, first+16, ... on one persistent connection, plus one request
    on a connection closed right after sending it. Returns (i, status, body) triples."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    res = []
    for k in range(n):
        i = first + 16 * k
        if k == 2:
            abort_request(port, first)
        c.request("POST", "/token", body=token_form(i), headers=FORM)
        r = c.getresponse()
        res.append((i, r.status, r.read()))
    c.close()
    return res


srv = Server("--jwk", os.path.join(tmp, rs_kid + ".json"), "--jwk", jwk_path)
try:
    kids = []
    for form in ["grant_type=client_credentials", "grant_type=password&client_id=rp",
                 "grant_type=client_credentials"]:
        _, _, t = srv.token(form)
        kids += [jwt.get_unverified_header(t[k])["kid"] for k in ("access_token", "id_token") if k in t]
    check("keys sign in turn, the access token before the id token",
          kids == [rs_kid, es_kid, rs_kid, es_kid], kids)

    keys = {k["kid"]: jwt.PyJWK(k) for k in srv.json("GET", "/jwks")[2]["keys"]}
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        # 200 requests from 16 threads: 8 threads send 13, 8 send 12.
        futs = [ex.submit(token_client, srv.port, t, 13 if t < 8 else 12) for t in range(16)]
        results = [x for f in futs for x in f.result()]
    good, bad = 0, []
    for i, st, data in results:
        try:
            t = json.loads(data)
            h = jwt.get_unverified_header(t["access_token"])
            at = jwt.decode(t["access_token"], keys[h["kid"]].key, algorithms=[h["alg"]],
                            issuer=srv.issuer, options={"verify_aud": False})
            if i % 3 == 0:
                h = jwt.get_unverified_header(t["id_token"])
                idt = jwt.decode(t["id_token"], keys[h["kid"]].key, algorithms=[h["alg"]],
                                 issuer=srv.issuer, audience="rp")
                ok = at["sub"] == f"user{i}" and idt["sub"] == "johndoe" and "refresh_token" in t
            else:
                ok = at["scope"] == f"s{i}" and t["scope"] == f"s{i}" and "id_token" not in t
            if st == 200 and ok:
                good += 1
            else:
                bad.append((i, st, data[:200]))
        except Exception as e:
            bad.append((i, st, repr(e), data[:200]))
    check("200 concurrent /token responses all verify, each with its own claims",
          len(results) == 200 and good == 200, (len(results), bad[:3]))
    st, _, t = srv.token("grant_type=client_credentials")
    st2, _, _ = srv.request("GET", "/jwks")
    check("still serving after concurrent and abandoned requests",
          st == 200 and st2 == 200 and verify(srv, t["access_token"])["iss"] == srv.issuer)
finally:
    check("SIGTERM after concurrent requests stops the server cleanly", srv.stop() == 0)

# Stopping while tokens are being signed: queued jobs are dropped, nothing leaks
# (the ASan build's LeakSanitizer would turn the exit status non-zero).
srv = Server("--jwk", os.path.join(tmp, rs_kid + ".json"))
socks = []
try:
    body = token_form(0).encode()
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        socks.append(s)
    time.sleep(0.02)
finally:
    rc = srv.stop()
    err = srv.proc.stderr.read()
    for s in socks:
        s.close()
check("SIGTERM with tokens in flight stops the server cleanly", rc == 0, (rc, err[-2000:]))

# A JWK whose alg is "Ed25519" (RFC 9864's name for EdDSA over Ed25519) signs with that
# header alg, as oauth2-mock-server does.
out = subprocess.run([MOCKIDP, "token", "--alg", "EdDSA", "--save-jwk"], cwd=tmp,
                     capture_output=True, text=True)
edkid = jwt.get_unverified_header(out.stdout.strip())["kid"]
ed = json.load(open(os.path.join(tmp, edkid + ".json")))
ed["alg"] = "Ed25519"
ed_path = os.path.join(tmp, "ed25519.json")
json.dump(ed, open(ed_path, "w"))
srv = Server("--jwk", ed_path)
try:
    st, _, t = srv.token("grant_type=password&username=alice")
    check("a key with alg Ed25519 signs access and id tokens",
          st == 200 and jwt.get_unverified_header(t["access_token"])["alg"] == "Ed25519"
          and jwt.get_unverified_header(t["id_token"])["alg"] == "Ed25519", (st, t))
finally:
    srv.stop()

# HTTPS with -c/-k.
cert, keyf = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", keyf, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
               check=True, capture_output=True)
srv = Server("-c", cert, "-k", keyf, "--jwk", jwk_path, tls=True)
try:
    st, _, d = srv.json("GET", "/.well-known/openid-configuration")
    check("HTTPS: discovery over TLS with an https issuer",
          st == 200 and d["issuer"] == f"https://localhost:{srv.port}", d)
finally:
    srv.stop()

# Bad command lines: a one-line error and exit status 1.
bad_alg = os.path.join(tmp, "hs.json")
json.dump({"kty": "oct", "k": "AAAA", "alg": "HS256"}, open(bad_alg, "w"))
pub = os.path.join(tmp, "pub.json")
j = json.load(open(jwk_path))
json.dump({k: v for k, v in j.items() if k != "d"}, open(pub, "w"))
noalg = os.path.join(tmp, "noalg.json")
json.dump({k: v for k, v in j.items() if k != "alg"}, open(noalg, "w"))
notjson = os.path.join(tmp, "notjson.json")
open(notjson, "w").write("{nope")
for name, args, needle in [
    ("missing --jwk file", ["--jwk", os.path.join(tmp, "absent.json")], "absent.json"),
    ("unreadable --jwk file", ["--jwk", tmp], tmp),
    ("--jwk file that is not JSON", ["--jwk", notjson], "notjson.json"),
    ("--jwk with an HS256 key", ["--jwk", bad_alg], 'Unsupported JWK "alg" value ("HS256")'),
    ("--jwk without alg", ["--jwk", noalg], 'Unspecified JWK "alg" property'),
    ("--jwk with a public key", ["--jwk", pub], 'No "private" key related data'),
    ("bad port", ["-p", "abc"], "Invalid port number"),
    ("port out of range", ["-p", "70000"], "Invalid port number"),
    ("unknown flag", ["--frobnicate"], "Unrecognized option '--frobnicate'"),
    ("missing value", ["-p"], "needs a value"),
    ("cert without key", ["-c", cert], "Both key and cert need to be supplied"),
    ("bad --ttl", ["--ttl", "soon"], "--ttl"),
    ("bad --config", ["--config", notjson], "notjson.json"),
]:
    r = subprocess.run([MOCKIDP, "-a", "127.0.0.1", "-p", "0", *args] if args[0] != "-p" else [MOCKIDP, *args],
                       capture_output=True, text=True, timeout=20)
    first = r.stderr.strip().splitlines()[0] if r.stderr.strip() else ""
    check(f"bad arguments: {name}", r.returncode == 1 and needle in first and "Traceback" not in r.stderr,
          (r.returncode, r.stderr))
r = subprocess.run([MOCKIDP, "--help"], capture_output=True, text=True)
check("--help documents the control API and token command",
      r.returncode == 0 and "/_mockidp/claims" in r.stdout and "mockidp token" in r.stdout)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
