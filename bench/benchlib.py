#!/usr/bin/python3
"""benchlib.py: small helpers for bench/run.sh (standard library only).

Subcommands:
  ready LOG PID TIMEOUT     wait until the server PID has printed its
                            "listening on http://127.0.0.1:PORT" line to LOG and
                            answers GET /jwks with 200; print PORT. Exit 1 if PID
                            dies or TIMEOUT seconds pass.
  startup RUNS OUT LABEL=CMD...
                            time exec -> first 200 on GET /jwks, RUNS rounds; each
                            round runs every LABEL once, in the order given (so the
                            servers alternate). CMD is split with shlex; "{port}"
                            in it is replaced by a free loopback port. Appends
                            "label<TAB>round<TAB>ms" rows to OUT. Every child is
                            stopped (SIGTERM, then SIGKILL) before the next starts.
  load PORT N               N client_credentials POST /token requests over one
                            keep-alive connection; exit 1 unless all are 200 with
                            an access_token.
  maps PID N                the N mapped files (or [heap], [anon] ...) of PID with
                            the largest Rss, from /proc/PID/smaps: "name=KB, ...".
  summ                      numbers on stdin -> "median min max n".
  stat PID                  utime+stime of PID in clock ticks (/proc/PID/stat).
  snap PID                  "PROC BUSY NS": utime+stime ticks of PID, busy
                            (non-idle, non-iowait) ticks of all CPUs from the
                            first line of /proc/stat, and CLOCK_MONOTONIC in ns.

Every network target is 127.0.0.1; every loop is bounded by a deadline.
"""

import http.client
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
POLL = 0.002  # seconds between readiness probes


def get_jwks(port, timeout=5.0):
    """One GET /jwks on a fresh connection. True on a 200 with a "keys" body."""
    try:
        s = socket.create_connection((HOST, port), timeout=timeout)
    except OSError:
        return False
    try:
        s.sendall(b"GET /jwks HTTP/1.1\r\nHost: %s:%d\r\n"
                  b"Connection: close\r\n\r\n" % (HOST.encode(), port))
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.startswith(b"HTTP/1.1 200") and b'"keys"' in data
    except OSError:
        return False
    finally:
        s.close()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of run.sh is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmd_ready(log, pid, timeout):
    pid = int(pid)
    deadline = time.monotonic() + float(timeout)
    pat = re.compile(r"listening on https?://127\.0\.0\.1:(\d+)")
    port = None
    while time.monotonic() < deadline:
        if not alive(pid):
            sys.stderr.write("benchlib: server pid %d exited before ready\n" % pid)
            return 1
        if port is None:
            try:
                with open(log) as f:
                    m = pat.search(f.read())
                if m:
                    port = int(m.group(1))
            except OSError:
                pass
        if port is not None and get_jwks(port):
            print(port)
            return 0
        time.sleep(POLL)
    sys.stderr.write("benchlib: server pid %d not ready after %ss\n" % (pid, timeout))
    return 1


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def startup_once(argv, timeout=30.0):
    """Milliseconds from just before exec to the first 200 on GET /jwks."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = t0 + timeout
            while True:
                if get_jwks(port):
                    return (time.perf_counter() - t0) * 1000.0
                if p.poll() is not None:
                    err.seek(0)
                    raise RuntimeError("%s exited with %s before ready: %s" % (
                        argv[0], p.returncode,
                        err.read().decode(errors="replace").strip()[:500]))
                if time.perf_counter() > deadline:
                    raise RuntimeError("%s not ready after %ss" % (argv, timeout))
                time.sleep(POLL)
        finally:
            stop(p)


def cmd_startup(runs, out, *cases):
    parsed = []
    for c in cases:
        label, _, cmd = c.partition("=")
        parsed.append((label, shlex.split(cmd)))
    with open(out, "a") as f:
        for r in range(1, int(runs) + 1):
            for label, argv in parsed:
                try:
                    ms = startup_once(argv)
                except RuntimeError as e:
                    sys.stderr.write("benchlib: startup %s: %s\n" % (label, e))
                    return 1
                f.write("%s\t%d\t%.3f\n" % (label, r, ms))
                f.flush()
    return 0


def cmd_load(port, n):
    port, n = int(port), int(n)
    body = "grant_type=client_credentials&scope=a"
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    ok = 0
    for _ in range(n):
        c.request("POST", "/token", body, hdrs)
        r = c.getresponse()
        data = r.read()
        if r.status == 200 and b'"access_token"' in data:
            ok += 1
        if r.will_close:
            c.close()
            c = http.client.HTTPConnection(HOST, port, timeout=10)
    c.close()
    print(ok)
    return 0 if ok == n else 1


def cmd_maps(pid, n):
    rss = {}
    name = None
    with open("/proc/%s/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and ":" not in parts[0]:
                name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
            elif parts[0] == "Rss:":
                rss[name] = rss.get(name, 0) + int(parts[1])
    top = sorted(rss.items(), key=lambda kv: -kv[1])[:int(n)]
    print(", ".join("%s %d KB" % kv for kv in top))
    return 0


def cmd_summ():
    xs = [float(x) for x in sys.stdin.read().split()]
    if not xs:
        print("nan nan nan 0")
        return 1
    print("%.3f %.3f %.3f %d" % (statistics.median(xs), min(xs), max(xs), len(xs)))
    return 0


def cmd_stat(pid):
    print(proc_ticks(pid))
    return 0


def proc_ticks(pid):
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def cmd_snap(pid):
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is inside user)
    busy = sum(v[:8]) - v[3] - v[4]
    print(proc_ticks(pid), busy, time.monotonic_ns())
    return 0


def main():
    # run.sh's trap sends SIGTERM: unwind so that every "finally: stop(p)" runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    table = {"ready": cmd_ready, "startup": cmd_startup, "load": cmd_load,
             "summ": cmd_summ, "maps": cmd_maps, "stat": cmd_stat, "snap": cmd_snap}
    if cmd not in table:
        sys.stderr.write(__doc__)
        return 2
    return table[cmd](*args)


if __name__ == "__main__":
    sys.exit(main())
