#!/usr/bin/python3
"""test_idp_faults.py: idp under faults, with load running: kill -9 of a worker and of
the signer (the parent restarts them, service resumes), PostgreSQL stopped and started
(/readyz reports it, /token recovers by itself), SIGHUP rolling the workers without a
failed request.

Usage: test_idp_faults.py IDP IDPCTL"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pgcluster import PgCluster  # noqa: E402
from idplib import IdpEnv  # noqa: E402

IDP, IDPCTL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name} {str(detail)[:800]}")


class Load:
    """Token requests from 4 threads on loopback until stopped (at most 60 s)."""

    def __init__(self, env, client):
        self.env, self.client = env, client
        self.results = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(4)]

    def run(self):
        end = time.monotonic() + 60
        while not self.stop_flag.is_set() and time.monotonic() < end:
            try:
                st = self.env.token({"grant_type": "client_credentials"},
                                    auth=(self.client["client_id"], self.client["client_secret"])).status
            except OSError as e:
                st = type(e).__name__
            with self.lock:
                self.results.append((time.monotonic(), st))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop_flag.set()
        for t in self.threads:
            t.join()

    def since(self, t0):
        with self.lock:
            return [st for (t, st) in self.results if t >= t0]


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def ok_after(load, t0, timeout=15):
    """True when requests started after t0 succeed again (a 200 after the fault)."""
    return wait_for(lambda: 200 in load.since(t0 + 0.001), timeout)


with PgCluster() as pg:
    # debug: every failed connection attempt is logged (counted below).
    env = IdpEnv(pg, IDP, IDPCTL, workers="2", log_level="debug")
    try:
        cl = env.add_client("--name", "load")
        env.start()
        with Load(env, cl) as load:
            time.sleep(0.5)
            kids = env.children()
            check("the parent runs a signer and two workers", len(kids) == 3, kids)

            # kill -9 one worker: the parent starts another; service goes on.
            worker = max(kids)
            t0 = time.monotonic()
            os.kill(worker, signal.SIGKILL)
            check("kill -9 of a worker: a new worker replaces it",
                  wait_for(lambda: len(env.children()) == 3 and worker not in env.children(), 10),
                  env.children())
            check("kill -9 of a worker: tokens keep coming", ok_after(load, t0))

            # kill -9 the signer (the oldest child): restarted, signing resumes.
            signer = min(env.children())
            t0 = time.monotonic()
            os.kill(signer, signal.SIGKILL)
            check("kill -9 of the signer: it is restarted",
                  wait_for(lambda: len(env.children()) == 3 and signer not in env.children(), 10))
            check("kill -9 of the signer: tokens resume", ok_after(load, t0 + 0.5))

            # PostgreSQL down and up again.
            pg.stop("immediate")
            t0 = time.monotonic()
            check("PostgreSQL stopped: /readyz says 503",
                  wait_for(lambda: env.get("/readyz").status == 503, 15))
            check("PostgreSQL stopped: /healthz still 200", env.get("/healthz").status == 200)
            # Requests that need the database bring the reconnect attempts forward (one
            # per worker every 250 ms at most): in 3.5 s the back-off alone makes at most
            # 6 per worker (100 ms doubling), so more than 16 in all means they did.
            mark = len(env.log())
            end, n = time.monotonic() + 3.5, 0
            while time.monotonic() < end:
                env.get(f"/authorize?response_type=code&client_id=away-{n}")
                n += 1
                time.sleep(0.02)
            attempts = env.log()[mark:].count("database: cannot connect")
            check("PostgreSQL stopped: refused requests bring reconnect attempts forward",
                  attempts > 16, (attempts, n))
            pg.start()
            t1 = time.monotonic()
            check("PostgreSQL back: /readyz 200 again by itself",
                  wait_for(lambda: env.get("/readyz").status == 200, 30))
            fresh = env.add_client("--name", "after-restart")
            r = env.token({"grant_type": "client_credentials"}, auth=(fresh["client_id"], fresh["client_secret"]))
            check("PostgreSQL back: /token works for a client it never saw", r.status == 200, (r.status, r.body))
            check("PostgreSQL back: the load succeeds again", ok_after(load, t1))

            # SIGHUP rolls the workers: no request fails while it happens.
            time.sleep(1)
            t0 = time.monotonic()
            before = set(env.children())
            env.proc.send_signal(signal.SIGHUP)
            rolled = wait_for(lambda: len(set(env.children()) - before) >= 2, 15)
            time.sleep(1.5)
            during = load.since(t0)
            bad = [s for s in during if s != 200]
            check("SIGHUP: new processes replace the old ones", rolled, (before, env.children()))
            check(f"SIGHUP: {len(during)} requests during the roll, none failed", during and not bad,
                  bad[:10])
    finally:
        rc = env.stop()
        check("SIGTERM after the faults: exit 0", rc == 0, rc)
        if failed:
            print("---- idp log ----\n" + env.log()[-8000:])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
