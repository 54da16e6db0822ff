#!/usr/bin/python3
"""idpbench.py: helpers for bench/idp/run.sh (standard library only, plus
tests/lib/pgcluster.py for the throwaway PostgreSQL).

Subcommands:
  pg-start DBNAME...        initdb + start a throwaway cluster (tests/lib/pgcluster.py:
                            Unix socket only, fsync off) and create the databases.
                            Prints shell assignments: PG_DIR, PG_PID (the postmaster,
                            to be stopped by its PID: SIGINT = fast shutdown),
                            PG_CONNINFO_<n> for each DBNAME in order (1, 2, ...).
  pg-wait-gone PID DIR      after a signal to the postmaster: wait (bounded, 30 s)
                            until it has exited, then remove DIR.
  port                      a free 127.0.0.1 TCP port.
  ready URL PID TIMEOUT     wait until GET URL (127.0.0.1 only) answers 200; exit 1
                            if PID dies or TIMEOUT seconds pass.
  fetch URL OUT             GET URL and write the body bytes exactly to OUT.
  headers URL               GET URL and print the status line and headers.
  snap OUT PID...            write to OUT (JSON) for each root PID its whole process
                            tree's utime+stime in clock ticks and its PIDs, for the
                            first root also by role (idp: parent, signer threads,
                            workers; see roles()), the busy ticks of all CPUs from
                            /proc/stat and CLOCK_MONOTONIC in ns.
  diff A B OK               "k=v ..." from two snapshots around a run with OK
                            successful responses: CPU per response of each tree
                            and role, worker and signer-thread shares, busy ticks,
                            window seconds (see cmd_diff).
  roles PID                 the idp parent PID's children by role: "signer PID",
                            "worker PID" lines.
  summ                      numbers on stdin -> "median min max n".

Every network target is 127.0.0.1; every loop is bounded by a deadline.
"""

import http.client
import json
import os
import signal
import socket
import statistics
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"


