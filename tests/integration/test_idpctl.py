#!/usr/bin/python3
"""test_idpctl.py: the real idpctl binary against a throwaway PostgreSQL: migrate (twice,
and several at once), kek generate, the client and secret commands (the database must
hold Argon2id hashes and never a secret), keys list and rotate, where the database comes
from (-d, -c, IDP_DATABASE), and the exit status and one-line errors of bad usage.

Usage: test_idpctl.py IDPCTL_BINARY"""

import ctypes
import ctypes.util
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pgcluster import PgCluster  # noqa: E402

IDPCTL = os.path.abspath(sys.argv[1])
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name} {detail}")


def run(*args, env=None, conninfo=None):
    """Run idpctl; -d conninfo first when given. Returns the CompletedProcess."""
    cmd = [IDPCTL]
    if conninfo is not None:
        cmd += ["-d", conninfo]
    full_env = dict(os.environ)
    full_env.pop("IDP_DATABASE", None)
    if env:
        full_env.update(env)
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env,
                          timeout=120)


def show(p):
    return f"(exit {p.returncode}; stdout {p.stdout!r}; stderr {p.stderr!r})"


def one_line_error(p):
    lines = p.stderr.splitlines()
    return len(lines) == 1 and lines[0].startswith("idpctl: ")


def sodium_verify():
    """crypto_pwhash_str_verify from the libsodium idpctl links, or None."""
    name = ctypes.util.find_library("sodium")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    if lib.sodium_init() < 0:
        return None
    lib.crypto_pwhash_str_verify.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                             ctypes.c_ulonglong]

    def verify(hash_, pw):
        b = pw.encode()
        return lib.crypto_pwhash_str_verify(hash_.encode(), b, len(b)) == 0
    return verify


def test_migrate(pg, db):
    p = run("migrate", conninfo=db)
    check("migrate applies 001_init.sql", p.returncode == 0 and
          "applied 001_init.sql" in p.stdout, show(p))
    p = run("migrate", conninfo=db)
    check("second migrate: schema up to date", p.returncode == 0 and
          "schema up to date" in p.stdout and "applied" not in p.stdout, show(p))
    check("schema_migrations has one row",
          pg.psql("SELECT count(*) FROM schema_migrations") == "1")
    check("schema_migrations names the file",
          pg.psql("SELECT version FROM schema_migrations") == "001_init.sql")

    # Several at once on a fresh database: each succeeds, the migration runs once.
    pg.psql("CREATE DATABASE idp_concurrent")
    db2 = pg.conninfo.replace(f"dbname={pg.dbname}", "dbname=idp_concurrent")
    results = [None] * 4

    def one(i):
        results[i] = run("migrate", conninfo=db2)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("concurrent migrates all succeed", all(r.returncode == 0 for r in results),
          " ".join(show(r) for r in results))
    check("concurrent migrates apply it exactly once",
          sum("applied 001_init.sql" in r.stdout for r in results) == 1,
          " ".join(show(r) for r in results))
    out = subprocess.run([os.path.join(pg.bindir, "psql"), "-X", "-A", "-t", "-d", db2,
                          "-c", "SELECT count(*) FROM schema_migrations"],
                         capture_output=True, text=True).stdout.strip()
    check("concurrent migrates: one schema_migrations row", out == "1", out)

    # A database migrated by a newer idpctl is reported, not refused.
    pg.psql("INSERT INTO schema_migrations (version) VALUES ('999_future.sql')")
    p = run("migrate", conninfo=db)
    check("unknown migration in the database is a warning", p.returncode == 0 and
          "999_future.sql" in p.stderr, show(p))
    pg.psql("DELETE FROM schema_migrations WHERE version = '999_future.sql'")


