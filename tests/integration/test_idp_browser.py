#!/usr/bin/python3
"""test_idp_browser.py: idp's browser side end to end: a throwaway PostgreSQL, idpctl
users and clients, the real idp, and a browser made of urllib and http.cookiejar that
follows the server's forms: /authorize, the login and consent pages, the code, logout;
every security case of the issue as its own check; and the same flow in a real headless
Chromium (browser_flow.mjs, playwright-core), which also takes docs/login-page.png.

Usage: test_idp_browser.py IDP IDPCTL"""

import base64
import hashlib
import html.parser
import http.client
import http.cookiejar
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from pgcluster import PgCluster  # noqa: E402
from idplib import IdpEnv, free_port  # noqa: E402

IDP, IDPCTL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name} {str(detail)[:800]}")


def sha256_hex(s):
    return hashlib.sha256(s.encode()).hexdigest()


def pkce_pair():
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# ---- a small browser: urllib + cookiejar, no automatic redirects, form parsing ----

class Page:
    def __init__(self, status, headers, body, url):
        self.status, self.headers, self.body, self.url = status, headers, body, url
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return vals[0] if vals else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def location(self):
        return self.header("Location")

    def forms(self):
        p = FormParser()
        p.feed(self.text)
        return p.forms


class FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"),
                               "fields": {}, "buttons": [], "inputs": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(a)
            if a.get("type") == "hidden":
                self.forms[-1]["fields"][a.get("name")] = a.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append(a)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class SourceHTTPHandler(urllib.request.HTTPHandler):
    """Connects from a given loopback address (127.0.0.2 ...) to look like another
    client to the server's per-address throttle."""

    def __init__(self, source):
        super().__init__()
        self.source = source

    def http_open(self, req):
        return self.do_open(lambda host, **kw: http.client.HTTPConnection(
            host, source_address=(self.source, 0), **kw), req)


class Browser:
    def __init__(self, base, source="127.0.0.1"):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            SourceHTTPHandler(source), urllib.request.HTTPCookieProcessor(self.jar),
            NoRedirect())

    def open(self, method, url, data=None, headers=None):
        if not url.startswith("http"):
            url = self.base + url
        body = None
        h = dict(headers or {})
        if data is not None:
            body = data.encode() if isinstance(data, str) else urllib.parse.urlencode(data).encode()
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        req = urllib.request.Request(url, data=body, method=method, headers=h)
        try:
            with self.opener.open(req, timeout=30) as r:
                return Page(r.status, r.getheaders(), r.read(), url)
        except urllib.error.HTTPError as e:
            return Page(e.code, e.headers.items(), e.read(), url)

    def get(self, url, headers=None):
        return self.open("GET", url, None, headers)

    def post(self, url, data, headers=None):
        return self.open("POST", url, data, headers)

    def submit(self, page, extra, button=None):
        f = page.forms()[0]
        data = dict(f["fields"])
        data.update(extra)
        return self.post(f["action"], data)

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c.value
        return None


def query(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)


def authorize_url(client_id, redirect_uri=None, **extra):
    p = {"response_type": "code", "client_id": client_id, "scope": "openid"}
    if redirect_uri is not None:
        p["redirect_uri"] = redirect_uri
    p.update(extra)
    p = {k: v for k, v in p.items() if v is not None}
    return "/authorize?" + urllib.parse.urlencode(p)


def login(b, page, username, password):
    return b.submit(page, {"username": username, "password": password})


# ---- the relying party's redirect URI, served for the real browser ------------------

received = []


class CallbackHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        received.append(self.path)
        self.reply()

    def do_POST(self):  # response_mode=form_post
        n = int(self.headers.get("Content-Length") or 0)
        received.append(self.path + "?" + self.rfile.read(n).decode("utf-8", "replace"))
        self.reply()

    def reply(self):
        body = b"<!doctype html><title>callback</title><p>signed in</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


cb_port = free_port()
cb_server = http.server.ThreadingHTTPServer(("127.0.0.1", cb_port), CallbackHandler)
threading.Thread(target=cb_server.serve_forever, daemon=True).start()
CB = f"http://127.0.0.1:{cb_port}/cb"

STATE = "a b+c/d?e&f=g%h;'\"<x> \u00fc\u00ef \U0001F680 ~!*()"


