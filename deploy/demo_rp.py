#!/usr/bin/env python3
"""demo_rp.py: a tiny relying party for trying idp in a browser: a page with a "Sign in"
link that runs the authorization code flow (PKCE S256, state, nonce), exchanges the code
at /token, and shows the ID token's claims and /userinfo. Standard library only.

Usage: demo_rp.py ISSUER CLIENT_ID CLIENT_SECRET PORT   (serves http://127.0.0.1:PORT/)"""

import base64
import hashlib
import html
import http.server
import json
import secrets
import sys
import urllib.parse
import urllib.request

ISSUER, CLIENT_ID, CLIENT_SECRET, PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
REDIRECT = f"http://127.0.0.1:{PORT}/callback"
META = json.load(urllib.request.urlopen(ISSUER + "/.well-known/openid-configuration"))
pending = {}  # state -> (verifier, nonce)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def claims_of(jwt):
    seg = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


class Handler(http.server.BaseHTTPRequestHandler):
    def page(self, body, status=200):
        data = ("<!doctype html><meta charset=utf-8><title>idp demo</title>"
                "<body style='font-family:sans-serif;max-width:50em;margin:2em auto'>"
                + body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/":
            self.page("<h1>idp demo relying party</h1><p><a href='/login'>Sign in with idp</a></p>")
        elif url.path == "/login":
            state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
            pending[state] = (verifier, nonce)
            challenge = b64url(hashlib.sha256(verifier.encode()).digest())
            target = META["authorization_endpoint"] + "?" + urllib.parse.urlencode({
                "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                "scope": "openid profile email", "state": state, "nonce": nonce,
                "code_challenge": challenge, "code_challenge_method": "S256"})
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
        elif url.path == "/callback":
            if "error" in q or q.get("state") not in pending:
                self.page("<h1>Sign-in failed</h1><pre>" + html.escape(json.dumps(q, indent=2)) + "</pre>", 400)
                return
            verifier, nonce = pending.pop(q["state"])
            form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": q["code"],
                                           "redirect_uri": REDIRECT, "code_verifier": verifier}).encode()
            req = urllib.request.Request(META["token_endpoint"], data=form)
            auth = base64.b64encode(f"{urllib.parse.quote(CLIENT_ID, safe='')}:"
                                    f"{urllib.parse.quote(CLIENT_SECRET, safe='')}".encode()).decode()
            req.add_header("Authorization", "Basic " + auth)
            try:
                tokens = json.load(urllib.request.urlopen(req))
            except urllib.error.HTTPError as e:
                self.page("<h1>Token request failed</h1><pre>" + html.escape(e.read().decode()) + "</pre>", 502)
                return
            idt = claims_of(tokens["id_token"])
            ui = urllib.request.Request(META["userinfo_endpoint"],
                                        headers={"Authorization": "Bearer " + tokens["access_token"]})
            userinfo = json.load(urllib.request.urlopen(ui))
            ok = "matches" if idt.get("nonce") == nonce else "DOES NOT MATCH"
            self.page("<h1>Signed in</h1><p>ID token nonce " + ok + ".</p><h2>ID token claims</h2><pre>"
                      + html.escape(json.dumps(idt, indent=2)) + "</pre><h2>/userinfo</h2><pre>"
                      + html.escape(json.dumps(userinfo, indent=2)) + "</pre><p><a href='/'>Again</a></p>")
        else:
            self.page("not found", 404)

    def log_message(self, fmt, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