def test_kek(tmp):
    path = os.path.join(tmp, "kek")
    p = run("kek", "generate", path)
    st = os.stat(path) if os.path.exists(path) else None
    check("kek generate succeeds", p.returncode == 0, show(p))
    check("kek file is mode 0600", st is not None and stat.S_IMODE(st.st_mode) == 0o600,
          oct(st.st_mode) if st else "missing")
    with open(path, "rb") as f:
        key = f.read()
    check("kek file holds 32 bytes", len(key) == 32, str(len(key)))
    p = run("kek", "generate", path)
    with open(path, "rb") as f:
        again = f.read()
    check("kek generate refuses to overwrite", p.returncode == 1 and again == key and
          one_line_error(p), show(p))
    path2 = os.path.join(tmp, "kek2")
    run("kek", "generate", path2)
    with open(path2, "rb") as f:
        check("two keks differ", f.read() != key)
    old = os.umask(0o277)
    try:
        path3 = os.path.join(tmp, "kek3")
        p = run("kek", "generate", path3)
        check("kek is 0600 whatever the umask", p.returncode == 0 and
              stat.S_IMODE(os.stat(path3).st_mode) == 0o600, show(p))
    finally:
        os.umask(old)
    p = run("kek", "generate", os.path.join(tmp, "no", "such", "dir"))
    check("kek generate into a missing directory fails", p.returncode == 1 and
          one_line_error(p), show(p))
    p = run("kek", "generate")
    check("kek generate without FILE is usage", p.returncode == 2, show(p))


