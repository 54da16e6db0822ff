#!/usr/bin/python3
"""test_idp.py: idp end to end: a throwaway PostgreSQL, idpctl migrate and clients, the
real idp (parent, signer, workers), every endpoint and error of the core issue, tokens
verified by PyJWT exactly as relying parties do, and no secret in the logs.

Usage: test_idp.py IDP IDPCTL"""

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pgcluster import PgCluster  # noqa: E402
from idplib import IdpEnv  # noqa: E402

import jwt  # noqa: E402

IDP, IDPCTL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
passed = failed = 0
secrets_seen = []	# every secret and token of the run: none may reach a log


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name} {str(detail)[:600]}")


def b64json(seg):
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


with PgCluster() as pg:
    env = IdpEnv(pg, IDP, IDPCTL)
    try:
        svc = env.add_client("--name", "billing", "--grant", "client_credentials",
                             "--scope", "read write", "--default-scope", "read",
                             "--audience", "https://api.example", "--audience", "https://other.example")
        plain = env.add_client("--name", "plain")
        secrets_seen += [svc["client_secret"], plain["client_secret"]]

        # -n checks the configuration.
        r = subprocess.run([IDP, "-n", "-c", env.conf_path], capture_output=True, text=True)
        check("idp -n says the configuration is OK", r.returncode == 0 and "OK" in r.stdout, r)
        bad = os.path.join(env.dir, "bad.conf")
        open(bad, "w").write(open(env.conf_path).read() + "colour = blue\n")
        r = subprocess.run([IDP, "-n", "-c", bad], capture_output=True, text=True)
        check("an unknown key is an error with its line number",
              r.returncode != 0 and "colour" in r.stderr and re.search(r":\d+:", r.stderr), r.stderr)
        r = subprocess.run([IDP, "-n", "-c", env.conf_path], capture_output=True, text=True,
                           env={**os.environ, "IDP_WORKERS": "many"})
        check("IDP_<KEY> overrides are checked too", r.returncode != 0 and "IDP_WORKERS" in r.stderr, r.stderr)
        os.chmod(env.kek, 0o644)
        r = subprocess.run([IDP, "-n", "-c", env.conf_path], capture_output=True, text=True)
        check("a world-readable key-encryption key is refused", r.returncode != 0 and "chmod" in r.stderr, r.stderr)
        os.chmod(env.kek, 0o600)

        env.start()
        iss = env.issuer
        want = max(1, (os.cpu_count() or 1) // 2)
        m = re.search(r"with (\d+) workers, (\d+) Argon2id threads each", env.log())
        check("argon2_threads defaults to the cores shared among the workers",
              m is not None and (int(m.group(1)), int(m.group(2))) == (2, want), (m and m.groups(), want))

        # Discovery and JWKS.
        r = env.get("/.well-known/openid-configuration")
        d = r.json()
        r8414 = env.get("/.well-known/oauth-authorization-server")
        check("RFC 8414 metadata: the same document", r8414.status == 200 and r8414.body == r.body
              and r8414.header("content-type", ).startswith("application/json"), r8414.status)
        check("discovery", r.status == 200 and d["issuer"] == iss and d["jwks_uri"] == iss + "/jwks"
              and d["token_endpoint"] == iss + "/token"
              and "client_credentials" in d["grant_types_supported"]
              and set(d["token_endpoint_auth_methods_supported"]) >= {"client_secret_basic", "client_secret_post"}, d)
        jwks = [env.get(p) for p in ("/jwks", "/.well-known/jwks.json", "/.well-known/openid-configuration/jwks")]
        check("JWKS on all three paths, identical", all(x.status == 200 for x in jwks)
              and len({x.body for x in jwks}) == 1, [x.status for x in jwks])
        keys = jwks[0].json()["keys"]
        check("JWKS publishes the active and the next key, public parts only",
              len(keys) >= 2 and all("d" not in k and k.get("kid") for k in keys), keys)
        cc = jwks[0].header("cache-control") or ""
        m = re.search(r"max-age=(\d+)", cc)
        check("JWKS Cache-Control max-age", m is not None and int(m.group(1)) > 0, cc)
        etag = jwks[0].header("etag")
        r = env.get("/jwks", {"If-None-Match": etag})
        check("JWKS ETag and 304", etag and r.status == 304 and r.body == b"", (etag, r.status))

        # client_credentials.
        r = env.token({"grant_type": "client_credentials"}, auth=(svc["client_id"], svc["client_secret"]))
        t = r.json()
        secrets_seen.append(t.get("access_token", ""))
        check("client_credentials with client_secret_basic", r.status == 200 and t["token_type"] == "Bearer"
              and t["expires_in"] > 0 and t["scope"] == "read", (r.status, r.body))
        check("token responses are not cached", r.header("cache-control") == "no-store"
              and r.header("pragma") == "no-cache", r.headers)
        h = b64json(t["access_token"].split(".")[0])
        c = b64json(t["access_token"].split(".")[1])
        check("RFC 9068 header", h["typ"] == "at+jwt" and h["alg"] == "RS256" and h["kid"], h)
        check("RFC 9068 claims", c["iss"] == iss and c["sub"] == svc["client_id"]
              and c["client_id"] == svc["client_id"] and c["aud"] == "https://api.example"
              and c["exp"] > c["iat"] and len(c["jti"]) >= 16 and c["scope"] == "read", c)

        pyjwk = jwt.PyJWKClient(iss + "/.well-known/openid-configuration/jwks")
        key = pyjwk.get_signing_key_from_jwt(t["access_token"])
        dec = jwt.decode(t["access_token"], key.key, algorithms=["RS256"],
                         audience="https://api.example", issuer=iss)
        check("PyJWT PyJWKClient verifies the token", dec["sub"] == svc["client_id"], dec)

        # openid-client discovery + client_credentials, jose createRemoteJWKSet + jwtVerify.
        here = os.path.dirname(os.path.abspath(__file__))
        r = subprocess.run(["node", os.path.join(here, "rp_jose.mjs"), iss, svc["client_id"],
                            svc["client_secret"], "https://api.example"],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "NODE_PATH": os.path.join(here, "..", "node_modules")})
        out = json.loads(r.stdout) if r.returncode == 0 else {}
        check("openid-client discovery and jose jwtVerify accept the token",
              out.get("ok") and out["claims"]["client_id"] == svc["client_id"]
              and out["header"]["typ"] == "at+jwt", r.stderr or r.stdout)

        r = env.token({"grant_type": "client_credentials", "client_id": svc["client_id"],
                       "client_secret": svc["client_secret"], "scope": "read write",
                       "resource": "https://other.example"})
        c = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        check("client_secret_post, requested scopes and resource", r.status == 200 and
              c["scope"] == "read write" and c["aud"] == "https://other.example", (r.status, r.body))
        r = env.token({"grant_type": "client_credentials", "audience": "https://other.example"},
                      auth=(svc["client_id"], svc["client_secret"]))
        check("audience parameter", r.status == 200 and jwt.decode(
            r.json()["access_token"], options={"verify_signature": False})["aud"] == "https://other.example", r.body)
        r = env.token({"grant_type": "client_credentials"}, auth=(plain["client_id"], plain["client_secret"]))
        c = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        check("a client without audiences gets the issuer as aud", r.status == 200 and c["aud"] == iss, c)

        # Errors.
        def err(resp):
            try:
                return resp.json().get("error")
            except ValueError:
                return None

        r = env.token({"grant_type": "client_credentials"}, auth=(svc["client_id"], "wrong"))
        check("wrong secret: 401 invalid_client with WWW-Authenticate: Basic",
              r.status == 401 and err(r) == "invalid_client"
              and (r.header("www-authenticate") or "").startswith("Basic"), (r.status, r.headers))
        r = env.token({"grant_type": "client_credentials"}, auth=("nobody", "x"))
        check("unknown client: 401 invalid_client", r.status == 401 and err(r) == "invalid_client", r.body)
        r = env.token({"grant_type": "client_credentials"})
        check("no credentials: 401 invalid_client", r.status == 401 and err(r) == "invalid_client", r.body)
        r = env.token({"grant_type": "client_credentials", "scope": "admin"}, auth=(svc["client_id"], svc["client_secret"]))
        check("scope outside the allowed set: invalid_scope", r.status == 400 and err(r) == "invalid_scope", r.body)
        r = env.token({"grant_type": "client_credentials", "resource": "https://evil.example"},
                      auth=(svc["client_id"], svc["client_secret"]))
        check("resource not allowed: invalid_target", r.status == 400 and err(r) == "invalid_target", r.body)
        r = env.token({"grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
                      auth=(svc["client_id"], svc["client_secret"]))
        check("unsupported_grant_type", r.status == 400 and err(r) == "unsupported_grant_type", r.body)
        r = env.token("grant_type=client_credentials&scope=read&scope=write", auth=(svc["client_id"], svc["client_secret"]))
        check("repeated parameter: invalid_request", r.status == 400 and err(r) == "invalid_request", r.body)
        r = env.token("scope=read", auth=(svc["client_id"], svc["client_secret"]))
        check("missing grant_type: invalid_request", r.status == 400 and err(r) == "invalid_request", r.body)
        r = env.token({"grant_type": "client_credentials", "client_id": svc["client_id"],
                       "client_secret": svc["client_secret"]}, auth=(svc["client_id"], svc["client_secret"]))
        check("two authentication methods at once: invalid_request", r.status == 400 and err(r) == "invalid_request", r.body)
        r = env.request("POST", "/token", json.dumps({"grant_type": "client_credentials"}),
                        {"Content-Type": "application/json"})
        check("a JSON body: invalid_request", r.status == 400 and err(r) == "invalid_request", r.body)
        r = env.get("/token")
        check("GET /token: 405 with Allow: POST", r.status == 405 and "POST" in (r.header("allow") or ""), r.status)
        r = env.get("/nothing-here")
        check("unknown route: 404 JSON", r.status == 404 and r.header("content-type", ).startswith("application/json"), r.status)
        r = env.token({"grant_type": "client_credentials", "scope": "' OR 1=1 --"},
                      auth=(svc["client_id"] + "'; DROP TABLE clients; --", "x"))
        check("SQL metacharacters are just data", r.status == 401 and pg.psql("select count(*) from clients") == "2", r.body)

        # Health and metrics.
        check("/healthz", env.get("/healthz").status == 200)
        r = env.get("/metrics")
        text = r.body.decode()
        check("/metrics has requests, latency, tokens, auth failures and key ages",
              r.status == 200 and "idp_http_requests_total" in text and "idp_http_request_duration_seconds_bucket" in text
              and "idp_tokens_issued_total" in text and "idp_client_auth_failures_total" in text
              and "idp_signing_key_age_seconds" in text, text[:500])

        # A disabled client stops working within a second, on every worker.
        env.ctl("client", "disable", plain["client_id"])
        time.sleep(1.0)
        codes = {env.token({"grant_type": "client_credentials"}, auth=(plain["client_id"], plain["client_secret"])).status
                 for _ in range(8)}
        check("a disabled client is refused by every worker within a second", codes == {401}, codes)
        # A second secret works at once; a revoked one stops.
        r = env.ctl("client", "secret", "add", svc["client_id"], "--json")
        second = json.loads(r.stdout)
        secrets_seen.append(second["client_secret"])
        time.sleep(1.0)
        ok = [env.token({"grant_type": "client_credentials"}, auth=(svc["client_id"], s)).status
              for s in (svc["client_secret"], second["client_secret"])]
        check("two live secrets both work", ok == [200, 200], ok)

        # access_token_typ = JWT, for verifiers that refuse at+jwt (Spring's defaults).
        bad = os.path.join(env.dir, "typ.conf")
        open(bad, "w").write(open(env.conf_path).read() + 'access_token_typ = "jwt+at"\n')
        r = subprocess.run([IDP, "-n", "-c", bad], capture_output=True, text=True)
        check("access_token_typ other than at+jwt or JWT is refused",
              r.returncode != 0 and "access_token_typ" in r.stderr, r.stderr)
        before = t["access_token"]
        env.stop()
        env.conf["access_token_typ"] = "JWT"
        env.write_conf()
        env.start()
        r = env.token({"grant_type": "client_credentials"}, auth=(svc["client_id"], svc["client_secret"]))
        at = r.json().get("access_token", "") if r.status == 200 else ""
        secrets_seen.append(at)
        h = b64json(at.split(".")[0]) if at else {}
        key = pyjwk.get_signing_key_from_jwt(at) if at else None
        dec = jwt.decode(at, key.key, algorithms=["RS256"], audience="https://api.example",
                         issuer=iss) if key else {}
        check("access_token_typ = JWT: the header says JWT, the claims stay RFC 9068's, PyJWT verifies",
              h.get("typ") == "JWT" and dec.get("client_id") == svc["client_id"] and dec.get("jti"), (h, dec))

        def introspect(tok):
            return env.request("POST", "/introspect", urllib.parse.urlencode({"token": tok}), {
                "Authorization": "Basic " + base64.b64encode(
                    f"{svc['client_id']}:{svc['client_secret']}".encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded"}).json()
        check("...and idp still takes both kinds as access tokens (introspection)",
              introspect(at).get("active") is True and introspect(before).get("active") is True,
              (introspect(at), introspect(before)))

        # Repeated failures slow down, then 429.
        statuses = [env.token({"grant_type": "client_credentials"}, auth=(svc["client_id"], f"bad{i}")).status
                    for i in range(30)]
        check("repeated failures end in 429", 429 in statuses and statuses[0] == 401, statuses)
    finally:
        rc = env.stop()
        check("SIGTERM: idp drains and exits 0", rc == 0, rc)
        log = env.log() + pg.log()
        leaked = [s[:12] for s in secrets_seen if s and s in log]
        check("no secret or token in the logs", not leaked, leaked)
        if failed:
            print("---- idp log ----\n" + env.log()[-6000:])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