def _url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or u.hostname != HOST:
        raise SystemExit("idpbench: only http://127.0.0.1 URLs: %r" % url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    return u.port or 80, path


def get(url, timeout=5.0):
    port, path = _url(url)
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        c.close()


# ---------------------------------------------------------------- PostgreSQL

def cmd_pg_start(*dbnames):
    sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
    from pgcluster import PgCluster  # noqa: E402

    if not dbnames:
        raise SystemExit("idpbench: pg-start needs at least one DBNAME")
    pg = PgCluster(dbname=dbnames[0])
    try:
        pg.start()
        for name in dbnames[1:]:
            pg._run("createdb", "-h", pg.dir, "-p", str(pg.port), "-U", pg.user, name)
        with open(os.path.join(pg.data, "postmaster.pid")) as f:
            pid = int(f.readline())
    except BaseException:
        pg.stop("immediate")
        import shutil
        shutil.rmtree(pg.dir, ignore_errors=True)
        raise
    print("PG_DIR=%s" % pg.dir)
    print("PG_PID=%d" % pid)
    print("PG_BINDIR=%s" % pg.bindir)
    for i, name in enumerate(dbnames, 1):
        print("PG_CONNINFO_%d='host=%s port=%d dbname=%s user=%s'" % (
            i, pg.dir, pg.port, name, pg.user))
    return 0


def cmd_pg_wait_gone(pid, d):
    pid = int(pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        sys.stderr.write("idpbench: postmaster %d still there after 30 s; SIGQUIT\n" % pid)
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            pass
        time.sleep(1)
    if d and os.path.basename(d).startswith("idp-pg-"):
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    return 0


# ---------------------------------------------------------------- HTTP

def cmd_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        print(s.getsockname()[1])
    return 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmd_ready(url, pid, timeout):
    pid = int(pid)
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        if not alive(pid):
            sys.stderr.write("idpbench: pid %d exited before %s answered\n" % (pid, url))
            return 1
        try:
            if get(url, timeout=2)[0] == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.02)
    sys.stderr.write("idpbench: %s not 200 after %s s\n" % (url, timeout))
    return 1


def cmd_fetch(url, out):
    status, _, body = get(url)
    if status != 200:
        sys.stderr.write("idpbench: GET %s: %d\n" % (url, status))
        return 1
    with open(out, "wb") as f:
        f.write(body)
    return 0


def cmd_headers(url):
    status, headers, body = get(url)
    print(status)
    for k, v in headers:
        print("%s: %s" % (k, v))
    print("(body %d bytes)" % len(body))
    return 0


# ---------------------------------------------------------------- /proc

def stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def all_ppids():
    """pid -> ppid for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                out[int(d)] = int(stat_fields(int(d))[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree(root, ppids):
    """root and all its descendants."""
    kids = {}
    for p, pp in ppids.items():
        kids.setdefault(pp, []).append(p)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def ticks(pid):
    try:
        f = stat_fields(pid)
    except OSError:
        return 0
    # f[0] is field 3 (state); utime is field 14, stime field 15.
    return int(f[11]) + int(f[12])


def vmlck_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmLck:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def roles(parent, ppids):
    """idp's children by role. The signer is the only process that keeps key material
    in sodium_malloc'ed (mlocked) memory, so it is the child with VmLck > 0; if none
    has, the first-started child (the parent forks the signer first)."""
    kids = sorted((p for p, pp in ppids.items() if pp == parent),
                  key=lambda p: int(stat_fields(p)[19]) if alive(p) else 0)
    signer = [p for p in kids if vmlck_kb(p) > 0]
    if len(signer) != 1:
        signer = kids[:1]
    workers = [p for p in kids if p not in signer]
    return signer, workers


def cmd_roles(pid):
    s, w = roles(int(pid), all_ppids())
    for p in s:
        print("signer", p)
    for p in w:
        print("worker", p)
    return 0


def thread_ticks(pid):
    """tid -> utime+stime of each thread of pid."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                v = f.read().rsplit(")", 1)[1].split()
            out[t] = int(v[11]) + int(v[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


def snapshot(pids):
    ppids = all_ppids()
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    snap = {"busy": sum(v[:8]) - v[3] - v[4],  # user nice system idle iowait irq softirq steal
            "ns": time.monotonic_ns(), "trees": []}
    for root in pids:
        members = tree(root, ppids) if alive(root) else []
        snap["trees"].append({"pids": sorted(members),
                              "ticks": sum(ticks(p) for p in members)})
    root = pids[0]
    if alive(root):
        signer, workers = roles(root, ppids)
        snap["parent"] = ticks(root)
        snap["signer"] = {str(p): thread_ticks(p) for p in signer}
        snap["workers"] = {str(p): sum(ticks(q) for q in tree(p, ppids)) for p in workers}
    return snap


def cmd_snap(out, *pids):
    with open(out, "w") as f:
        json.dump(snapshot([int(p) for p in pids]), f)
    return 0


def cmd_diff(a, b, ok):
    """k=v lines from two snapshots (snap) around a run with ok successful responses:
    busy and ticks in clock ticks, window in s, *_us in µs of CPU per ok response;
    worker_split / signer_threads: the share (%) of each worker / of each signer
    thread in their total, largest first; changed=1 if the server's process tree
    changed (a child restarted)."""
    with open(a) as f:
        s0 = json.load(f)
    with open(b) as f:
        s1 = json.load(f)
    ok = int(ok)
    hz = os.sysconf("SC_CLK_TCK")

    def us(t):
        return "%.1f" % (t * 1e6 / hz / ok) if ok > 0 else "nan"

    def split(d):
        tot = sum(d)
        if tot <= 0:
            return "-"
        return "/".join("%.0f" % (100.0 * x / tot) for x in sorted(d, reverse=True))

    kv = {"busy": s1["busy"] - s0["busy"],
          "window": "%.6f" % ((s1["ns"] - s0["ns"]) / 1e9)}
    for i, (t0, t1) in enumerate(zip(s0["trees"], s1["trees"])):
        kv["ticks_%d" % i] = t1["ticks"] - t0["ticks"]
        kv["us_%d" % i] = us(t1["ticks"] - t0["ticks"])
    kv["changed"] = int(s0["trees"][0]["pids"] != s1["trees"][0]["pids"])
    if "parent" in s0 and "parent" in s1:
        kv["parent_us"] = us(s1["parent"] - s0["parent"])
        sd = []
        for p, th in s1["signer"].items():
            old = s0["signer"].get(p, {})
            sd += [v - old.get(t, 0) for t, v in th.items()]
        kv["signer_us"] = us(sum(sd))
        # the threads that did real work (≥ 2% of the signer's CPU): the per-worker
        # signing threads, not the main and rotation threads
        kv["signer_threads"] = split([x for x in sd if x > 0.02 * max(1, sum(sd))])
        wd = [v - s0["workers"].get(p, 0) for p, v in s1["workers"].items()]
        kv["workers_us"] = us(sum(wd))
        kv["worker_split"] = split(wd)
    else:
        kv.update(parent_us="-", signer_us="-", signer_threads="-", workers_us="-",
                  worker_split="-")
    print(" ".join("%s=%s" % kv_ for kv_ in kv.items()))
    return 0


def cmd_summ():
    xs = [float(x) for x in sys.stdin.read().split() if x not in ("nan", "-")]
    if not xs:
        print("nan nan nan 0")
        return 0
    print("%.4f %.4f %.4f %d" % (statistics.median(xs), min(xs), max(xs), len(xs)))
    return 0


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    table = {"pg-start": cmd_pg_start, "pg-wait-gone": cmd_pg_wait_gone,
             "port": cmd_port, "ready": cmd_ready, "fetch": cmd_fetch,
             "headers": cmd_headers, "snap": cmd_snap, "diff": cmd_diff, "roles": cmd_roles,
             "summ": cmd_summ}
    if cmd not in table:
        sys.stderr.write(__doc__)
        return 2
    return table[cmd](*args)


if __name__ == "__main__":
    sys.exit(main())