def test_clients(pg, db, verify):
    p = run("client", "list", conninfo=db)
    check("client list on no clients", p.returncode == 0, show(p))
    p = run("client", "list", "--json", conninfo=db)
    check("client list --json on no clients is []", p.returncode == 0 and
          json.loads(p.stdout) == [], show(p))

    p = run("client", "add", "--name", "billing", "--scope", "invoices:read invoices:write",
            "--default-scope", "invoices:read", "--audience", "https://api.example",
            "--json", conninfo=db)
    check("client add --json succeeds", p.returncode == 0, show(p))
    try:
        out = json.loads(p.stdout)
    except ValueError:
        out = {}
    check("client add --json is one object with id, secret and name",
          set(out) == {"client_id", "client_secret", "name"} and
          out.get("name") == "billing", p.stdout)
    cid, secret = out.get("client_id", ""), out.get("client_secret", "")
    check("client id is 16 bytes of base64url", len(cid) == 22 and
          not cid.startswith("-"), cid)
    check("client secret is 32 bytes of base64url", len(secret) == 43, secret)

    h = pg.psql(f"SELECT hash FROM client_secrets WHERE client_id = '{cid}'")
    check("the database holds an Argon2id hash", h.startswith("$argon2id$"), h)
    if verify is not None:
        check("the hash verifies the shown secret", verify(h, secret))
        check("the hash refuses another secret", not verify(h, secret[:-1] + "A"
                                                                if secret[-1] != "A"
                                                                else secret[:-1] + "B"))
    row = pg.psql("SELECT grants, scopes, default_scopes, audiences, default_audience, "
                  f"public FROM clients WHERE id = '{cid}'")
    check("client row: grants, scopes, audiences, defaults",
          row == "{client_credentials}|{invoices:read,invoices:write}|{invoices:read}|"
                 "{https://api.example}|https://api.example|f", row)

    # Defaults: every allowed scope is a default scope; no audience means NULL.
    p = run("client", "add", "--name", "plain", "--scope", "a b", conninfo=db)
    check("client add (human) succeeds", p.returncode == 0, show(p))
    check("client add (human) shows the secret and says it is shown once",
          "client_secret:" in p.stdout and "only this once" in p.stdout, p.stdout)
    pid = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("client_id:")]
    pid = pid[0] if pid else ""
    row = pg.psql(f"SELECT default_scopes, default_audience IS NULL FROM clients "
                  f"WHERE id = '{pid}'")
    check("default scopes default to all, default audience to NULL", row == "{a,b}|t", row)

    # Array elements with the characters text[] literals quote: stored exactly.
    odd_aud = 'urn:x,y"z\\w{}'
    odd_uri = "https://a.example/cb?x=1,2&y=%7B3%7D&z='q'"
    p = run("client", "add", "--name", 'odd "name", {x}', "--audience", odd_aud,
            "--grant", "authorization_code", "--redirect-uri", odd_uri, "--json",
            conninfo=db)
    oid = json.loads(p.stdout).get("client_id", "") if p.returncode == 0 else ""
    row = pg.psql("SELECT name || '|' || audiences[1] || '|' || default_audience || '|' || "
                  f"redirect_uris[1] || '|' || cardinality(audiences) FROM clients "
                  f"WHERE id = '{oid}'")
    check("quotes, commas, braces, backslashes stored exactly",
          row == f'odd "name", {{x}}|{odd_aud}|{odd_aud}|{odd_uri}|1', f"{row!r} {show(p)}")
    pg.psql(f"DELETE FROM clients WHERE id = '{oid}'")

    # A public client: no secret, authorization_code needed, PKCE.
    p = run("client", "add", "--name", "spa", "--public", "--grant", "authorization_code",
            "--grant", "refresh_token", "--redirect-uri", "https://app.example/cb",
            "--post-logout-redirect-uri", "https://app.example/", "--first-party",
            "--json", conninfo=db)
    out2 = json.loads(p.stdout) if p.returncode == 0 else {}
    check("public client add: no client_secret", p.returncode == 0 and
          "client_secret" not in out2 and "client_id" in out2, show(p))
    spa = out2.get("client_id", "")
    check("public client has no secret row",
          pg.psql(f"SELECT count(*) FROM client_secrets WHERE client_id = '{spa}'") == "0")
    check("public client row", pg.psql(
        f"SELECT public, first_party, redirect_uris, post_logout_redirect_uris FROM "
        f"clients WHERE id = '{spa}'") ==
        "t|t|{https://app.example/cb}|{https://app.example/}")
    for args, what in [
            (["--public", "--grant", "client_credentials", "--grant", "authorization_code",
              "--redirect-uri", "https://a.example/cb"], "public with client_credentials"),
            (["--public", "--grant", "refresh_token"], "public without authorization_code"),
            (["--grant", "implicit"], "unknown grant"),
            (["--grant", "authorization_code"], "authorization_code without redirect"),
            (["--grant", "authorization_code", "--redirect-uri", "https://a.example/cb#x"],
             "redirect URI with a fragment"),
            (["--grant", "authorization_code", "--redirect-uri", "/cb"],
             "relative redirect URI"),
            (["--grant", "authorization_code", "--redirect-uri", "https:///cb"],
             "redirect URI without host"),
            (["--scope", "a", "--default-scope", "b"], "default scope not allowed"),
            (["--audience", "x", "--default-audience", "y"], "default audience not allowed"),
            (["--scope", "bad\"scope"], "invalid scope"),
            (["--bogus"], "unknown option"),
            (["extra"], "extra argument")]:
        p = run("client", "add", "--name", "bad", *args, conninfo=db)
        check(f"client add refuses {what} (exit 2, one line)", p.returncode == 2 and
              one_line_error(p) and p.stdout == "", show(p))
    p = run("client", "add", conninfo=db)
    check("client add without --name is usage", p.returncode == 2, show(p))
    check("refused adds made no clients", pg.psql(
        "SELECT count(*) FROM clients WHERE name = 'bad'") == "0")

    p = run("client", "list", conninfo=db)
    check("client list shows the clients", p.returncode == 0 and cid in p.stdout and
          spa in p.stdout and "billing" in p.stdout, show(p))
    p = run("client", "list", "--json", conninfo=db)
    lst = json.loads(p.stdout) if p.returncode == 0 else []
    check("client list --json", len(lst) == 3 and
          {c["client_id"] for c in lst} == {cid, pid, spa}, p.stdout)

    p = run("client", "show", cid, conninfo=db)
    check("client show", p.returncode == 0 and "billing" in p.stdout and
          "invoices:read" in p.stdout and "live secrets:" in p.stdout, show(p))
    p = run("client", "show", cid, "--json", conninfo=db)
    sh = json.loads(p.stdout) if p.returncode == 0 else {}
    check("client show --json", sh.get("client_id") == cid and
          sh.get("live_secrets") == 1 and len(sh.get("secrets", [])) == 1 and
          sh.get("scopes") == ["invoices:read", "invoices:write"], p.stdout)
    check("client show never prints a hash", "$argon2" not in p.stdout and
          "hash" not in p.stdout)
    first_sid = str(sh["secrets"][0]["id"]) if sh.get("secrets") else "0"

    p = run("client", "show", "nosuchclient", conninfo=db)
    check("client show of an unknown client: exit 1, one line", p.returncode == 1 and
          one_line_error(p) and "nosuchclient" in p.stderr, show(p))
    for sub in (["disable"], ["enable"], ["secret", "add"]):
        p = run("client", *sub, "nosuchclient", conninfo=db)
        check(f"client {' '.join(sub)} of an unknown client: exit 1",
              p.returncode == 1 and one_line_error(p), show(p))
    p = run("client", "secret", "revoke", "nosuchclient", "1", conninfo=db)
    check("client secret revoke of an unknown client: exit 1", p.returncode == 1, show(p))

    p = run("client", "disable", cid, conninfo=db)
    check("client disable", p.returncode == 0 and pg.psql(
        f"SELECT disabled FROM clients WHERE id = '{cid}'") == "t", show(p))
    p = run("client", "enable", cid, conninfo=db)
    check("client enable", p.returncode == 0 and pg.psql(
        f"SELECT disabled FROM clients WHERE id = '{cid}'") == "f", show(p))

    # Secrets: a second one, no third, revoke, never the last without --force.
    p = run("client", "secret", "add", cid, "--json", conninfo=db)
    sa = json.loads(p.stdout) if p.returncode == 0 else {}
    secret2 = sa.get("client_secret", "")
    check("client secret add", p.returncode == 0 and len(secret2) == 43 and
          sa.get("client_id") == cid and "secret_id" in sa, show(p))
    check("two live secrets", pg.psql(
        f"SELECT count(*) FROM client_secrets WHERE client_id = '{cid}' "
        "AND revoked_at IS NULL") == "2")
    if verify is not None:
        h2 = pg.psql(f"SELECT hash FROM client_secrets WHERE id = {sa.get('secret_id', 0)}")
        check("the second hash verifies the second secret", verify(h2, secret2))
    p = run("client", "secret", "add", cid, conninfo=db)
    check("a third secret is refused", p.returncode == 1 and one_line_error(p) and
          "revoke" in p.stderr and "client_secret" not in p.stdout, show(p))
    check("still two secrets", pg.psql(
        f"SELECT count(*) FROM client_secrets WHERE client_id = '{cid}'") == "2")
    p = run("client", "secret", "add", spa, conninfo=db)
    check("a public client gets no secret", p.returncode == 1, show(p))

    p = run("client", "secret", "revoke", cid, first_sid, conninfo=db)
    check("client secret revoke", p.returncode == 0 and pg.psql(
        f"SELECT revoked_at IS NOT NULL FROM client_secrets WHERE id = {first_sid}") == "t",
        show(p))
    p = run("client", "secret", "revoke", cid, first_sid, conninfo=db)
    check("revoking a revoked secret fails", p.returncode == 1, show(p))
    p = run("client", "secret", "revoke", pid, str(sa.get("secret_id", 0)), conninfo=db)
    check("revoking another client's secret fails", p.returncode == 1 and pg.psql(
        f"SELECT revoked_at IS NULL FROM client_secrets WHERE id = {sa.get('secret_id', 0)}")
        == "t", show(p))
    p = run("client", "secret", "revoke", cid, str(sa.get("secret_id", 0)), conninfo=db)
    check("revoking the last live secret is refused", p.returncode == 1 and
          one_line_error(p) and "--force" in p.stderr, show(p))
    p = run("client", "secret", "revoke", cid, "x1", conninfo=db)
    check("a SECRET_ID that is not a number is usage", p.returncode == 2, show(p))
    p = run("client", "show", cid, "--json", conninfo=db)
    sh = json.loads(p.stdout) if p.returncode == 0 else {}
    check("client show lists the one live secret", sh.get("live_secrets") == 1 and
          [s["id"] for s in sh.get("secrets", [])] == [sa.get("secret_id")], p.stdout)
    p = run("client", "secret", "revoke", cid, str(sa.get("secret_id", 0)), "--force",
            conninfo=db)
    check("revoking the last live secret with --force", p.returncode == 0 and pg.psql(
        f"SELECT count(*) FROM client_secrets WHERE client_id = '{cid}' "
        "AND revoked_at IS NULL") == "0", show(p))

    # The whole database must hold no secret in the clear.
    dump = subprocess.run([os.path.join(pg.bindir, "pg_dump"), "-d", db],
                          capture_output=True, text=True)
    check("pg_dump works", dump.returncode == 0 and "client_secrets" in dump.stdout,
          dump.stderr)
    check("no client secret in the database dump", secret not in dump.stdout and
          secret2 not in dump.stdout)
    nhash = int(pg.psql("SELECT count(*) FROM client_secrets"))
    check("the dump holds the Argon2id hashes", nhash == 3 and
          dump.stdout.count("$argon2id$") == nhash, str(nhash))


