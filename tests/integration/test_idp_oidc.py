#!/usr/bin/python3
"""test_idp_oidc.py: the token side of idp for people: the authorization_code grant
(PKCE, nonce, code replay), ID tokens, refresh-token rotation and reuse detection,
the password grant, /userinfo, /introspect and /revoke, against a throwaway
PostgreSQL and the real binaries. Codes come from the real flow (GET /authorize, the
HTML login form, the redirect) driven here with a small cookie jar, and from
openid-client in oidc_flow.mjs; a few edge cases (expired codes) insert auth_codes rows
directly. ID tokens are verified with PyJWT and with jose.

Usage: test_idp_oidc.py IDP IDPCTL"""

import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pgcluster import PgCluster  # noqa: E402
from idplib import IdpEnv  # noqa: E402

import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

IDP, IDPCTL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
HERE = os.path.dirname(os.path.abspath(__file__))
REDIRECT = "http://127.0.0.1:9/cb"
GRACE = 2	# refresh_reuse_grace of the test server, seconds
passed = failed = 0
secrets_seen = []	# every secret, code and token of the run: none may reach a log


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name} {str(detail)[:800]}")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64json(seg):
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def claims_of(token):
    return b64json(token.split(".")[1])


def header_of(token):
    return b64json(token.split(".")[0])


