"""pgcluster.py: a throwaway PostgreSQL cluster for tests: initdb in a temp dir, a Unix
socket in that dir, its own port, trust authentication, stopped and removed at the end.
PostgreSQL refuses to run as root, so when uid is 0 it runs as the `postgres` user.

    with PgCluster() as pg:
        pg.conninfo          # "host=/tmp/... port=... dbname=idp user=..."
        pg.stop(); pg.start()  # for fault tests
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time


def _pg_bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, dbname="idp"):
        self.bindir = _pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="idp-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.dbname = dbname
        self.as_root = os.getuid() == 0
        self.user = "postgres" if self.as_root else os.environ.get("USER", "postgres")
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", self.user, "-E", "UTF8",
                  "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"\nlisten_addresses = ''\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 200\n")
        self.started = False

    def _run(self, tool, *args, check=True):
        cmd = [os.path.join(self.bindir, tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    @property
    def conninfo(self):
        return f"host={self.dir} port={self.port} dbname={self.dbname} user={self.user}"

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                  "-t", "60", "start")
        self.started = True
        if not getattr(self, "_created", False):
            self._run("createdb", "-h", self.dir, "-p", str(self.port), "-U", self.user,
                      self.dbname)
            self._created = True

    def stop(self, mode="fast"):
        if self.started:
            self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop",
                      check=False)
            self.started = False

    def psql(self, sql):
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-d", self.conninfo, "-c", sql],
                           check=True, capture_output=True, text=True)
        return r.stdout.strip()

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        return False