def test_keys(pg, db):
    p = run("keys", "list", conninfo=db)
    check("keys list on an empty table", p.returncode == 0 and "no signing keys" in
          p.stdout, show(p))
    p = run("keys", "list", "--json", conninfo=db)
    check("keys list --json on an empty table is []", p.returncode == 0 and
          json.loads(p.stdout) == [], show(p))
    p = run("keys", "rotate", conninfo=db)
    check("keys rotate records a request", p.returncode == 0 and "recorded" in p.stdout and
          pg.psql("SELECT count(*), bool_or(emergency) FROM key_rotation_requests "
                  "WHERE done_at IS NULL") == "1|f", show(p))
    p = run("keys", "rotate", "--emergency", conninfo=db)
    check("keys rotate --emergency records an emergency request and warns",
          p.returncode == 0 and "withdrawn" in p.stderr and
          pg.psql("SELECT count(*) FROM key_rotation_requests WHERE emergency") == "1",
          show(p))
    pg.psql("INSERT INTO signing_keys (kid, alg, state, public_jwk, private_enc, nonce, "
            "activated_at) VALUES ('kid-one', 'RS256', 'active', '{\"kty\":\"RSA\"}', "
            "'\\x5345435245544d4154455249414c', '\\x00', now())")
    p = run("keys", "list", "--json", conninfo=db)
    keys = json.loads(p.stdout) if p.returncode == 0 else []
    check("keys list --json shows a key", len(keys) == 1 and keys[0]["kid"] == "kid-one" and
          keys[0]["state"] == "active" and keys[0]["withdrawn"] is False and
          keys[0]["activated_at"] is not None and keys[0]["retired_at"] is None, p.stdout)
    p = run("keys", "list", conninfo=db)
    check("keys list shows a key and pending requests", p.returncode == 0 and
          "kid-one" in p.stdout and "RS256" in p.stdout and "pending" in p.stdout, show(p))
    check("keys list never shows private material", "SECRETMATERIAL" not in p.stdout and
          "5345435245544d" not in p.stdout and "private" not in p.stdout.lower())
    p = run("keys", "rotate", "now", conninfo=db)
    check("keys rotate with an argument is usage", p.returncode == 2, show(p))