def pkce():
    verifier = b64url(secrets.token_bytes(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def err(resp):
    try:
        return resp.json().get("error")
    except ValueError:
        return None


def at_hash(access_token):
    return b64url(hashlib.sha256(access_token.encode()).digest()[:16])


class Browser:
    """A user agent: cookies for one host, forms answered, redirects followed until one
    leaves for the redirect_uri."""

    def __init__(self, env):
        self.env, self.cookies = env, {}

    def request(self, method, url, body=None):
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        h = {}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c = http.client.HTTPConnection("127.0.0.1", self.env.port, timeout=15)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";")[0]
                if re.search(r"max-age=0", v, re.I):
                    self.cookies.pop(name.strip(), None)
                else:
                    self.cookies[name.strip()] = value
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data.decode("utf-8", "replace")

    def authorize(self, params, username, password):
        """The redirect back to the client (a dict of its query), or raises."""
        url = self.env.issuer + "/authorize?" + urllib.parse.urlencode(params)
        status, headers, body = self.request("GET", url)
        for _ in range(10):
            if status in (302, 303):
                loc = urllib.parse.urljoin(url, headers["location"])
                if loc.startswith(params["redirect_uri"]):
                    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
                url = loc
                status, headers, body = self.request("GET", loc)
                continue
            if status != 200:
                raise RuntimeError(f"authorize: HTTP {status}: {body[:300]}")
            m = re.search(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', body, re.S)
            if not m:
                raise RuntimeError("authorize: no form: " + body[:300])
            fields = [(html.unescape(a), html.unescape(b)) for a, b in
                      re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', m.group(2))]
            if 'name="password"' in body:
                fields += [("username", username), ("password", password)]
            else:
                fields += [("decision", "allow")]
            url = urllib.parse.urljoin(url, html.unescape(m.group(1)))
            status, headers, body = self.request("POST", url, urllib.parse.urlencode(fields))
        raise RuntimeError("authorize: too many steps")


with PgCluster() as pg:
    env = IdpEnv(pg, IDP, IDPCTL, refresh_reuse_grace=f"{GRACE}s",
                 cors_origins="https://app.example")
    try:
        def add_user(name, password, *args):
            r = subprocess.run([IDPCTL, "-d", pg.conninfo, "user", "add", "--username", name,
                                *args, "--password-stdin"], input=password + "\n",
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            return pg.psql(f"SELECT id FROM users WHERE username = '{name}'")

        alice_pw, bob_pw, carol_pw = "correct horse battery", "bob's secret pw", "carol-pw-1234"
        alice = add_user("alice", alice_pw, "--email", "alice@example.com", "--email-verified",
                         "--name", "Alice Liddell", "--role", "admin", "--role", "reader")
        bob = add_user("bob", bob_pw)
        carol = add_user("carol", carol_pw)
        secrets_seen += [alice_pw, bob_pw, carol_pw]

        scopes = ["--scope", "openid profile email api"]
        web = env.add_client("--name", "web", "--first-party", "--grant", "authorization_code",
                             "--grant", "refresh_token", "--redirect-uri", REDIRECT, *scopes,
                             "--audience", "https://api.example")
        other = env.add_client("--name", "other", "--first-party", "--grant", "authorization_code",
                               "--grant", "refresh_token", "--redirect-uri", REDIRECT, *scopes)
        norefresh = env.add_client("--name", "norefresh", "--first-party", "--grant",
                                   "authorization_code", "--redirect-uri", REDIRECT, *scopes)
        spa = env.add_client("--name", "spa", "--first-party", "--public", "--grant",
                             "authorization_code", "--grant", "refresh_token",
                             "--redirect-uri", REDIRECT, *scopes)
        legacy = env.add_client("--name", "legacy", "--grant", "password", "--grant",
                                "refresh_token", *scopes)
        rs = env.add_client("--name", "resource-server", "--grant", "client_credentials")
        svc = env.add_client("--name", "svc", "--grant", "client_credentials", "--scope", "read")
        for c in (web, other, norefresh, legacy, rs, svc):
            secrets_seen.append(c["client_secret"])
        WEB = (web["client_id"], web["client_secret"])
        OTHER = (other["client_id"], other["client_secret"])
        RS = (rs["client_id"], rs["client_secret"])
        r = subprocess.run([IDP, "-n", "-c", env.conf_path], capture_output=True, text=True,
                           env={**os.environ, "IDP_ID_TOKEN_TTL": "1h"})
        check("id_token_ttl longer than access_token_ttl is refused",
              r.returncode != 0 and "id_token_ttl" in r.stderr, r.stderr)
        env.start()
        iss = env.issuer

        def post(path, form, auth=None, headers=None):
            h = {"Content-Type": "application/x-www-form-urlencoded"}
            if auth is not None:
                u = urllib.parse.quote(auth[0], safe="")
                p = urllib.parse.quote(auth[1], safe="")
                h["Authorization"] = "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
            h.update(headers or {})
            body = form if isinstance(form, str) else urllib.parse.urlencode(form)
            return env.request("POST", path, body, h)

        def introspect(token, auth=RS):
            return post("/introspect", {"token": token}, auth)

        def userinfo(token):
            return env.request("GET", "/userinfo", headers={"Authorization": "Bearer " + token})

        def get_code(client_id, user="alice", pw=alice_pw, scope="openid profile email",
                     nonce=None, challenge=None, method="S256", extra=None):
            params = {"response_type": "code", "client_id": client_id,
                      "redirect_uri": REDIRECT, "scope": scope, "state": secrets.token_hex(8)}
            if nonce:
                params["nonce"] = nonce
            if challenge:
                params["code_challenge"] = challenge
                params["code_challenge_method"] = method
            params.update(extra or {})
            q = Browser(env).authorize(params, user, pw)
            if q.get("state") != params["state"] or "code" not in q:
                raise RuntimeError(f"authorize: {q}")
            secrets_seen.append(q["code"])
            return q["code"]

        def insert_code(client_id, user_id, challenge=None, method="S256", ttl="60 seconds",
                        scope="openid profile email", nonce=None):
            code = b64url(secrets.token_bytes(32))
            h = hashlib.sha256(code.encode()).hexdigest()
            pg.psql("INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope,"
                    " nonce, code_challenge, code_challenge_method, auth_time, expires_at) VALUES"
                    f" (decode('{h}', 'hex'), '{client_id}', '{user_id}', '{REDIRECT}', '{scope}',"
                    f" {repr(nonce) if nonce else 'NULL'}, {repr(challenge) if challenge else 'NULL'},"
                    f" {repr(method) if challenge else 'NULL'}, now() - interval '5 seconds',"
                    f" now() + interval '{ttl}')")
            return code

        def redeem(code, verifier, auth=WEB, redirect_uri=REDIRECT, extra=None):
            form = {"grant_type": "authorization_code", "code": code}
            if redirect_uri is not None:
                form["redirect_uri"] = redirect_uri
            if verifier is not None:
                form["code_verifier"] = verifier
            form.update(extra or {})
            if isinstance(auth, str):
                form["client_id"] = auth
                auth = None
            r = post("/token", form, auth)
            if r.status == 200:
                t = r.json()
                secrets_seen.extend(t.get(k, "") for k in ("access_token", "refresh_token", "id_token"))
            return r

        def refresh(rt, auth=WEB, scope=None):
            form = {"grant_type": "refresh_token", "refresh_token": rt}
            if scope is not None:
                form["scope"] = scope
            if isinstance(auth, str):
                form["client_id"] = auth
                auth = None
            r = post("/token", form, auth)
            if r.status == 200:
                t = r.json()
                secrets_seen.extend(t.get(k, "") for k in ("access_token", "refresh_token", "id_token"))
            return r

        # ---- discovery ------------------------------------------------------------------
        d = env.get("/.well-known/openid-configuration").json()
        check("discovery: userinfo, introspection and revocation endpoints",
              d.get("userinfo_endpoint") == iss + "/userinfo"
              and d.get("introspection_endpoint") == iss + "/introspect"
              and d.get("revocation_endpoint") == iss + "/revoke", d)
        check("discovery: grant types and auth methods",
              {"authorization_code", "refresh_token", "client_credentials", "password"}
              <= set(d["grant_types_supported"])
              and "none" in d["token_endpoint_auth_methods_supported"]
              and d["id_token_signing_alg_values_supported"] == ["RS256"], d)

        # ---- the code flow through the login form, PyJWT ------------------------------------
        verifier, challenge = pkce()
        nonce = secrets.token_urlsafe(16)
        code = get_code(web["client_id"], nonce=nonce, challenge=challenge)
        r = redeem(code, verifier)
        t = r.json() if r.status == 200 else {}
        check("authorization_code: 200 with access, ID and refresh token",
              r.status == 200 and t.get("token_type") == "Bearer" and t.get("expires_in", 0) > 0
              and t.get("id_token") and t.get("refresh_token") and
              t.get("scope") == "openid profile email", (r.status, r.body))
        check("authorization_code: Cache-Control no-store", r.header("cache-control") == "no-store"
              and r.header("pragma") == "no-cache", r.headers)
        first = t
        pyjwk = jwt.PyJWKClient(iss + "/jwks")
        idt = t.get("id_token", "")
        try:
            key = pyjwk.get_signing_key_from_jwt(idt)
            idc = jwt.decode(idt, key.key, algorithms=["RS256"], audience=web["client_id"],
                             issuer=iss, options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except Exception as e:  # noqa: BLE001
            idc = {"error": repr(e)}
        check("ID token verifies with PyJWT (PyJWKClient, aud = client_id, iss)",
              idc.get("sub") == alice, idc)
        check("ID token header typ JWT with our kid", header_of(idt).get("typ") == "JWT"
              and header_of(idt).get("kid"), header_of(idt) if idt else None)
        check("ID token claims: nonce, auth_time, at_hash, iat/exp",
              idc.get("nonce") == nonce and isinstance(idc.get("auth_time"), int)
              and idc["auth_time"] <= idc["iat"] <= time.time() + 5 < idc["exp"] + 5
              and idc.get("at_hash") == at_hash(t["access_token"]), idc)
        check("ID token profile and email claims by scope, roles",
              idc.get("name") == "Alice Liddell" and idc.get("preferred_username") == "alice"
              and idc.get("email") == "alice@example.com" and idc.get("email_verified") is True
              and idc.get("roles") == ["admin", "reader"] and "azp" not in idc, idc)
        at = claims_of(t["access_token"])
        check("access token (RFC 9068): sub = user, client_id, scope, aud, auth_time, jti",
              header_of(t["access_token"])["typ"] == "at+jwt" and at["sub"] == alice
              and at["client_id"] == web["client_id"] and at["scope"] == "openid profile email"
              and at["aud"] == "https://api.example" and at["auth_time"] == idc.get("auth_time")
              and len(at["jti"]) >= 16 and at["roles"] == ["admin", "reader"], at)
        try:
            jwt.decode(t["access_token"], pyjwk.get_signing_key_from_jwt(t["access_token"]).key,
                       algorithms=["RS256"], audience="https://api.example", issuer=iss)
            ok = True
        except Exception as e:  # noqa: BLE001
            ok = repr(e)
        check("access token verifies with PyJWT", ok is True, ok)

        # ---- userinfo -----------------------------------------------------------------
        r = userinfo(t["access_token"])
        u = r.json() if r.status == 200 else {}
        check("userinfo GET with Bearer: claims by scope",
              r.status == 200 and u == {"sub": alice, "name": "Alice Liddell",
                                        "preferred_username": "alice", "email": "alice@example.com",
                                        "email_verified": True, "roles": ["admin", "reader"]}
              and r.header("cache-control") == "no-store", (r.status, r.body))
        r = post("/userinfo", {"access_token": t["access_token"]})
        check("userinfo POST with form access_token", r.status == 200 and r.json()["sub"] == alice,
              (r.status, r.body))
        r = post("/userinfo", {"access_token": t["access_token"]},
                 headers={"Authorization": "Bearer " + t["access_token"]})
        check("userinfo with the token twice (header and form): 400", r.status == 400, r.status)
        r = env.get("/userinfo")
        check("userinfo without a token: 401 with a bare Bearer challenge",
              r.status == 401 and (r.header("www-authenticate") or "").startswith("Bearer realm=")
              and "error=" not in r.header("www-authenticate"), r.headers)
        r = userinfo("not-a-token")
        check("userinfo with garbage: 401 error=\"invalid_token\" (RFC 6750)",
              r.status == 401 and 'error="invalid_token"' in (r.header("www-authenticate") or ""),
              (r.status, r.headers))
        r = userinfo(t["id_token"])
        check("userinfo refuses an ID token (typ JWT)", r.status == 401, r.status)
        r = env.token({"grant_type": "client_credentials"}, auth=(svc["client_id"], svc["client_secret"]))
        cc = r.json()["access_token"]
        r = userinfo(cc)
        check("userinfo with a token without openid: 403 insufficient_scope",
              r.status == 403 and 'error="insufficient_scope"' in (r.header("www-authenticate") or ""),
              (r.status, r.headers))
        v2, c2 = pkce()
        t2 = redeem(get_code(web["client_id"], scope="openid profile", challenge=c2), v2).json()
        u = userinfo(t2["access_token"]).json()
        check("userinfo with scope profile: no email", "name" in u and "email" not in u, u)
        v2, c2 = pkce()
        t2 = redeem(get_code(web["client_id"], scope="openid email", challenge=c2), v2).json()
        u = userinfo(t2["access_token"]).json()
        idc2 = claims_of(t2["id_token"])
        check("userinfo and ID token with scope email: no profile claims",
              u.get("email") == "alice@example.com" and "name" not in u
              and "preferred_username" not in u and "name" not in idc2 and "email" in idc2, (u, idc2))
        v2, c2 = pkce()
        t2 = redeem(get_code(web["client_id"], scope="api", challenge=c2), v2).json()
        check("no openid scope (plain OAuth 2.0 code flow): no ID token",
              "id_token" not in t2 and t2.get("access_token") and t2.get("scope") == "api", t2)
        r = userinfo(t2["access_token"])
        check("... and its access token gets 403 insufficient_scope at /userinfo",
              r.status == 403 and 'error="insufficient_scope"' in (r.header("www-authenticate") or ""),
              (r.status, r.headers))

        # CORS for the configured origins only.
        r = env.request("OPTIONS", "/userinfo", headers={"Origin": "https://app.example",
                                                         "Access-Control-Request-Method": "POST"})
        check("CORS preflight on /userinfo for a configured origin",
              r.status == 204 and r.header("access-control-allow-origin") == "https://app.example"
              and "POST" in (r.header("access-control-allow-methods") or ""), r.headers)
        ok = True
        for path in ("/introspect", "/revoke"):
            r = post(path, {"token": "x"}, RS, headers={"Origin": "https://app.example"})
            r2 = post(path, {"token": "x"}, RS, headers={"Origin": "https://evil.example"})
            ok &= (r.header("access-control-allow-origin") == "https://app.example"
                   and r2.header("access-control-allow-origin") is None)
        check("CORS on /introspect and /revoke for configured origins, none for others", ok)

        # ---- introspection ---------------------------------------------------------------
        r = introspect(first["access_token"])
        j = r.json() if r.status == 200 else {}
        check("introspect a valid access token: active, with its claims",
              j.get("active") is True and j.get("sub") == alice and j.get("client_id") == web["client_id"]
              and j.get("scope") == "openid profile email" and j.get("token_type") == "Bearer"
              and j.get("exp") == at["exp"] and j.get("jti") == at["jti"], (r.status, r.body))
        check("introspect: Cache-Control no-store", r.header("cache-control") == "no-store", r.headers)
        r = introspect(first["refresh_token"], auth=WEB)
        j = r.json()
        check("introspect a refresh token by its client: active", j.get("active") is True
              and j.get("token_type") == "refresh_token" and j.get("username") == "alice"
              and j.get("client_id") == web["client_id"], j)
        r = introspect(first["refresh_token"], auth=RS)
        check("introspect another client's refresh token: inactive", r.json() == {"active": False}, r.body)
        for name, tok in [("unknown", "x" * 43), ("garbage", "a.b.c"), ("empty-ish", "...."),
                          ("an ID token", first["id_token"])]:
            r = introspect(tok)
            check(f"introspect {name}: inactive", r.status == 200 and r.json() == {"active": False},
                  (r.status, r.body))
        # Foreign tokens: our claims, someone else's key (with our kid, and with another).
        fkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fclaims = dict(at, exp=int(time.time()) + 600)
        for label, kid in [("our kid", header_of(first["access_token"])["kid"]), ("its own kid", "evil")]:
            forged = jwt.encode(fclaims, fkey, algorithm="RS256", headers={"typ": "at+jwt", "kid": kid})
            r = introspect(forged)
            check(f"introspect a token signed by a foreign key ({label}): inactive",
                  r.json() == {"active": False}, r.body)
            r = userinfo(forged)
            check(f"userinfo refuses a foreign token ({label})", r.status == 401, r.status)
        none_tok = (b64url(json.dumps({"alg": "none", "typ": "at+jwt", "kid": header_of(first["access_token"])["kid"]}).encode())
                    + "." + b64url(json.dumps(fclaims).encode()) + ".")
        check("introspect alg none: inactive", introspect(none_tok).json() == {"active": False})
        hdr = header_of(first["access_token"])
        tampered = first["access_token"].split(".")
        tampered[1] = b64url(json.dumps(dict(at, sub=bob)).encode())
        check("introspect a tampered payload: inactive", introspect(".".join(tampered)).json() == {"active": False})
        r = post("/introspect", {"token": first["access_token"]})
        check("introspect without client authentication: 401 invalid_client",
              r.status == 401 and err(r) == "invalid_client", (r.status, r.body))
        r = post("/introspect", {"token": first["access_token"], "client_id": spa["client_id"]})
        check("introspect with a public client: 401", r.status == 401, r.status)
        r = post("/introspect", {}, RS)
        check("introspect without token: 400 invalid_request", r.status == 400
              and err(r) == "invalid_request", r.body)

        # ---- code security ------------------------------------------------------------------
        # Replay: the second redemption fails and revokes what the first one got.
        v, c = pkce()
        code = get_code(web["client_id"], challenge=c)
        t1 = redeem(code, v).json()
        r = redeem(code, v)
        check("replayed code: invalid_grant", r.status == 400 and err(r) == "invalid_grant", r.body)
        r = refresh(t1["refresh_token"])
        check("replayed code: the first redemption's refresh family is revoked",
              r.status == 400 and err(r) == "invalid_grant", r.body)
        ok = False
        for _ in range(20):
            if introspect(t1["access_token"]).json() == {"active": False}:
                ok = True
                break
            time.sleep(0.05)
        check("replayed code: the first access token introspects inactive", ok)
        r = userinfo(t1["access_token"])
        check("replayed code: userinfo refuses the first access token", r.status == 401, r.status)
        reason = pg.psql("SELECT f.revoke_reason FROM refresh_families f JOIN auth_codes a"
                         f" ON a.family_id = f.id WHERE a.code_hash = sha256('{code}'::bytea)")
        check("replayed code: revoke_reason code_replay", reason == "code_replay", reason)

        v, c = pkce()
        code = get_code(web["client_id"], challenge=c)
        r = redeem(code, pkce()[0])
        check("wrong code_verifier: invalid_grant", r.status == 400 and err(r) == "invalid_grant", r.body)
        r = redeem(code, v)
        check("a code refused once is spent", r.status == 400 and err(r) == "invalid_grant", r.body)
        code = get_code(web["client_id"], challenge=pkce()[1])
        r = redeem(code, None)
        check("missing code_verifier: invalid_grant", r.status == 400 and err(r) == "invalid_grant", r.body)
        v, c = pkce()
        code = get_code(web["client_id"], challenge=c)
        r = redeem(code, v[:-1] + ("A" if v[-1] != "A" else "B"))
        check("code_verifier differing in one character: invalid_grant", err(r) == "invalid_grant", r.body)
        code = get_code(web["client_id"], challenge=c)
        r = redeem(code, c)
        check("the challenge itself as the verifier: invalid_grant", err(r) == "invalid_grant", r.body)
        v, c = pkce()
        code = get_code(web["client_id"], challenge=c)
        r = redeem(code, v, redirect_uri=REDIRECT + "/x")
        check("redirect_uri mismatch: invalid_grant", err(r) == "invalid_grant", r.body)
        code = get_code(web["client_id"], challenge=c)
        r = redeem(code, v, redirect_uri=None)
        check("redirect_uri missing: invalid_grant", err(r) == "invalid_grant", r.body)
        v, c = pkce()
        code = get_code(web["client_id"], challenge=c)
        r = redeem(code, v, auth=OTHER)
        check("a code of another client: invalid_grant", err(r) == "invalid_grant", r.body)
        r = redeem(code, v)
        check("... and its own client can still redeem it", r.status == 200, r.body)
        v, c = pkce()
        code = insert_code(web["client_id"], alice, challenge=c, ttl="-1 second")
        r = redeem(code, v)
        check("an expired code: invalid_grant", err(r) == "invalid_grant", r.body)
        v, c = pkce()
        code = insert_code(web["client_id"], alice, challenge=c, nonce="n-42")
        r = redeem(code, v)
        check("a code inserted directly (the table's contract) redeems",
              r.status == 200 and claims_of(r.json()["id_token"])["nonce"] == "n-42", r.body)
        code = insert_code(web["client_id"], alice, challenge=v, method="plain")
        r = redeem(code, v)
        check("a plain PKCE challenge (when /authorize allowed it) redeems", r.status == 200, r.body)
        code = insert_code(web["client_id"], alice)
        r = redeem(code, v)
        check("a code_verifier for a code without challenge: invalid_grant",
              err(r) == "invalid_grant", r.body)
        r = redeem(insert_code(web["client_id"], alice), None)
        check("a confidential client's code without PKCE redeems", r.status == 200, r.body)
        r = redeem("nonexistent-code", v)
        check("an unknown code: invalid_grant", err(r) == "invalid_grant", r.body)
        r = post("/token", {"grant_type": "authorization_code", "redirect_uri": REDIRECT}, WEB)
        check("no code: invalid_request", err(r) == "invalid_request", r.body)
        r = redeem(get_code(web["client_id"], challenge=c), v, auth=(web["client_id"], "wrong"))
        check("wrong client secret: 401 invalid_client", r.status == 401 and err(r) == "invalid_client", r.body)
        r = redeem(get_code(web["client_id"], challenge=c), v, auth=web["client_id"])
        check("a confidential client with client_id alone: 401", r.status == 401, r.body)
        pg.psql(f"UPDATE users SET disabled = true WHERE id = '{carol}'")
        r = redeem(insert_code(web["client_id"], carol, challenge=c), v)
        check("a code of a disabled user: invalid_grant", err(r) == "invalid_grant", r.body)
        pg.psql(f"UPDATE users SET disabled = false WHERE id = '{carol}'")

        # Public client: none + PKCE.
        v, c = pkce()
        r = redeem(get_code(spa["client_id"], challenge=c), v, auth=spa["client_id"])
        ts = r.json() if r.status == 200 else {}
        check("public client: client_id alone with PKCE", r.status == 200 and ts.get("refresh_token"), r.body)
        r = refresh(ts.get("refresh_token", ""), auth=spa["client_id"])
        check("public client: refresh with client_id alone", r.status == 200, r.body)
        r = redeem(insert_code(spa["client_id"], alice), None, auth=spa["client_id"])
        check("public client: a code without PKCE is refused", err(r) == "invalid_grant", r.body)
        r = redeem(get_code(spa["client_id"], challenge=c), v, auth=(spa["client_id"], "x"))
        check("public client with a secret: 401", r.status == 401, r.body)

        v, c = pkce()
        r = redeem(get_code(norefresh["client_id"], challenge=c), v,
                   auth=(norefresh["client_id"], norefresh["client_secret"]))
        check("a client without the refresh_token grant gets no refresh token",
              r.status == 200 and "refresh_token" not in r.json() and "id_token" in r.json(), r.body)

        # ---- refresh ----------------------------------------------------------------------
        v, c = pkce()
        t0 = redeem(get_code(web["client_id"], challenge=c), v).json()
        r = refresh(t0["refresh_token"])
        t1 = r.json() if r.status == 200 else {}
        check("refresh: new access, ID and refresh token", r.status == 200
              and t1["refresh_token"] != t0["refresh_token"] and t1["access_token"] != t0["access_token"]
              and t1.get("id_token") and t1["scope"] == "openid profile email", r.body)
        idr = claims_of(t1["id_token"])
        id0 = claims_of(t0["id_token"])
        check("refreshed ID token: same sub, aud and auth_time, no nonce, new at_hash",
              idr["sub"] == id0["sub"] and idr["aud"] == id0["aud"] and idr["auth_time"] == id0["auth_time"]
              and "nonce" not in idr and idr["at_hash"] == at_hash(t1["access_token"]), idr)
        r = refresh(t0["refresh_token"])
        check("refresh again within the grace window: the same successor",
              r.status == 200 and r.json()["refresh_token"] == t1["refresh_token"]
              and r.json()["access_token"] == t1["access_token"], r.body)
        r = refresh(t1["refresh_token"], scope="openid")
        t2 = r.json() if r.status == 200 else {}
        check("refresh with a narrower scope", r.status == 200 and t2["scope"] == "openid"
              and claims_of(t2["access_token"])["scope"] == "openid"
              and "name" not in claims_of(t2["id_token"]), r.body)
        r = refresh(t2["refresh_token"], scope="openid profile email api")
        check("refresh may not widen the scope: invalid_scope", err(r) == "invalid_scope", r.body)
        r = refresh(t2["refresh_token"])
        t3 = r.json() if r.status == 200 else {}
        check("the successor keeps the original scope", r.status == 200
              and t3["scope"] == "openid profile email", r.body)
        r = refresh(t3["refresh_token"], auth=OTHER)
        check("another client's refresh token: invalid_grant", err(r) == "invalid_grant", r.body)
        r = refresh(t3["refresh_token"])
        check("... and it was not spent by that", r.status == 200, r.body)
        t4 = r.json()
        time.sleep(GRACE + 1)
        r = refresh(t3["refresh_token"])
        check("reuse of a rotated refresh token after the grace window: invalid_grant",
              err(r) == "invalid_grant", r.body)
        r = refresh(t4["refresh_token"])
        check("reuse revokes the whole family (the newest token too)", err(r) == "invalid_grant", r.body)
        ok = False
        for _ in range(20):
            if introspect(t4["access_token"]).json() == {"active": False}:
                ok = True
                break
            time.sleep(0.05)
        check("reuse revokes the family's access tokens", ok)
        reason = pg.psql("SELECT DISTINCT f.revoke_reason FROM refresh_families f JOIN refresh_tokens t"
                         " ON t.family_id = f.id WHERE t.token_hash ="
                         f" sha256('{t4['refresh_token']}'::bytea)")
        check("reuse: revoke_reason reuse", reason == "reuse", reason)

        # Concurrent refreshes of one token: all get the same successor.
        v, c = pkce()
        t0 = redeem(get_code(web["client_id"], challenge=c), v).json()
        results = []

        def worker():
            results.append(refresh(t0["refresh_token"]))
        ths = [threading.Thread(target=worker) for _ in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        rts = {x.json().get("refresh_token") for x in results if x.status == 200}
        check("concurrent refreshes: all succeed with one successor",
              all(x.status == 200 for x in results) and len(rts) == 1, [(x.status, x.body[:100]) for x in results])
        n = pg.psql("SELECT count(*) FROM refresh_tokens t JOIN refresh_tokens o ON o.family_id = t.family_id"
                    f" WHERE o.token_hash = sha256('{t0['refresh_token']}'::bytea)")
        check("concurrent refreshes: one successor row", n == "2", n)
        r = refresh(rts.pop() if rts else "")
        check("the shared successor works", r.status == 200, r.body)

        # The table holds only hashes; successor_enc is not the token.
        rows = pg.psql("SELECT encode(token_hash, 'hex') || ' ' || COALESCE(encode(successor_enc, 'hex'), '')"
                       " FROM refresh_tokens")
        check("refresh tokens stored only hashed (no token in the table)",
              all(x not in rows for x in (t0["refresh_token"], t1["refresh_token"]))
              and all(b64url(x.encode()) not in rows for x in (t1["refresh_token"],)), "")

        r = refresh("A" * 43)
        check("unknown refresh token: invalid_grant", err(r) == "invalid_grant", r.body)
        r = refresh("short")
        check("malformed refresh token: invalid_grant", err(r) == "invalid_grant", r.body)
        r = post("/token", {"grant_type": "refresh_token"}, WEB)
        check("no refresh_token: invalid_request", err(r) == "invalid_request", r.body)
        v, c = pkce()
        tb = redeem(get_code(web["client_id"], user="bob", pw=bob_pw, challenge=c), v).json()
        env.ctl("user", "disable", "bob")
        r = refresh(tb["refresh_token"])
        check("refresh for a disabled user: invalid_grant", err(r) == "invalid_grant", r.body)
        r = userinfo(tb["access_token"])
        check("userinfo for a disabled user: 401", r.status == 401, r.status)
        env.ctl("user", "enable", "bob")

        # ---- id_token_hint at /authorize (OpenID Connect Core 3.1.2.1) --------------------
        ab = Browser(env)	# alice signs in once; her session stays in ab
        v, c = pkce()
        hp = {"response_type": "code", "client_id": web["client_id"], "redirect_uri": REDIRECT,
              "scope": "openid", "state": "h1", "code_challenge": c, "code_challenge_method": "S256"}
        q = ab.authorize(hp, "alice", alice_pw)
        secrets_seen.append(q.get("code", ""))
        ta = redeem(q["code"], v).json()

        def silent(hint):
            try:
                q = ab.authorize(dict(hp, prompt="none", id_token_hint=hint, state="h2"), "-", "-")
            except RuntimeError as e:
                return {"exception": str(e)[:200]}
            secrets_seen.append(q.get("code", ""))
            return q
        q = silent(ta["id_token"])
        check("prompt=none with the signed-in user's id_token_hint: a code", "code" in q
              and q.get("state") == "h2", q)
        q = silent(tb["id_token"])
        check("prompt=none with another user's id_token_hint: login_required",
              q.get("error") == "login_required" and "code" not in q, q)
        forged = ta["id_token"].split(".")
        forged[1] = b64url(json.dumps(dict(claims_of(ta["id_token"]), sub=bob)).encode())
        for name, hint in (("garbage", "not.a.token"), ("a forged signature", ".".join(forged))):
            q = silent(hint)
            check(f"id_token_hint that is {name}: invalid_request", q.get("error") == "invalid_request", q)

        # ---- revocation ---------------------------------------------------------------------
        v, c = pkce()
        tr = redeem(get_code(web["client_id"], challenge=c), v).json()
        r = introspect(tr["access_token"])
        check("before revocation: active", r.json().get("active") is True, r.body)
        start = time.monotonic()
        r = post("/revoke", {"token": tr["access_token"], "token_type_hint": "access_token"}, WEB)
        check("revoke an access token: 200", r.status == 200 and r.header("cache-control") == "no-store",
              (r.status, r.body))
        # Each request on a new connection: both workers answer some of them.
        time.sleep(max(0, 1.0 - (time.monotonic() - start)))
        mark = len(env.log())
        intro = [introspect(tr["access_token"]).json() for _ in range(12)]
        ui = [userinfo(tr["access_token"]).status for _ in range(12)]
        time.sleep(0.3)	# the access log is written every 100 ms
        check("a revoked access token is inactive on every worker within a second",
              all(x == {"active": False} for x in intro), intro)
        check("a revoked access token is refused by /userinfo on every worker",
              all(s == 401 for s in ui), ui)
        workers = set(re.findall(r"worker (\d+): info: \S+ POST /introspect", env.log()[mark:]))
        uworkers = set(re.findall(r"worker (\d+): info: \S+ GET /userinfo", env.log()[mark:]))
        check("those requests reached both workers", len(workers) == 2 and len(uworkers) == 2,
              (workers, uworkers))
        r = refresh(tr["refresh_token"])
        check("revoking an access token leaves the refresh token", r.status == 200, r.body)
        tr2 = r.json()
        r = post("/revoke", {"token": tr2["refresh_token"]}, WEB)
        check("revoke a refresh token: 200", r.status == 200, r.body)
        r = refresh(tr2["refresh_token"])
        check("a revoked refresh token: invalid_grant", err(r) == "invalid_grant", r.body)
        time.sleep(1)
        check("revoking the refresh token revokes its family's access tokens",
              introspect(tr2["access_token"]).json() == {"active": False})
        r = post("/revoke", {"token": "x" * 43}, WEB)
        check("revoke an unknown token: 200", r.status == 200, r.body)
        r = post("/revoke", {"token": "nonsense.at.all"}, WEB)
        check("revoke garbage: 200", r.status == 200, r.body)
        v, c = pkce()
        to = redeem(get_code(web["client_id"], challenge=c), v).json()
        r = post("/revoke", {"token": to["access_token"]}, OTHER)
        r2 = post("/revoke", {"token": to["refresh_token"]}, OTHER)
        time.sleep(0.5)
        check("revoking another client's tokens: 200, and nothing happens",
              r.status == 200 and r2.status == 200 and introspect(to["access_token"]).json()["active"] is True
              and refresh(to["refresh_token"]).status == 200, (r.status, r2.status))
        r = post("/revoke", {"token": to["access_token"]})
        check("revoke without client authentication: 401", r.status == 401, r.status)
        r = post("/revoke", {}, WEB)
        check("revoke without token: 400", r.status == 400 and err(r) == "invalid_request", r.body)
        v, c = pkce()
        tsp = redeem(get_code(spa["client_id"], challenge=c), v, auth=spa["client_id"]).json()
        r = post("/revoke", {"token": tsp["refresh_token"], "client_id": spa["client_id"]})
        check("a public client revokes its refresh token with client_id alone",
              r.status == 200 and err(refresh(tsp["refresh_token"], auth=spa["client_id"])) == "invalid_grant",
              r.body)

        # A worker started after a revocation loads the set from the table.
        v, c = pkce()
        tl = redeem(get_code(web["client_id"], challenge=c), v).json()
        post("/revoke", {"token": tl["access_token"]}, WEB)
        env.stop()
        env.start()
        intro = [introspect(tl["access_token"]).json() for _ in range(6)]
        check("after a restart, revoked tokens stay inactive (loaded from revoked_jtis)",
              all(x == {"active": False} for x in intro), intro)

        # A valid access token is checked in memory: no statement reaches PostgreSQL.
        v, c = pkce()
        tq = redeem(get_code(web["client_id"], challenge=c), v).json()
        for _ in range(10):
            introspect(tq["access_token"])	# every worker has the client cached
        pg.psql("ALTER SYSTEM SET log_statement = 'all'")
        pg.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        mark = len(pg.log())
        act = [introspect(tq["access_token"]).json().get("active") for _ in range(40)]
        time.sleep(0.3)
        stmts = re.findall(r"execute (tk_\w+|br_\w+)", pg.log()[mark:])
        mark = len(pg.log())
        userinfo(tq["access_token"])	# the control: /userinfo reads the user
        time.sleep(0.3)
        control = re.findall(r"execute (tk_\w+)", pg.log()[mark:])
        pg.psql("ALTER SYSTEM RESET log_statement")
        pg.psql("SELECT pg_reload_conf()")
        check("introspecting a valid access token runs no database statement",
              all(a is True for a in act) and not stmts and control == ["tk_user_get"],
              (act, stmts, control))
        pg.stop()
        try:
            act = [introspect(tq["access_token"]).json() for _ in range(6)]
            rev = [introspect(tl["access_token"]).json() for _ in range(6)]
            check("with PostgreSQL down, introspection still answers from memory "
                  "(valid: active, revoked: inactive)",
                  all(a.get("active") is True for a in act)
                  and all(a == {"active": False} for a in rev), (act, rev))
        finally:
            pg.start()
        env.wait_ready()

        # ---- the full flow with openid-client and jose -------------------------------------
        r = subprocess.run(["node", os.path.join(HERE, "oidc_flow.mjs"), iss, web["client_id"],
                            web["client_secret"], REDIRECT, "alice", alice_pw],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "NODE_PATH": os.path.join(HERE, "..", "node_modules")})
        out = json.loads(r.stdout) if r.returncode == 0 else {}
        check("openid-client: code flow with PKCE, nonce and state; jose verifies the ID token",
              out.get("ok") and out["id_claims"]["sub"] == alice and out["id_payload"]["sub"] == alice
              and out["id_header"]["typ"] == "JWT" and out["at_header"]["typ"] == "at+jwt",
              r.stderr or r.stdout)
        if out.get("ok"):
            secrets_seen += [out["first_refresh"], out["second_refresh"]]
            check("openid-client: refresh rotates, with an ID token",
                  out["first_refresh"] != out["second_refresh"] and out["refreshed_has_id_token"], out)
            check("openid-client: fetchUserInfo", out["userinfo"].get("email") == "alice@example.com"
                  and out["userinfo"]["sub"] == alice, out["userinfo"])
            check("openid-client: tokenIntrospection of access and refresh token",
                  out["introspected"].get("active") is True
                  and out["introspected_refresh"].get("active") is True, out)
            check("openid-client: tokenRevocation, then inactive and the refresh refused",
                  out["after_revoke"] == {"active": False}
                  and out["refresh_after_revoke"] == "invalid_grant", out)

        # ---- password grant (legacy) ------------------------------------------------------
        r = post("/token", {"grant_type": "password", "username": "alice", "password": alice_pw,
                            "scope": "openid profile"}, WEB)
        check("password grant refused for a client without it: unauthorized_client",
              r.status == 400 and err(r) == "unauthorized_client", r.body)
        LEG = (legacy["client_id"], legacy["client_secret"])
        r = post("/token", {"grant_type": "password", "username": "alice", "password": alice_pw,
                            "scope": "openid profile"}, LEG)
        tp = r.json() if r.status == 200 else {}
        check("password grant: access, ID and refresh token", r.status == 200
              and tp.get("refresh_token") and claims_of(tp["id_token"])["sub"] == alice
              and claims_of(tp["id_token"])["name"] == "Alice Liddell"
              and claims_of(tp["access_token"])["sub"] == alice, r.body)
        if tp:
            secrets_seen += [tp["access_token"], tp["refresh_token"]]
            r = refresh(tp["refresh_token"], auth=LEG)
            check("password grant: its refresh token rotates", r.status == 200, r.body)
        r = post("/token", {"grant_type": "password", "username": "alice@example.com",
                            "password": alice_pw, "scope": "openid"}, LEG)
        check("password grant by email", r.status == 200, r.body)
        r = post("/token", {"grant_type": "password", "username": "alice", "password": "wrong"}, LEG)
        check("password grant with a wrong password: invalid_grant", err(r) == "invalid_grant", r.body)
        r = post("/token", {"grant_type": "password", "username": "nobody", "password": "x"}, LEG)
        check("password grant for an unknown user: invalid_grant", err(r) == "invalid_grant", r.body)
        r = post("/token", {"grant_type": "password", "username": "alice"}, LEG)
        check("password grant without password: invalid_request", err(r) == "invalid_request", r.body)
        r = post("/token", {"grant_type": "password", "username": "alice", "password": alice_pw,
                            "client_id": spa["client_id"]})
        check("password grant for a public client: refused", r.status in (400, 401), r.body)

        # ---- SQL metacharacters in every parameter ---------------------------------------------
        evil = ["'; DROP TABLE users; --", "\" OR 1=1 --", "\\x00'||(SELECT pg_sleep(5))||'",
                "$1", "%27%3B", "x' UNION SELECT password_hash FROM users --"]
        statuses = []
        t_start = time.monotonic()
        for e in evil:
            for form in ({"grant_type": "authorization_code", "code": e, "redirect_uri": e, "code_verifier": e},
                         {"grant_type": "refresh_token", "refresh_token": e, "scope": e},
                         {"grant_type": "refresh_token", "refresh_token": (e * 10)[:43]},
                         {"grant_type": "password", "username": e, "password": e, "scope": e},
                         {"grant_type": "authorization_code", "code": e, "client_id": e},
                         {"grant_type": e}):
                statuses.append(post("/token", form, WEB if "client_id" not in form else None).status)
                statuses.append(post("/token", form, LEG if form["grant_type"] == "password" else (e, e)).status)
            statuses.append(post("/introspect", {"token": e}, RS).status)
            statuses.append(post("/introspect", {"token": (e * 10)[:43]}, RS).status)
            statuses.append(post("/revoke", {"token": e, "token_type_hint": e}, WEB).status)
            statuses.append(post("/revoke", {"token": (e * 10)[:43]}, WEB).status)
            statuses.append(userinfo(e).status)
            statuses.append(post("/userinfo", {"access_token": e}).status)
        check("SQL metacharacters everywhere: only 4xx answers (no 5xx), quickly",
              all(400 <= s < 500 or s == 200 for s in statuses) and time.monotonic() - t_start < 60,
              statuses)
        n = pg.psql("SELECT count(*) FROM users")
        check("... and the tables are intact", n == "3", n)

        # ---- expiry ----------------------------------------------------------------------
        env.stop()
        env.conf["access_token_ttl"] = "2s"
        env.write_conf()
        env.start()
        v, c = pkce()
        te = redeem(get_code(web["client_id"], challenge=c), v).json()
        check("a short-lived token is active at first", introspect(te["access_token"]).json()["active"] is True)
        check("ID token lifetime follows access_token_ttl by default",
              claims_of(te["id_token"])["exp"] - claims_of(te["id_token"])["iat"] == 2)
        time.sleep(3.1)
        check("an expired access token introspects inactive",
              introspect(te["access_token"]).json() == {"active": False})
        r = userinfo(te["access_token"])
        check("an expired access token: userinfo 401 invalid_token",
              r.status == 401 and "invalid_token" in (r.header("www-authenticate") or ""), r.headers)

        # ---- the password grant's throttle (last: it slows this address down) -------------
        codes = []
        for i in range(12):
            r = post("/token", {"grant_type": "password", "username": "carol", "password": f"bad-{i}"}, LEG)
            codes.append(r.status)
        r = post("/token", {"grant_type": "password", "username": "carol", "password": carol_pw}, LEG)
        check("password grant: repeated failures are throttled like logins (429 with Retry-After)",
              429 in codes and r.status == 429 and r.header("retry-after"), (codes, r.status))

        # No secret, code or token in the logs.
        log = env.log()
        leaked = [s for s in secrets_seen if s and len(s) > 8 and s in log]
        check("no secret, password, code or token in the logs", not leaked, leaked[:3])
    finally:
        rc = env.stop()
    log = env.log()
    check("idp stops cleanly, no sanitizer reports in its log",
          rc == 0 and "AddressSanitizer" not in log and "LeakSanitizer" not in log
          and "runtime error:" not in log, rc)
    if failed:
        print(log[-8000:])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
