#!/usr/bin/python3
"""test_idpctl.py: the real idpctl binary against a throwaway PostgreSQL: migrate (twice,
and several at once), kek generate, the client and secret commands (the database must
hold Argon2id hashes and never a secret), the user commands (passwords read from stdin,
stored only as Argon2id hashes; case-insensitive usernames and emails; roles; sign-out on
disable and passwd), the 002 schema's constraints and notifications, keys list and
rotate, where the database comes from (-d, -c, IDP_DATABASE), and the exit status and
one-line errors of bad usage.

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

# Every migration of sql/, in order: a new one needs no change here.
MIGRATIONS = sorted(f for f in os.listdir(os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", "..", "sql")) if f.endswith(".sql"))


def test_migrate(pg, db):
    p = run("migrate", conninfo=db)
    check("migrate applies 001_init.sql", p.returncode == 0 and
          "applied 001_init.sql" in p.stdout, show(p))
    check("migrate applies 002_users.sql after 001", p.returncode == 0 and
          "applied 002_users.sql" in p.stdout and
          p.stdout.index("001_init.sql") < p.stdout.index("002_users.sql"), show(p))
    p = run("migrate", conninfo=db)
    check("second migrate: schema up to date", p.returncode == 0 and
          "schema up to date" in p.stdout and "applied" not in p.stdout, show(p))
    check("second migrate names the last migration", MIGRATIONS[-1] in p.stdout, show(p))
    check("schema_migrations has one row per migration",
          pg.psql("SELECT count(*) FROM schema_migrations") == str(len(MIGRATIONS)))
    check("schema_migrations names the files",
          pg.psql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")
          == ",".join(MIGRATIONS))

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
    check("concurrent migrates apply 002 exactly once",
          sum("applied 002_users.sql" in r.stdout for r in results) == 1,
          " ".join(show(r) for r in results))
    out = subprocess.run([os.path.join(pg.bindir, "psql"), "-X", "-A", "-t", "-d", db2,
                          "-c", "SELECT count(*) FROM schema_migrations"],
                         capture_output=True, text=True).stdout.strip()
    check("concurrent migrates: one schema_migrations row each",
          out == str(len(MIGRATIONS)), out)

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


def run_in(data, *args, conninfo=None):
    """Run idpctl with bytes data on standard input (-d conninfo first when given).
    Returns the CompletedProcess with stdout and stderr decoded."""
    cmd = [IDPCTL] + (["-d", conninfo] if conninfo is not None else []) + list(args)
    env = dict(os.environ)
    env.pop("IDP_DATABASE", None)
    p = subprocess.run(cmd, input=data, capture_output=True, env=env, timeout=120)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    return p


def test_schema_002(pg):
    """The 002 tables' constraints and notifications, as the HTTP flows will rely on."""
    tables = pg.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                     "WHERE schemaname = 'public'")
    for t in ("users", "sessions", "consents", "auth_codes", "refresh_tokens",
              "refresh_families", "revoked_jtis"):
        check(f"002 makes table {t}", t in tables.split(","), tables)
    check("002 adds clients.allow_plain_pkce, false by default", pg.psql(
        "SELECT column_default FROM information_schema.columns WHERE table_name = "
        "'clients' AND column_name = 'allow_plain_pkce'") == "false")
    # No column anywhere may be named like a raw secret: hashes only.
    cols = pg.psql("SELECT string_agg(table_name || '.' || column_name, ',') FROM "
                   "information_schema.columns WHERE table_schema = 'public' AND "
                   "column_name IN ('password', 'code', 'token', 'cookie', 'session_id', "
                   "'refresh_token', 'access_token')")
    check("no column holds a raw password, code, token or cookie", cols == "", cols)

    def fails(sql):
        try:
            pg.psql(sql)
            return False
        except subprocess.CalledProcessError:
            return True
    pg.psql("INSERT INTO users (id, username, password_hash) VALUES ('s1', 'schema1', 'h')")
    check("users: a second username differing only in case is refused",
          fails("INSERT INTO users (id, username, password_hash) VALUES "
                "('s2', 'SCHEMA1', 'h')"))
    check("users: a username with '@' is refused", fails(
        "INSERT INTO users (id, username, password_hash) VALUES ('s3', 'a@b', 'h')"))
    check("users: an email without '@' is refused", fails(
        "INSERT INTO users (id, username, email, password_hash) VALUES "
        "('s4', 'schema4', 'nope', 'h')"))
    check("sessions: id_hash must be 32 bytes (a SHA-256, never the cookie)", fails(
        "INSERT INTO sessions (id_hash, user_id, auth_time, absolute_expires_at) VALUES "
        "('\\x00', 's1', now(), now() + interval '1 hour')"))
    check("auth_codes: a challenge needs its method", fails(
        "INSERT INTO clients (id, name) VALUES ('sc', 'schema client');"
        "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, "
        "code_challenge, auth_time, expires_at) VALUES (sha256('c'), 'sc', 's1', "
        "'https://a/cb', 'openid', 'x', now(), now() + interval '1 minute')"))

    # Single use: the redeeming UPDATE wins once.
    pg.psql("INSERT INTO clients (id, name) VALUES ('sc', 'schema client');"
            "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, "
            "code_challenge, code_challenge_method, auth_time, expires_at) VALUES "
            "(sha256('code'), 'sc', 's1', 'https://a/cb', 'openid', 'x', 'S256', now(), "
            "now() + interval '1 minute')")
    redeem = ("UPDATE auth_codes SET used_at = now() WHERE code_hash = sha256('code') AND "
              "used_at IS NULL AND expires_at > now() RETURNING user_id")
    first, second = pg.psql(redeem), pg.psql(redeem)
    check("a code is redeemed by the first UPDATE only",
          first.startswith("s1") and not second.startswith("s1"), f"{first!r} {second!r}")

    # Notifications: revocations and users.
    out = pg.psql("LISTEN idp_revocations; INSERT INTO revoked_jtis (jti, client_id, "
                  "expires_at) VALUES ('jti-1', 'sc', now() + interval '5 minutes')")
    check("a revoked jti NOTIFYs idp_revocations with the jti",
          'notification "idp_revocations" with payload "jti-1"' in out, out)
    out = pg.psql("LISTEN idp_users; UPDATE users SET disabled = true WHERE id = 's1'")
    check("a user update NOTIFYs idp_users with the id",
          'notification "idp_users" with payload "s1"' in out, out)
    out = pg.psql("LISTEN idp_users; DELETE FROM users WHERE id = 's1'")
    check("a user delete NOTIFYs idp_users with the id",
          'notification "idp_users" with payload "s1"' in out, out)
    check("deleting a user deletes its codes", pg.psql(
        "SELECT count(*) FROM auth_codes WHERE user_id = 's1'") == "0")
    pg.psql("DELETE FROM clients WHERE id = 'sc'; DELETE FROM revoked_jtis")