def test_database_sources(pg, tmp):
    db = pg.conninfo
    conf = os.path.join(tmp, "idp.conf")
    # Only database matters: a file the daemon would refuse (no issuer) still works.
    with open(conf, "w") as f:
        f.write(f'# idpctl reads only the database key\ndatabase = "{db}"\n'
                'signing_alg = RS256\n')
    p = run("-c", conf, "keys", "list")
    check("-c CONFIG_FILE: the file's database", p.returncode == 0, show(p))
    p = run("keys", "list", env={"IDP_DATABASE": db})
    check("IDP_DATABASE", p.returncode == 0, show(p))
    bad = f"host={tmp}/nonexistent port=1 dbname=x"
    p = run("-c", conf, "keys", "list", env={"IDP_DATABASE": bad})
    check("IDP_DATABASE overrides the file's database, as for idp",
          p.returncode == 1 and one_line_error(p), show(p))
    badconf = os.path.join(tmp, "bad.conf")
    with open(badconf, "w") as f:
        f.write(f'database = "{bad}"\n')
    p = run("-c", badconf, "keys", "list", env={"IDP_DATABASE": db})
    check("IDP_DATABASE wins over a bad database in the file", p.returncode == 0, show(p))
    p = run("-c", conf, "-d", bad, "keys", "list")
    check("-d wins over the file", p.returncode == 1 and one_line_error(p), show(p))
    p = run("-d", db, "keys", "list", env={"IDP_DATABASE": bad})
    check("-d wins over IDP_DATABASE", p.returncode == 0, show(p))
    with open(conf, "w") as f:
        f.write("databse = x\n")
    p = run("-c", conf, "keys", "list")
    check("a bad config file: exit 1, one line naming it", p.returncode == 1 and
          one_line_error(p) and conf in p.stderr, show(p))
    p = run("-c", os.path.join(tmp, "missing.conf"), "keys", "list")
    check("a missing config file: exit 1", p.returncode == 1 and one_line_error(p),
          show(p))

    # Wrong conninfo: one line, exit 1, and never the password.
    for ci in (f"host={tmp}/nonexistent port=5 user=u password=hunter2secret",
               "postgresql://u:hunter2secret@127.0.0.1:1/db",
               "postgresql://u:hunter2%zzsecret@127.0.0.1:1/db",
               "host=/x password hunter2secret",
               f"host={pg.dir} port={pg.port} dbname=nosuchdb password=hunter2secret"):
        p = run("-d", ci, "client", "list")
        check(f"bad conninfo: exit 1, one line, no password ({ci.split(':')[0]}...)",
              p.returncode == 1 and one_line_error(p) and "hunter2" not in p.stderr and
              "hunter2" not in p.stdout, show(p))

    # A password that libpq's own message happens to contain is blanked there too.
    p = run("-d", "host=127.0.0.1 port=1 password=127.0.0.1", "client", "list")
    check("a password inside libpq's message is blanked", p.returncode == 1 and
          one_line_error(p) and "127.0.0.1" not in p.stderr and "***" in p.stderr,
          show(p))

    # An empty database: the error says what to do.
    pg.psql("CREATE DATABASE idp_empty")
    p = run("-d", db.replace(f"dbname={pg.dbname}", "dbname=idp_empty"), "client", "list")
    check("unmigrated database: exit 1, hints at migrate", p.returncode == 1 and
          one_line_error(p) and "migrate" in p.stderr, show(p))