with PgCluster() as pg:
    env = IdpEnv(pg, IDP, IDPCTL, cors_origins="https://app.example")
    try:
        def add_user(name, pw, *args):
            r = subprocess.run([IDPCTL, "-d", pg.conninfo, "user", "add", "--username", name,
                                "--password-stdin", "--json", *args], input=pw + "\n",
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            return json.loads(r.stdout)

        alice = add_user("alice", "correct horse battery", "--email", "alice@example.com",
                         "--name", "Alice")
        bob = add_user("bob", "bobs password")
        carol = add_user("carol", "carols password")
        victim = add_user("victim", "victims password")
        marked = add_user("<b>mark</b>", "markup password")
        dave = add_user("dave", "daves password")

        web = env.add_client("--name", "<b>Evil & Co</b> \"quoted\"", "--grant", "authorization_code",
                             "--grant", "refresh_token", "--redirect-uri", CB,
                             "--redirect-uri", "https://app.example/cb?x=1",
                             "--post-logout-redirect-uri", "https://app.example/bye",
                             "--scope", "api:read")
        spa = env.add_client("--name", "SPA", "--public", "--first-party",
                             "--redirect-uri", "http://127.0.0.1:9/spa")
        plainc = env.add_client("--name", "Legacy", "--public", "--allow-plain-pkce",
                                "--redirect-uri", "http://127.0.0.1:9/legacy")
        svc = env.add_client("--name", "service")  # client_credentials only
        demo = env.add_client("--name", "Example App", "--grant", "authorization_code",
                              "--redirect-uri", CB)
        env.start()
        iss = env.issuer
        users_before = pg.psql("SELECT count(*) FROM users")

        # ---- discovery ---------------------------------------------------------------
        d = env.get("/.well-known/openid-configuration").json()
        check("discovery: authorization and end-session endpoints",
              d.get("authorization_endpoint") == iss + "/authorize"
              and d.get("end_session_endpoint") == iss + "/logout", d)
        check("discovery: code; query and form_post; S256 only; iss parameter",
              d.get("response_types_supported") == ["code"]
              and d.get("response_modes_supported") == ["query", "form_post"]
              and d.get("code_challenge_methods_supported") == ["S256"]
              and d.get("authorization_response_iss_parameter_supported") is True
              and {"openid", "profile", "email", "offline_access"} <= set(d.get("scopes_supported", []))
              and {"none", "login"} <= set(d.get("prompt_values_supported", [])), d)

        # ---- the code flow, first-party public client, PKCE S256 ---------------------
        b = Browser(iss)
        verifier, challenge = pkce_pair()
        url = authorize_url(spa["client_id"], "http://127.0.0.1:9/spa", state=STATE,
                            nonce="n-0S6_WzA2Mj", code_challenge=challenge,
                            code_challenge_method="S256", scope="openid profile email")
        p = b.get(url, {"Origin": "https://app.example"})
        f = p.forms()
        check("authorize shows the login page", p.status == 200 and f and f[0]["action"] == "/login"
              and {"csrf_token", "request"} <= set(f[0]["fields"])
              and any(i.get("name") == "username" for i in f[0]["inputs"])
              and any(i.get("name") == "password" and i.get("type") == "password" for i in f[0]["inputs"])
              and "Sign in</button>" in p.text and "Sign in to SPA" in p.text, (p.status, p.text[:400]))
        csp = p.header("Content-Security-Policy") or ""
        check("login page security headers",
              "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
              and "form-action 'self'" in csp and "http://127.0.0.1:9" in csp
              and p.header("X-Frame-Options") == "DENY"
              and p.header("Referrer-Policy") == "no-referrer"
              and p.header("Cache-Control") == "no-store"
              and p.header("Content-Type", ).startswith("text/html"), p.headers)
        check("no CORS on /authorize, even for a configured origin",
              not any(k.lower().startswith("access-control-") for k, _ in p.headers), p.headers)
        r = env.get("/jwks", {"Origin": "https://app.example"})
        check("(while /jwks has CORS for it)", r.header("access-control-allow-origin") == "https://app.example",
              r.headers)
        bc = [c for c in p.all("Set-Cookie") if c.startswith("idp_browser=")]
        check("the browser cookie: HttpOnly, SameSite=Lax, Path=/, no Secure on http",
              len(bc) == 1 and "HttpOnly" in bc[0] and "SameSite=Lax" in bc[0]
              and "Path=/" in bc[0] and "Secure" not in bc[0] and "Expires" not in bc[0], bc)

        p2 = login(b, p, "alice", "correct horse battery")
        loc = p2.location() or ""
        q = query(loc)
        check("login redirects (303) to the redirect URI with code, state, iss",
              p2.status == 303 and loc.startswith("http://127.0.0.1:9/spa?code=")
              and len(q.get("code", [""])[0]) == 43 and q.get("iss") == [iss], (p2.status, loc))
        check("state comes back byte for byte", q.get("state") == [STATE], q.get("state"))
        sc = [c for c in p2.all("Set-Cookie") if c.startswith("idp_session=")]
        check("the session cookie: HttpOnly, SameSite=Lax, Path=/, 43 random characters",
              len(sc) == 1 and "HttpOnly" in sc[0] and "SameSite=Lax" in sc[0] and "Path=/" in sc[0]
              and len(sc[0].split(";")[0].split("=", 1)[1]) == 43, sc)
        code = q["code"][0]
        sess = b.cookie("idp_session")
        row = pg.psql("SELECT client_id, user_id, encode(session_id_hash, 'hex'), redirect_uri, scope, "
                      "nonce, code_challenge, code_challenge_method, used_at IS NULL, "
                      "round(extract(epoch FROM expires_at - created_at)), "
                      "abs(extract(epoch FROM auth_time - now())) < 30 "
                      f"FROM auth_codes WHERE code_hash = sha256('{code}')")
        check("the code is stored as its SHA-256 with client, user, session, redirect URI, "
              "scope, nonce, challenge, a 60 s lifetime",
              row == "|".join([spa["client_id"], alice["user_id"], sha256_hex(sess), "http://127.0.0.1:9/spa",
                               "openid profile email", "n-0S6_WzA2Mj", challenge, "S256", "t", "60", "t"]), row)
        check("the session is stored only as a hash",
              pg.psql(f"SELECT count(*) FROM sessions WHERE id_hash = sha256('{sess}')") == "1"
              and pg.psql(f"SELECT count(*) FROM sessions WHERE encode(id_hash, 'escape') LIKE '%{sess[:10]}%'") == "0")
        check("no pending request is left", pg.psql("SELECT count(*) FROM authorization_requests") == "0")
        check("no raw code in the database",
              pg.psql(f"SELECT count(*) FROM auth_codes WHERE encode(code_hash, 'escape') LIKE '%{code[:10]}%'") == "0")

        # Signed in: no page, the code at once; prompt=none too; the one registered URI
        # may be left out.
        _, ch2 = pkce_pair()
        p = b.get(authorize_url(spa["client_id"], None, state="s2", code_challenge=ch2,
                                code_challenge_method="S256"))
        check("signed in: straight back with a code (302), redirect_uri omitted for a "
              "single-URI client", p.status == 302 and (p.location() or "").startswith("http://127.0.0.1:9/spa?code=")
              and query(p.location()).get("state") == ["s2"], (p.status, p.location(), p.text[:300]))
        p = b.get(authorize_url(spa["client_id"], None, prompt="none", code_challenge=ch2,
                                code_challenge_method="S256"))
        check("prompt=none with a session: a code", p.status == 302 and "code=" in (p.location() or ""),
              p.location())
        p = b.get(authorize_url(spa["client_id"], None, prompt="login", code_challenge=ch2,
                                code_challenge_method="S256"))
        check("prompt=login asks for the password again", p.status == 200 and p.forms()
              and p.forms()[0]["action"] == "/login", p.status)
        p = b.get(authorize_url(spa["client_id"], None, max_age="0", code_challenge=ch2,
                                code_challenge_method="S256"))
        check("max_age=0 asks for the password again", p.status == 200 and p.forms(), p.status)
        p = b.get(authorize_url(spa["client_id"], None, max_age="3600", code_challenge=ch2,
                                code_challenge_method="S256"))
        check("max_age=3600 does not", p.status == 302, p.status)

        # prompt=none without a session.
        nb = Browser(iss)
        p = nb.get(authorize_url(spa["client_id"], None, prompt="none", state="st-none",
                                 code_challenge=ch2, code_challenge_method="S256"))
        q = query(p.location() or "")
        check("prompt=none without a session: login_required with state and iss",
              p.status == 302 and q.get("error") == ["login_required"] and q.get("state") == ["st-none"]
              and q.get("iss") == [iss] and "error_description" in q, (p.status, p.location()))

        # ---- consent: a client that is not first-party -----------------------------------
        b2 = Browser(iss)
        p = b2.get(authorize_url(web["client_id"], CB, state="c1", scope="openid email api:read"))
        p = login(b2, p, "bob", "bobs password")
        f = p.forms()
        check("a third-party client gets the consent page after login",
              p.status == 200 and f and f[0]["action"] == "/consent"
              and any(x.get("value") == "allow" for x in f[0]["buttons"])
              and any(x.get("value") == "deny" for x in f[0]["buttons"])
              and ">Allow</button>" in p.text and ">Deny</button>" in p.text, (p.status, p.text[:500]))
        check("the client name is escaped on the consent page",
              "&lt;b&gt;Evil &amp; Co&lt;/b&gt; &quot;quoted&quot;" in p.text and "<b>Evil" not in p.text,
              p.text[:600])
        p = b2.submit(p, {"decision": "allow"})
        q = query(p.location() or "")
        check("Allow: the code", p.status == 303 and (p.location() or "").startswith(CB + "?code=")
              and q.get("state") == ["c1"], (p.status, p.location()))
        check("consent is remembered",
              pg.psql(f"SELECT array_to_string(scopes, ' ') FROM consents WHERE user_id = '{bob['user_id']}' "
                      f"AND client_id = '{web['client_id']}'") == "api:read email openid")
        p = b2.get(authorize_url(web["client_id"], CB, scope="openid api:read"))
        check("the next time, no consent page", p.status == 302 and "code=" in (p.location() or ""),
              (p.status, p.text[:200]))
        p = b2.get(authorize_url(web["client_id"], CB, scope="openid profile", prompt="none"))
        check("prompt=none with a scope not consented to: consent_required",
              query(p.location() or "").get("error") == ["consent_required"], p.location())
        p = b2.get(authorize_url(web["client_id"], CB, state="deny-me", prompt="consent"))
        p = b2.submit(p, {"decision": "deny"})
        q = query(p.location() or "")
        check("Deny: access_denied with state and iss", q.get("error") == ["access_denied"]
              and q.get("state") == ["deny-me"] and q.get("iss") == [iss], p.location())

        # ---- redirect URIs: never a redirect to anything but an exact match ---------------
        bad_uris = {
            "unregistered": "https://evil.example/cb",
            "prefix": "https://app.example/cb",
            "extension": "https://app.example/cb?x=1&y=2",
            "different case (host)": "https://APP.example/cb?x=1",
            "different case (path)": "https://app.example/CB?x=1",
            "extra path": "https://app.example/cb/evil?x=1",
            "trailing slash": "https://app.example/cb/?x=1",
            "percent-encoded characters": "https://app.example/%63b?x=1",
            "user@host": "https://app.example@evil.example/cb?x=1",
            "look-alike host": "https://app.example.evil.example/cb?x=1",
            "CRLF": "https://app.example/cb?x=1\r\nLocation: https://evil.example/",
            "fragment": "https://app.example/cb?x=1#frag",
            "http instead of https": "http://app.example/cb?x=1",
        }
        for name, uri in bad_uris.items():
            p = Browser(iss).get(authorize_url(web["client_id"], uri, state="s"))
            check(f"redirect_uri {name}: error page, no redirect",
                  p.status == 400 and p.location() is None and p.text.startswith("<!doctype html>")
                  and "not registered" in p.text and p.header("X-Frame-Options") == "DENY", (p.status, p.headers))
        for name, url in {
            "unknown client": authorize_url("no-such-client", CB),
            "missing client_id": "/authorize?response_type=code&redirect_uri=" + urllib.parse.quote(CB),
            "repeated client_id": authorize_url(web["client_id"], CB) + "&client_id=" + web["client_id"],
            "repeated redirect_uri": authorize_url(web["client_id"], CB) + "&redirect_uri=" + urllib.parse.quote(CB),
            "no redirect_uri, several registered": authorize_url(web["client_id"], None),
        }.items():
            p = Browser(iss).get(url)
            check(f"{name}: error page, no redirect", p.status == 400 and p.location() is None, (p.status, p.headers))

        # ---- errors that go back to the client -------------------------------------------
        def err(url, want, name):
            p = Browser(iss).get(url)
            q = query(p.location() or "")
            check(name, p.status == 302 and q.get("error") == [want] and q.get("iss") == [iss]
                  and q.get("state") == ["e-st"], (p.status, p.location(), p.text[:300]))
            return p

        p = err(authorize_url(web["client_id"], "https://app.example/cb?x=1", state="e-st", response_type="token"),
                "unsupported_response_type", "response_type=token: unsupported_response_type")
        check("the redirect URI's own query is kept, then '&'",
              (p.location() or "").startswith("https://app.example/cb?x=1&error="), p.location())
        err(authorize_url(web["client_id"], CB, state="e-st", response_type=None), "invalid_request",
            "no response_type: invalid_request")
        err(authorize_url(web["client_id"], CB, state="e-st") + "&scope=openid", "invalid_request",
            "a repeated parameter: invalid_request")
        p = Browser(iss).get(authorize_url(web["client_id"], CB, state="e-st", scope="profile"))
        check("scope without openid is plain OAuth 2.0: the login page, no error",
              p.status == 200 and p.location() is None and 'name="password"' in p.text, (p.status, p.location()))
        err(authorize_url(web["client_id"], CB, state="e-st", scope=" "), "invalid_scope",
            "an empty scope: invalid_scope")
        err(authorize_url(web["client_id"], CB, state="e-st", scope="openid admin"), "invalid_scope",
            "an unknown scope: invalid_scope")
        err(authorize_url(spa["client_id"], None, state="e-st", scope="openid offline_access",
                          code_challenge=ch2, code_challenge_method="S256"), "invalid_scope",
            "offline_access without the refresh_token grant: invalid_scope")
        err(authorize_url(spa["client_id"], None, state="e-st"), "invalid_request",
            "a public client without PKCE: invalid_request")
        err(authorize_url(plainc["client_id"], None, state="e-st", code_challenge="x" * 43,
                          code_challenge_method="plain"), "invalid_request",
            "PKCE plain refused (the server does not allow it)")
        err(authorize_url(spa["client_id"], None, state="e-st", code_challenge="x" * 43),
            "invalid_request", "PKCE without a method means plain: refused")
        err(authorize_url(spa["client_id"], None, state="e-st", code_challenge="short",
                          code_challenge_method="S256"), "invalid_request",
            "a malformed S256 challenge: invalid_request")
        err(authorize_url(spa["client_id"], None, state="e-st", code_challenge=ch2,
                          code_challenge_method="S512"), "invalid_request",
            "an unknown challenge method: invalid_request")
        err(authorize_url(web["client_id"], CB, state="e-st", prompt="none login"), "invalid_request",
            "prompt=none with login: invalid_request")
        err(authorize_url(web["client_id"], CB, state="e-st", max_age="-1"), "invalid_request",
            "a negative max_age: invalid_request")
        err(authorize_url(web["client_id"], CB, state="e-st", request="eyJ.x.y"), "request_not_supported",
            "request objects: request_not_supported")
        err(authorize_url(web["client_id"], CB, state="e-st", response_mode="fragment"), "invalid_request",
            "response_mode=fragment: invalid_request, in the query")

        # ---- response_mode=form_post (OAuth 2.0 Form Post Response Mode) ------------------
        fb = Browser(iss)
        p = fb.get(authorize_url(spa["client_id"], None, state="fp-st", response_mode="form_post",
                                 code_challenge=ch2, code_challenge_method="S256"))
        p2 = login(fb, p, "alice", "correct horse battery")
        f = p2.forms()
        ff = f[0]["fields"] if f else {}
        check("form_post: a 200 page whose one form POSTs code, state and iss to the redirect URI",
              p2.status == 200 and p2.location() is None and len(f) == 1 and f[0]["method"] == "post"
              and f[0]["action"] == "http://127.0.0.1:9/spa" and len(ff.get("code", "")) == 43
              and ff.get("state") == "fp-st" and ff.get("iss") == iss
              and any(b.get("type") == "submit" for b in f[0]["buttons"]), (p2.status, p2.text[-800:]))
        check("form_post: the code is a real one",
              ff.get("code") and pg.psql("SELECT count(*) FROM auth_codes WHERE code_hash = "
                                         f"sha256('{ff['code']}') AND client_id = '{spa['client_id']}'") == "1", ff)
        csp = p2.header("Content-Security-Policy") or ""
        a, z = p2.text.find("<script>"), p2.text.find("</script>")
        js = p2.text[a + len("<script>"):z] if 0 <= a < z else ""
        js_hash = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
        check("form_post: CSP admits the page's one script by its hash, the redirect URI as form-action",
              js and p2.text.count("<script") == 1 and f"script-src 'sha256-{js_hash}'" in csp
              and "default-src 'none'" in csp and "http://127.0.0.1:9" in csp
              and p2.header("X-Frame-Options") == "DENY" and p2.header("Cache-Control") == "no-store",
              (js, csp))
        p = Browser(iss).get(authorize_url(web["client_id"], CB, state="fp<st>", prompt="none",
                                           response_mode="form_post"))
        f = p.forms()
        ff = f[0]["fields"] if f else {}
        check("form_post: errors are posted back too (prompt=none: login_required), state escaped",
              p.status == 200 and p.location() is None and f and f[0]["action"] == CB
              and ff.get("error") == "login_required" and ff.get("state") == "fp<st>" and ff.get("iss") == iss
              and "fp<st>" not in p.text, (p.status, p.text[-600:]))
        p = Browser(iss).get(authorize_url(svc["client_id"], None))
        check("a client without redirect URIs: error page", p.status == 400 and p.location() is None, p.status)

        # ---- CSRF --------------------------------------------------------------------------
        b3 = Browser(iss)
        p = b3.get(authorize_url(web["client_id"], CB, state="csrf"))
        fields = p.forms()[0]["fields"]
        r = b3.post("/login", {"request": fields["request"], "username": "carol", "password": "carols password"})
        check("login without csrf_token: refused (403)", r.status == 403 and r.location() is None
              and not r.all("Set-Cookie"), r.status)
        other = Browser(iss)
        po = other.get(authorize_url(web["client_id"], CB))
        other_token = po.forms()[0]["fields"]["csrf_token"]
        r = b3.post("/login", {"request": fields["request"], "csrf_token": other_token,
                               "username": "carol", "password": "carols password"})
        check("login with another browser's csrf_token: refused (403)", r.status == 403, r.status)
        r = other.post("/login", {"request": fields["request"], "csrf_token": other_token,
                                  "username": "carol", "password": "carols password"})
        check("another browser posting this browser's request: refused", r.status == 400
              and r.location() is None and not any(c.startswith("idp_session=") for c in r.all("Set-Cookie")),
              r.status)
        nocookie = Browser(iss)
        r = nocookie.post("/login", {"request": fields["request"], "csrf_token": fields["csrf_token"],
                                     "username": "carol", "password": "carols password"})
        check("login without the browser cookie: refused (403)", r.status == 403, r.status)
        r = b3.post("/consent", {"request": fields["request"], "decision": "allow"})
        check("consent without csrf_token: refused (403)", r.status == 403, r.status)
        check("no session was made by any of these",
              pg.psql(f"SELECT count(*) FROM sessions WHERE user_id = '{carol['user_id']}'") == "0")
        pg.psql("UPDATE authorization_requests SET expires_at = now() - interval '1 second'")
        r = login(b3, p, "carol", "carols password")
        check("an expired request: an error page, no redirect", r.status == 400 and r.location() is None
              and "expired" in r.text, (r.status, r.text[:300]))

        # ---- wrong passwords, unknown users, reflected input --------------------------------
        b4 = Browser(iss)
        p = b4.get(authorize_url(web["client_id"], CB, login_hint="<script>alert(1)</script>"))
        check("login_hint is escaped in the login page",
              "&lt;script&gt;alert(1)&lt;/script&gt;" in p.text and "<script>" not in p.text, p.text[:800])
        check("the client name is escaped in the login page",
              "Sign in to &lt;b&gt;Evil &amp; Co&lt;/b&gt;" in p.text and "<b>Evil" not in p.text, p.text[:400])
        t0 = time.monotonic()
        wrong = login(b4, p, "dave", "not daves password")
        t_wrong = time.monotonic() - t0
        t0 = time.monotonic()
        unknown = login(b4, wrong, "nobody-here", "whatever")
        t_unknown = time.monotonic() - t0
        check("wrong password: the login page again with the message",
              wrong.status == 200 and "The username or password is incorrect." in wrong.text
              and wrong.forms() and wrong.forms()[0]["action"] == "/login", (wrong.status, wrong.text[:400]))
        check("unknown user: the very same page (but the username shown back)",
              unknown.status == wrong.status
              and unknown.text.replace("nobody-here", "dave") == wrong.text, (unknown.text[:400]))
        check("unknown user costs an Argon2id run too (timing)",
              t_unknown > 0.3 * t_wrong, (t_unknown, t_wrong))
        p = login(b4, unknown, "<img src=x onerror=alert(1)>", "x")
        check("a username with markup is escaped when shown back",
              "&lt;img src&#61;x onerror&#61;alert(1)&gt;" in p.text and "<img" not in p.text, p.text[:800])
        p = login(b4, p, "<b>mark</b>", "markup password")
        check("a user whose name is markup signs in; escaped on the consent page",
              p.status == 200 and "Signed in as &lt;b&gt;mark&lt;/b&gt;" in p.text, (p.status, p.text[:600]))
        env.ctl("user", "disable", "carol")
        b5 = Browser(iss)
        p = b5.get(authorize_url(web["client_id"], CB))
        p1 = login(b5, p, "carol", "wrong")
        p2 = login(b5, p1, "carol", "carols password")
        check("a disabled user: the generic message for a wrong password, refused with the right one",
              "incorrect" in p1.text and p2.status == 200 and "disabled" in p2.text
              and p2.location() is None and not b5.cookie("idp_session"), (p1.text[:300], p2.text[:300]))
        p = login(b5, p2, "ALICE@example.COM", "correct horse battery")
        check("sign in by email, any case", p.status in (200, 303) and b5.cookie("idp_session"),
              (p.status, p.text[:300]))

        # ---- throttling ------------------------------------------------------------------
        b6 = Browser(iss)
        p = b6.get(authorize_url(web["client_id"], CB))
        statuses = []
        t0 = time.monotonic()
        for i in range(12):
            p = login(b6, p, "victim", f"guess {i}")
            statuses.append(p.status)
            if p.status == 429:
                break
        took = time.monotonic() - t0
        check("failed logins slow down, then 429 with Retry-After",
              statuses[-1] == 429 and statuses.count(200) >= 5 and took > 2
              and 0 < int(p.header("Retry-After") or 0) <= 900
              and "Too many failed sign-in attempts" in p.text, (statuses, took, p.headers))
        p = login(b6, p, "victim", "victims password")
        check("...even with the right password, from that address", p.status == 429, p.status)
        b7 = Browser(iss, source="127.0.0.2")
        p = b7.get(authorize_url(web["client_id"], CB))
        p = login(b7, p, "victim", "victims password")
        check("the user from another address still gets in", p.status == 200 and b7.cookie("idp_session")
              and p.forms() and p.forms()[0]["action"] == "/consent", (p.status, p.text[:300]))
        check("failure counters hold no username or address in the clear",
              pg.psql("SELECT count(*) FROM login_failures") != "0"
              and pg.psql("SELECT count(*) FROM login_failures WHERE encode(key_hash, 'escape') "
                          "LIKE '%victim%'") == "0")

        # ---- sessions: idle and absolute lifetimes -------------------------------------------
        bs = Browser(iss)
        p = bs.get(authorize_url(spa["client_id"], None, code_challenge=ch2, code_challenge_method="S256"))
        login(bs, p, "alice", "correct horse battery")
        sh = sha256_hex(bs.cookie("idp_session"))
        pg.psql(f"INSERT INTO refresh_families (id, client_id, user_id, session_id_hash) VALUES "
                f"('fam-move', '{spa['client_id']}', '{alice['user_id']}', decode('{sh}', 'hex'))")
        pg.psql(f"UPDATE sessions SET last_seen_at = now() - interval '31 minutes' WHERE id_hash = decode('{sh}', 'hex')")
        p = bs.get(authorize_url(spa["client_id"], None, prompt="none", code_challenge=ch2, code_challenge_method="S256"))
        check("an idle session (31 min) is over", query(p.location() or "").get("error") == ["login_required"],
              p.location())
        p = bs.get(authorize_url(spa["client_id"], None, code_challenge=ch2, code_challenge_method="S256"))
        login(bs, p, "alice", "correct horse battery")
        sh2 = sha256_hex(bs.cookie("idp_session"))
        check("signing in again makes a new session cookie", sh2 != sh)
        check("...ends the old session, and its refresh families follow the user to the new one",
              pg.psql(f"SELECT ended_at IS NOT NULL FROM sessions WHERE id_hash = decode('{sh}', 'hex')") == "t"
              and pg.psql("SELECT encode(session_id_hash, 'hex') FROM refresh_families WHERE id = 'fam-move'") == sh2)
        pg.psql(f"UPDATE sessions SET absolute_expires_at = now() - interval '1 second' WHERE id_hash = decode('{sh2}', 'hex')")
        p = bs.get(authorize_url(spa["client_id"], None, prompt="none", code_challenge=ch2, code_challenge_method="S256"))
        check("a session past its absolute lifetime is over",
              query(p.location() or "").get("error") == ["login_required"], p.location())

        # ---- SQL metacharacters in every parameter -------------------------------------------
        sqlx = "x' OR '1'='1'; DROP TABLE users; --"
        p = Browser(iss).get(authorize_url(sqlx, CB))
        check("SQL in client_id: an error page", p.status == 400 and p.location() is None, p.status)
        p = Browser(iss).get(authorize_url(web["client_id"], CB + "'--"))
        check("SQL in redirect_uri: an error page", p.status == 400 and p.location() is None, p.status)
        bq = Browser(iss)
        p = bq.get(authorize_url(web["client_id"], CB, state=sqlx, nonce=sqlx, login_hint=sqlx))
        check("SQL in state, nonce, login_hint: the login page", p.status == 200 and p.forms(), p.status)
        p2 = login(bq, p, sqlx, sqlx)
        check("SQL in username and password: just a failed login", p2.status == 200
              and "incorrect" in p2.text, p2.status)
        p3 = login(bq, p2, "bob", "bobs password")
        q = query(p3.location() or "")
        check("...and the state with SQL comes back unchanged", q.get("state") == [sqlx], p3.location())
        err(authorize_url(web["client_id"], CB, state="e-st", scope="openid " + sqlx.replace(" ", "")),
            "invalid_scope", "SQL in scope: invalid_scope")
        p = Browser(iss).get(authorize_url(spa["client_id"], None, state="e-st",
                                           code_challenge=sqlx, code_challenge_method="S256"))
        check("SQL in code_challenge: invalid_request", query(p.location() or "").get("error") == ["invalid_request"],
              p.location())
        r = bq.post("/login", {"request": sqlx, "csrf_token": sqlx, "username": sqlx, "password": sqlx})
        check("SQL in request and csrf_token: refused", r.status == 403, r.status)
        r = Browser(iss).get("/logout?" + urllib.parse.urlencode({"client_id": sqlx, "state": sqlx,
                                                                  "post_logout_redirect_uri": sqlx,
                                                                  "id_token_hint": sqlx}))
        check("SQL in logout parameters: no redirect", r.location() is None and r.status in (200, 400), r.status)
        check("the users table is intact", pg.psql("SELECT count(*) FROM users") == users_before)

        # ---- logout --------------------------------------------------------------------------
        bl = Browser(iss)
        p = bl.get(authorize_url(web["client_id"], CB, state="L"))
        p = login(bl, p, "bob", "bobs password")  # bob consented before: straight to the code
        lsess = bl.cookie("idp_session")
        lh = sha256_hex(lsess)
        pg.psql(f"INSERT INTO refresh_families (id, client_id, user_id, session_id_hash) VALUES "
                f"('fam-logout', '{web['client_id']}', '{bob['user_id']}', decode('{lh}', 'hex'))")
        p = bl.get("/logout?" + urllib.parse.urlencode({"client_id": web["client_id"], "state": "bye-state",
                                                        "post_logout_redirect_uri": "https://app.example/bye"}))
        f = p.forms()
        check("logout without id_token_hint asks first", p.status == 200 and f and f[0]["action"] == "/logout"
              and "csrf_token" in f[0]["fields"] and "Sign out</button>" in p.text
              and p.header("X-Frame-Options") == "DENY", (p.status, p.text[:400]))
        check("...and has not signed out yet",
              pg.psql(f"SELECT ended_at IS NULL FROM sessions WHERE id_hash = decode('{lh}', 'hex')") == "t")
        r = bl.post("/logout", {**f[0]["fields"], "csrf_token": "A" * 43})
        check("the confirmation with a wrong csrf_token: refused", r.status == 403, r.status)
        r = bl.submit(p, {})
        check("confirmed: back to the registered post-logout URI with state",
              r.status == 303 and r.location() == "https://app.example/bye?state=bye-state", (r.status, r.location()))
        check("the session cookie is cleared",
              any(c.startswith("idp_session=;") and "Max-Age=0" in c for c in r.all("Set-Cookie")), r.all("Set-Cookie"))
        check("the session has ended and its refresh families are revoked (reason logout)",
              pg.psql(f"SELECT ended_at IS NOT NULL FROM sessions WHERE id_hash = decode('{lh}', 'hex')") == "t"
              and pg.psql("SELECT revoked_at IS NOT NULL, revoke_reason FROM refresh_families "
                          "WHERE id = 'fam-logout'") == "t|logout")
        bl.jar.set_cookie(http.cookiejar.Cookie(0, "idp_session", lsess, None, False, "127.0.0.1", False, False,
                                                "/", True, False, None, True, None, None, {}))
        p = bl.get(authorize_url(web["client_id"], CB, prompt="none"))
        check("the old cookie no longer signs in", query(p.location() or "").get("error") == ["login_required"],
              p.location())

        bl2 = Browser(iss)
        p = bl2.get(authorize_url(web["client_id"], CB))
        login(bl2, p, "bob", "bobs password")
        p = bl2.get("/logout?" + urllib.parse.urlencode({"client_id": web["client_id"],
                                                         "post_logout_redirect_uri": "https://evil.example/"}))
        r = bl2.submit(p, {})
        check("logout to an unregistered URI: the signed-out page, no redirect",
              r.status == 200 and r.location() is None and "You are signed out" in r.text, (r.status, r.location()))
        for uri in ("https://app.example/bye/", "https://APP.example/bye", "https://app.example/bye?x"):
            r = Browser(iss).get("/logout?" + urllib.parse.urlencode({"client_id": web["client_id"],
                                                                      "post_logout_redirect_uri": uri}))
            check(f"logout to a look-alike URI ({uri}): no redirect", r.location() is None, r.location())
        r = Browser(iss).get("/logout?" + urllib.parse.urlencode({"id_token_hint": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
                                                                  "post_logout_redirect_uri": "https://app.example/bye"}))
        check("a forged id_token_hint names no client: no redirect", r.location() is None, r.location())

        # id_token_hint, when the token side issues ID tokens.
        bt = Browser(iss)
        verifier, challenge = pkce_pair()
        p = bt.get(authorize_url(web["client_id"], CB, code_challenge=challenge, code_challenge_method="S256",
                                 nonce="nn"))
        p = login(bt, p, "bob", "bobs password")
        code = query(p.location() or "").get("code", [""])[0]
        tr = env.token({"grant_type": "authorization_code", "code": code, "redirect_uri": CB,
                        "code_verifier": verifier}, auth=(web["client_id"], web["client_secret"]))
        idt = tr.json().get("id_token") if tr.status == 200 else None
        if idt is None:
            print(f"# skip: id_token_hint logout (the token endpoint gave {tr.status}, no id_token)")
        else:
            r = bt.get("/logout?" + urllib.parse.urlencode({"id_token_hint": idt, "state": "h",
                                                            "post_logout_redirect_uri": "https://app.example/bye"}))
            check("logout with a valid id_token_hint: at once, back to the client",
                  r.status == 302 and r.location() == "https://app.example/bye?state=h", (r.status, r.location()))
            # The session's refresh family and its live access token end with it.
            at, rt = tr.json()["access_token"], tr.json().get("refresh_token")
            active = True
            for _ in range(40):
                ir = env.request("POST", "/introspect", urllib.parse.urlencode({"token": at}),
                                 {"Content-Type": "application/x-www-form-urlencoded",
                                  "Authorization": "Basic " + base64.b64encode(
                                      f"{web['client_id']}:{web['client_secret']}".encode()).decode()})
                active = ir.status == 200 and ir.json().get("active")
                if not active:
                    break
                time.sleep(0.05)
            rr = env.token({"grant_type": "refresh_token", "refresh_token": rt or "x"},
                           auth=(web["client_id"], web["client_secret"]))
            check("logout revokes the session's access token and refresh token",
                  not active and rr.status == 400, (active, rr.status, rr.body[:120]))
            r = bt.get("/logout?" + urllib.parse.urlencode({"id_token_hint": idt, "client_id": spa["client_id"]}))
            check("id_token_hint and another client_id: refused", r.status == 400 and r.location() is None,
                  r.status)

        # ---- https issuer: __Host- cookies with Secure; plain PKCE when allowed --------------
        env.stop()
        env.conf["issuer"] = "https" + env.issuer[4:]
        env.conf["allow_plain_pkce"] = "yes"
        env.write_conf()
        env.start()
        hb = Browser(iss)
        p = hb.get(authorize_url(plainc["client_id"], None, code_challenge="x" * 43, code_challenge_method="plain"))
        hc = [c for c in p.all("Set-Cookie") if "idp_browser" in c]
        check("https issuer: the __Host- prefix and Secure",
              len(hc) == 1 and hc[0].startswith("__Host-idp_browser=") and "; Secure" in hc[0]
              and "Path=/" in hc[0] and "Domain" not in hc[0], hc)
        check("PKCE plain for a client that allows it, when the server does", p.status == 200 and p.forms(),
              (p.status, p.location()))
        p = hb.get(authorize_url(spa["client_id"], None, state="e-st", code_challenge="x" * 43,
                                 code_challenge_method="plain"))
        check("...still not for other clients", query(p.location() or "").get("error") == ["invalid_request"],
              p.location())
        d = env.get("/.well-known/openid-configuration").json()
        check("discovery then lists plain", d.get("code_challenge_methods_supported") == ["S256", "plain"], d)
        env.stop()
        env.conf["issuer"] = iss
        env.conf["allow_plain_pkce"] = "no"
        env.write_conf()
        env.start()

        # ---- a real browser ------------------------------------------------------------------
        chromium = "/usr/bin/chromium"
        node_modules = os.path.join(ROOT, "tests", "node_modules")
        if not os.path.exists(chromium):
            print("# skip: the real-browser flow (no /usr/bin/chromium; apt-get install chromium)")
        elif not os.path.isdir(os.path.join(node_modules, "playwright-core")) or not shutil.which("node"):
            print("# skip: the real-browser flow (no node or playwright-core; cd tests && npm ci)")
        else:
            received.clear()
            url = iss + authorize_url(demo["client_id"], CB, state="browser-state", nonce="bn",
                                      scope="openid profile", code_challenge=pkce_pair()[1],
                                      code_challenge_method="S256")
            shot = os.path.join(ROOT, "docs", "login-page.png")
            os.makedirs(os.path.dirname(shot), exist_ok=True)
            add_user("carol2", "carol2 password")

            def browser_flow(url, shot, mode="query"):
                """browser_flow.mjs as carol2: (the process, its JSON line or {})."""
                r = subprocess.run(["node", os.path.join(HERE, "browser_flow.mjs"), url, "carol2",
                                    "carol2 password", CB, shot, mode], capture_output=True, text=True,
                                   timeout=180, env={**os.environ, "NODE_PATH": node_modules})
                try:
                    return r, json.loads(r.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    return r, {}

            r, out = browser_flow(url, shot)
            check("Chromium signs in through the pages, clicks Allow, lands on the redirect URI",
                  r.returncode == 0 and out.get("code") and out.get("state") == "browser-state"
                  and any(("code=" + out["code"]) in x for x in received), (r.returncode, r.stdout[-800:], r.stderr[-1500:]))
            check("...with a code the database knows",
                  out.get("code") and pg.psql(f"SELECT count(*) FROM auth_codes WHERE code_hash = "
                                              f"sha256('{out['code']}')") == "1", out)
            check("...and the screenshot of the login page", os.path.exists(shot) and os.path.getsize(shot) > 1000
                  and open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n", shot)
            check("the page ran without CSP violations", out.get("csp_violations") == [], out.get("csp_violations"))

            # The same with response_mode=form_post: the page's script must run under its
            # CSP and the browser must POST the response to the redirect URI.
            received.clear()
            url = iss + authorize_url(demo["client_id"], CB, state="fp-browser", scope="openid",
                                      response_mode="form_post", code_challenge=pkce_pair()[1],
                                      code_challenge_method="S256")
            r, out = browser_flow(url, "-", "form_post")
            posted = [urllib.parse.parse_qs(x.split("?", 1)[1]) for x in received if "?" in x]
            check("Chromium with response_mode=form_post: the page submits itself, the browser POSTs "
                  "code, state and iss to the redirect URI, with no CSP violation",
                  r.returncode == 0 and out.get("code") and out.get("state") == "fp-browser"
                  and out.get("iss") == iss and out.get("method") == "POST"
                  and any(q.get("code") == [out["code"]] for q in posted)
                  and out.get("csp_violations") == [], (r.returncode, r.stdout[-800:], r.stderr[-1500:]))

        log = env.log()
        check("no password, cookie or code in the log",
              "correct horse battery" not in log and lsess not in log and sess not in log
              and code not in log, "")
    finally:
        env.stop()
        log = env.log()
        check("no sanitizer report in the server's log (ASan/UBSan builds)",
              "AddressSanitizer" not in log and "LeakSanitizer" not in log and "runtime error:" not in log,
              log[-3000:])
        if failed:
            print("---- idp log ----")
            print(env.log()[-20000:])
        cb_server.shutdown()

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
