#!/usr/bin/python3
"""db-recovery.py: how soon idp serves again after PostgreSQL comes back.

    bench/idp/db-recovery.py IDP IDPCTL [DOWN_S]

Starts a throwaway PostgreSQL (tests/lib/pgcluster.py) and IDP with 2 workers; two
threads send GET /authorize for unknown clients (each needs a database lookup: 400 when
the database answers, 503 when it is away), ~100 requests/s on 127.0.0.1; PostgreSQL is
stopped (immediate) for DOWN_S seconds [8], started again, and the load runs 7 s more.
Prints the requests sent after PostgreSQL was back, how many got 503, and when the last
503 came (seconds after pg_ctl start returned). Everything started is stopped.
"""
import http.client
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from pgcluster import PgCluster  # noqa: E402
from idplib import IdpEnv  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    idp, idpctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    down = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
    with PgCluster() as pg:
        env = IdpEnv(pg, idp, idpctl, workers="2", log_level="warn")
        env.start()
        res, stop = [], threading.Event()

        def load():
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=5)
                    c.request("GET", f"/authorize?client_id=nope{i}&response_type=code")
                    st = c.getresponse().status
                    c.close()
                except OSError:
                    st = 0
                res.append((time.monotonic(), st))
                time.sleep(0.01)

        threads = [threading.Thread(target=load) for _ in range(2)]
        try:
            for t in threads:
                t.start()
            time.sleep(1)
            pg.stop("immediate")
            time.sleep(down)
            pg.start()
            t1 = time.monotonic()
            time.sleep(7)
        finally:
            stop.set()
            for t in threads:
                t.join()
            env.stop()
        after = [(t - t1, st) for t, st in res if t >= t1]
        last = max([t for t, st in after if st == 503], default=0.0)
        print(f"{os.path.basename(idp)}: after PostgreSQL was back: {len(after)} requests, "
              f"{sum(1 for _, st in after if st == 503)} got 503, the last at +{last:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