def test_usage():
    for args in ([], ["frobnicate"], ["client"], ["client", "frob"], ["client", "secret"],
                 ["-x", "migrate"], ["-d"], ["migrate", "extra"], ["client", "show"],
                 ["client", "show", "a", "b"], ["keys", "list", "--bogus"],
                 ["client", "secret", "revoke", "id"], ["kek", "generate", "a", "b"]):
        p = run(*args)
        check(f"usage error exit 2, one line: idpctl {' '.join(args)}",
              p.returncode == 2 and one_line_error(p) and p.stdout == "", show(p))
    for args in (["help"], ["--help"], ["-h"], ["client", "add", "--help"]):
        p = run(*args)
        check(f"idpctl {' '.join(args)} prints help", p.returncode == 0 and
              "usage: idpctl" in p.stdout, show(p))
    p = run("help")
    for cmd in ("migrate", "kek generate", "client add", "client list", "client show",
                "client disable", "client enable", "client secret add",
                "client secret revoke", "keys list", "keys rotate", "--emergency",
                "--grant", "--scope", "--default-scope", "--audience",
                "--default-audience", "--redirect-uri", "--post-logout-redirect-uri",
                "--first-party", "--public", "--json", "--force", "IDP_DATABASE"):
        check(f"help documents {cmd}", cmd in p.stdout)


def main():
    verify = sodium_verify()
    with tempfile.TemporaryDirectory(prefix="idpctl-test-") as tmp, PgCluster() as pg:
        try:
            test_usage()
            test_kek(tmp)
            test_migrate(pg, pg.conninfo)
            test_clients(pg, pg.conninfo, verify)
            test_keys(pg, pg.conninfo)
            test_database_sources(pg, tmp)
        except Exception:
            print("PostgreSQL log:\n" + pg.log())
            raise
        if failed:
            print("PostgreSQL log:\n" + pg.log())
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
