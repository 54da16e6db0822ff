"""idplib.py: start a real idp against a throwaway PostgreSQL, for the integration tests.

    with PgCluster() as pg:
        env = IdpEnv(pg, idp_bin, idpctl_bin, **config overrides)
        env.ctl("client", "add", ...); env.start(); env.get("/readyz") ...
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class IdpEnv:
    def __init__(self, pg, idp, idpctl, **conf):
        self.pg, self.idp, self.idpctl = pg, idp, idpctl
        self.dir = tempfile.mkdtemp(prefix="idp-test-")
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.kek = os.path.join(self.dir, "kek")
        self.ctl("kek", "generate", self.kek, db=False)
        self.conf = {"issuer": self.issuer, "listen": f"127.0.0.1:{self.port}",
                     "database": pg.conninfo, "key_encryption_key_file": self.kek,
                     "workers": "2", "log_level": "info"}
        self.conf.update({k: str(v) for k, v in conf.items()})
        self.conf_path = os.path.join(self.dir, "idp.conf")
        self.write_conf()
        self.log_path = os.path.join(self.dir, "idp.log")
        self.proc = None
        self.ctl("migrate")

    def write_conf(self):
        with open(self.conf_path, "w") as f:
            for k, v in self.conf.items():
                f.write(f'{k} = "{v}"\n')

    def ctl(self, *args, db=True, check=True):
        cmd = [self.idpctl] + (["-d", self.pg.conninfo] if db else []) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"idpctl {' '.join(args)} failed: {r.stderr}")
        return r

    def add_client(self, *args):
        r = self.ctl("client", "add", "--json", *args)
        return json.loads(r.stdout)

    def start(self, wait_ready=True):
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.idp, "-c", self.conf_path], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=60, in_a_row=10):
        """Until /readyz answers 200 in_a_row times, each on a new connection: each
        worker answers for itself (its own database connection, which may still be in
        its reconnect back-off after PostgreSQL came back), and new connections are
        shared out among the workers."""
        deadline = time.monotonic() + timeout
        ok = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"idp exited with {self.proc.returncode}:\n{self.log()}")
            try:
                ok = ok + 1 if self.get("/readyz").status == 200 else 0
            except OSError:
                ok = 0
            if ok >= in_a_row:
                return
            if ok == 0:
                time.sleep(0.05)
        raise RuntimeError("idp did not become ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def children(self):
        """PIDs of the parent's children, from /proc."""
        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(line.split()[0]) for line in out.splitlines() if line.strip()]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def token(self, form, auth=None, headers=None, conn=None):
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth is not None:
            import base64
            u = urllib.parse.quote(auth[0], safe="")
            p = urllib.parse.quote(auth[1], safe="")
            h["Authorization"] = "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
        h.update(headers or {})
        body = form if isinstance(form, str) else urllib.parse.urlencode(form)
        return self.request("POST", "/token", body, h, conn)