def test_users(pg, db, verify):
    p = run("user", "list", conninfo=db)
    check("user list on no users", p.returncode == 0 and "no users" in p.stdout, show(p))
    p = run("user", "list", "--json", conninfo=db)
    check("user list --json on no users is []", p.returncode == 0 and
          json.loads(p.stdout) == [], show(p))

    pw = "correct horse battery staple ✓"
    p = run_in((pw + "\n").encode(), "user", "add", "--username", "Alice", "--email",
               "Alice@Example.org", "--name", "Alice Liddell", "--role", "admin", "--role",
               "ops", "--role", "admin", "--password-stdin", "--json", conninfo=db)
    check("user add --json succeeds", p.returncode == 0 and p.stderr == "", show(p))
    out = json.loads(p.stdout) if p.returncode == 0 else {}
    check("user add --json is {user_id, username}",
          set(out) == {"user_id", "username"} and out.get("username") == "Alice", p.stdout)
    uid = out.get("user_id", "")
    check("user id is 16 bytes of base64url", len(uid) == 22 and not uid.startswith("-"),
          uid)
    check("user add never prints the password", pw not in p.stdout + p.stderr)
    row = pg.psql(f"SELECT username, email, name, roles, disabled, email_verified "
                  f"FROM users WHERE id = '{uid}'")
    check("user row: username, email, name, roles without duplicates",
          row == "Alice|Alice@Example.org|Alice Liddell|{admin,ops}|f|f", row)
    h = pg.psql(f"SELECT password_hash FROM users WHERE id = '{uid}'")
    check("the database holds an Argon2id hash", h.startswith("$argon2id$"), h)
    if verify is not None:
        check("the hash verifies the password (trailing newline stripped)", verify(h, pw))
        check("the hash refuses the password with its newline", not verify(h, pw + "\n"))

    # Trailing newline or not, CRLF: the same password.
    for data, what in ((b"s3cret-no-newline", "without a trailing newline"),
                       (b"s3cret-no-newline\r\n", "with CRLF")):
        name = "nl" + str(len(data))
        p = run_in(data, "user", "add", "--username", name, "--password-stdin",
                   conninfo=db)
        hh = pg.psql(f"SELECT password_hash FROM users WHERE username = '{name}'")
        check(f"password from stdin {what}", p.returncode == 0 and
              hh.startswith("$argon2id$") and
              (verify is None or verify(hh, "s3cret-no-newline")), show(p))
    p = run_in(b"x" * 1024 + b"\n", "user", "add", "--username", "long1024",
               "--password-stdin", conninfo=db)
    check("a 1024-byte password is accepted", p.returncode == 0, show(p))

    # Refused passwords: exit 1, one line, no user made.
    for data, what in ((b"", "empty"), (b"\n", "empty line"), (b"\r\n", "empty CRLF line"),
                       (b"x" * 1025, "longer than 1024 bytes"),
                       (b"x" * 1025 + b"\n", "longer than 1024 bytes with newline"),
                       (b"x" * 100000, "far too long"),
                       (b"one\ntwo\n", "two lines"), (b"a\rb", "a carriage return inside"),
                       (b"a\0b\n", "a NUL byte"), (b"\xff\xfe\n", "not UTF-8")):
        p = run_in(data, "user", "add", "--username", "badpw", "--password-stdin",
                   conninfo=db)
        check(f"password refused: {what} (exit 1, one line)", p.returncode == 1 and
              one_line_error(p) and p.stdout == "", show(p))
    check("refused passwords made no user", pg.psql(
        "SELECT count(*) FROM users WHERE username = 'badpw'") == "0")

    # Unique regardless of case.
    p = run_in(b"other\n", "user", "add", "--username", "aLiCe", "--password-stdin",
               conninfo=db)
    check("duplicate username in another case refused (exit 1, one line)",
          p.returncode == 1 and one_line_error(p) and "already exists" in p.stderr, show(p))
    p = run_in(b"other\n", "user", "add", "--username", "alice2", "--email",
               "alice@EXAMPLE.ORG", "--password-stdin", conninfo=db)
    check("duplicate email in another case refused (exit 1, one line)",
          p.returncode == 1 and one_line_error(p) and "email" in p.stderr, show(p))
    p = run_in(b"other\n", "user", "add", "--username", uid, "--password-stdin",
               conninfo=db)
    check("a username that is another user's id is refused", p.returncode == 1 and
          one_line_error(p), show(p))
    check("refused duplicates made no user", pg.psql(
        "SELECT count(*) FROM users WHERE lower(username) IN ('alice', 'alice2')") == "1")

    # Bad usage: exit 2, one line, nothing read or stored.
    for args, what in ((["--username", "u1"], "without --password-stdin"),
                       (["--password-stdin"], "without --username"),
                       (["--username", "a@b", "--password-stdin"], "a username with '@'"),
                       (["--username", "a b", "--password-stdin"], "a username with a space"),
                       (["--username", "-dash", "--password-stdin"], "a username with '-'"),
                       (["--username", "u1", "--email", "nope", "--password-stdin"],
                        "an email without '@'"),
                       (["--username", "u1", "--role", "a b", "--password-stdin"],
                        "a role with a space"),
                       (["--username", "u1", "--name", "a\nb", "--password-stdin"],
                        "a name with a newline"),
                       (["--username", "u1", "--email-verified", "--password-stdin"],
                        "--email-verified without --email"),
                       (["--username", "u1", "--password", "pw"], "--password on argv"),
                       (["--username", "u1", "--password-stdin", "extra"], "an extra argument")):
        p = run_in(b"pw\n", "user", "add", *args, conninfo=db)
        check(f"user add refuses {what} (exit 2, one line)", p.returncode == 2 and
              one_line_error(p) and p.stdout == "", show(p))

    # show and list: JSON, never a hash; by id or any-case username.
    for who in (uid, "alice", "ALICE"):
        p = run("user", "show", who, "--json", conninfo=db)
        sh = json.loads(p.stdout) if p.returncode == 0 else {}
        check(f"user show {who} --json", sh.get("user_id") == uid and
              sh.get("username") == "Alice" and sh.get("roles") == ["admin", "ops"] and
              sh.get("disabled") is False and sh.get("email") == "Alice@Example.org" and
              sh.get("consents") == [] and sh.get("live_sessions") == 0, p.stdout)
    check("user show --json never prints a hash", "$argon2" not in p.stdout and
          "hash" not in p.stdout, p.stdout)
    p = run("user", "show", "alice", conninfo=db)
    check("user show (human)", p.returncode == 0 and uid in p.stdout and
          "admin ops" in p.stdout and "$argon2" not in p.stdout, show(p))
    p = run("user", "list", "--json", conninfo=db)
    lst = json.loads(p.stdout) if p.returncode == 0 else []
    check("user list --json lists every user", len(lst) == 4 and
          uid in {u["user_id"] for u in lst}, p.stdout)
    check("user list --json never prints a hash", "$argon2" not in p.stdout and
          "hash" not in p.stdout and all("password_hash" not in u for u in lst), p.stdout)
    p = run("user", "list", conninfo=db)
    check("user list (human)", p.returncode == 0 and "Alice" in p.stdout and
          "$argon2" not in p.stdout, show(p))
    p = run("user", "show", "nobody", conninfo=db)
    check("user show of an unknown user: exit 1, one line", p.returncode == 1 and
          one_line_error(p) and "nobody" in p.stderr, show(p))

    # Roles: no duplicates; adding one held or removing one lacked changes nothing.
    p = run("user", "role", "add", "alice", "auditor", conninfo=db)
    check("user role add", p.returncode == 0 and pg.psql(
        f"SELECT roles FROM users WHERE id = '{uid}'") == "{admin,ops,auditor}", show(p))
    p = run("user", "role", "add", "ALICE", "admin", conninfo=db)
    check("user role add of a held role: no duplicate", p.returncode == 0 and pg.psql(
        f"SELECT roles FROM users WHERE id = '{uid}'") == "{admin,ops,auditor}", show(p))
    p = run("user", "role", "remove", uid, "ops", conninfo=db)
    check("user role remove", p.returncode == 0 and pg.psql(
        f"SELECT roles FROM users WHERE id = '{uid}'") == "{admin,auditor}", show(p))
    p = run("user", "role", "remove", "alice", "ops", conninfo=db)
    check("user role remove of a role not held", p.returncode == 0 and pg.psql(
        f"SELECT roles FROM users WHERE id = '{uid}'") == "{admin,auditor}", show(p))
    p = run("user", "role", "add", "alice", "bad role", conninfo=db)
    check("user role add of an invalid role is usage", p.returncode == 2 and
          one_line_error(p), show(p))
    p = run("user", "role", "add", "nobody", "x", conninfo=db)
    check("user role add to an unknown user: exit 1", p.returncode == 1 and
          one_line_error(p), show(p))

    # A session, a refresh family with a token, a code: what passwd and disable end.
    def seed(tag):
        pg.psql(
            "INSERT INTO clients (id, name) VALUES ('uc-" + tag + "', 'c') "
            "ON CONFLICT DO NOTHING;"
            f"INSERT INTO sessions (id_hash, user_id, auth_time, absolute_expires_at) "
            f"VALUES (sha256('sess-{tag}'), '{uid}', now(), now() + interval '1 day');"
            f"INSERT INTO refresh_families (id, client_id, user_id, session_id_hash) "
            f"VALUES ('fam-{tag}', 'uc-{tag}', '{uid}', sha256('sess-{tag}'));"
            f"INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, "
            f"auth_time, expires_at, access_jti, access_expires_at) VALUES "
            f"(sha256('rt-{tag}'), 'fam-{tag}', 'uc-{tag}', '{uid}', 'openid', now(), "
            f"now() + interval '1 day', 'at-{tag}', now() + interval '10 minutes')")

    def ended(tag):
        return pg.psql(
            f"SELECT (SELECT ended_at IS NOT NULL FROM sessions WHERE id_hash = "
            f"sha256('sess-{tag}')) || '|' || (SELECT revoke_reason FROM refresh_families "
            f"WHERE id = 'fam-{tag}') || '|' || (SELECT count(*) FROM revoked_jtis WHERE "
            f"jti = 'at-{tag}')")

    seed("p")
    check("user show counts a live session and family", json.loads(run(
        "user", "show", "alice", "--json", conninfo=db).stdout).get("live_sessions") == 1)
    before = pg.psql(f"SELECT password_hash, password_changed_at FROM users WHERE id = '{uid}'")
    p = run_in(b"a new password\n", "user", "passwd", "alice", "--password-stdin",
               conninfo=db)
    after = pg.psql(f"SELECT password_hash, password_changed_at FROM users WHERE id = '{uid}'")
    h2 = after.split("|")[0]
    check("user passwd succeeds", p.returncode == 0 and "a new password" not in
          p.stdout + p.stderr, show(p))
    check("user passwd changes the hash and password_changed_at",
          h2.startswith("$argon2id$") and h2 != before.split("|")[0] and
          after.split("|")[1] != before.split("|")[1], f"{before} {after}")
    if verify is not None:
        check("the new hash verifies the new password, not the old",
              verify(h2, "a new password") and not verify(h2, pw))
    check("user passwd ends sessions, revokes families and their access tokens",
          ended("p") == "true|password_changed|1", ended("p"))
    p = run_in(b"", "user", "passwd", "alice", "--password-stdin", conninfo=db)
    check("user passwd refuses an empty password", p.returncode == 1 and
          one_line_error(p) and pg.psql(
              f"SELECT password_hash FROM users WHERE id = '{uid}'") == h2, show(p))
    p = run_in(b"pw\n", "user", "passwd", "nobody", "--password-stdin", conninfo=db)
    check("user passwd of an unknown user: exit 1", p.returncode == 1 and
          one_line_error(p), show(p))
    p = run_in(b"pw\n", "user", "passwd", "alice", conninfo=db)
    check("user passwd without --password-stdin is usage", p.returncode == 2 and
          one_line_error(p), show(p))

    seed("d")
    p = run("user", "disable", "alice", conninfo=db)
    check("user disable", p.returncode == 0 and pg.psql(
        f"SELECT disabled FROM users WHERE id = '{uid}'") == "t", show(p))
    check("user disable signs the user out everywhere", ended("d") == "true|user_disabled|1",
          ended("d"))
    p = run("user", "show", "alice", "--json", conninfo=db)
    check("user show says disabled", json.loads(p.stdout).get("disabled") is True, p.stdout)
    p = run("user", "disable", "alice", conninfo=db)
    check("user disable twice is fine", p.returncode == 0, show(p))
    p = run("user", "enable", "ALICE", conninfo=db)
    check("user enable", p.returncode == 0 and pg.psql(
        f"SELECT disabled FROM users WHERE id = '{uid}'") == "f", show(p))
    for sub in ("disable", "enable"):
        p = run("user", sub, "nobody", conninfo=db)
        check(f"user {sub} of an unknown user: exit 1, one line", p.returncode == 1 and
              one_line_error(p), show(p))

    # The database never holds a password, only the hashes.
    dump = subprocess.run([os.path.join(pg.bindir, "pg_dump"), "-d", db],
                          capture_output=True, text=True)
    check("pg_dump works (users)", dump.returncode == 0 and "password_hash" in dump.stdout,
          dump.stderr)
    for secret in (pw, "s3cret-no-newline", "a new password", "x" * 1024):
        check(f"no password in the database dump ({secret[:12]}...)",
              secret not in dump.stdout)
    nusers = int(pg.psql("SELECT count(*) FROM users"))
    nsecrets = int(pg.psql("SELECT count(*) FROM client_secrets"))
    check("the dump holds the users' Argon2id hashes",
          dump.stdout.count("$argon2id$") == nusers + nsecrets, f"{nusers} {nsecrets}")

    # Usage of the other user commands.
    for args in (["user"], ["user", "frob"], ["user", "role"], ["user", "show"],
                 ["user", "show", "a", "b"], ["user", "list", "x"],
                 ["user", "list", "--password-stdin"], ["user", "disable"],
                 ["user", "role", "add", "alice"], ["user", "role", "remove", "a", "b", "c"],
                 ["user", "passwd", "--password-stdin"], ["user", "show", "a", "--bogus"]):
        p = run_in(b"pw\n", *args, conninfo=db)
        check(f"usage error exit 2, one line: idpctl {' '.join(args)}",
              p.returncode == 2 and one_line_error(p) and p.stdout == "", show(p))
    p = run("help")
    for cmd in ("user add", "user passwd", "user disable", "user enable", "user role add",
                "user role remove", "user list", "user show", "--username", "--email",
                "--email-verified", "--role", "--password-stdin"):
        check(f"help documents {cmd}", cmd in p.stdout)


def main():
    verify = sodium_verify()
    with tempfile.TemporaryDirectory(prefix="idpctl-test-") as tmp, PgCluster() as pg:
        try:
            test_usage()
            test_kek(tmp)
            test_migrate(pg, pg.conninfo)
            test_clients(pg, pg.conninfo, verify)
            test_schema_002(pg)
            test_users(pg, pg.conninfo, verify)
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
