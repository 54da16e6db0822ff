#!/usr/bin/python3
"""test_idp_rotation.py: the key-rotation promise. A relying party that caches the JWKS
exactly as long as Cache-Control allows, and never refetches earlier (not even for an
unknown kid), verifies every token minted continuously across several rotations; an
emergency rotation withdraws the active key at once.

Usage: test_idp_rotation.py IDP IDPCTL"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pgcluster import PgCluster  # noqa: E402
from idplib import IdpEnv  # noqa: E402

import jwt  # noqa: E402

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


class StrictCachingRP:
    """Fetches the JWKS, keeps it for exactly max-age seconds, and meanwhile trusts only
    the keys it holds: an unknown kid is a failure, not a reason to refetch."""

    def __init__(self, env):
        self.env, self.keys, self.expires, self.fetches = env, {}, 0.0, 0

    def refresh(self):
        r = self.env.get("/jwks")
        m = re.search(r"max-age=(\d+)", r.header("cache-control") or "")
        self.expires = time.monotonic() + (int(m.group(1)) if m else 0)
        self.keys = {k["kid"]: jwt.PyJWK(k) for k in r.json()["keys"]}
        self.fetches += 1

    def verify(self, token):
        if time.monotonic() >= self.expires:
            self.refresh()
        header = jwt.get_unverified_header(token)
        kid = header["kid"]
        if kid not in self.keys:
            raise LookupError(f"unknown kid {kid[:10]} (cached {len(self.keys)} keys)")
        return jwt.decode(token, self.keys[kid].key, algorithms=[header["alg"]],
                          audience=self.env.issuer, issuer=self.env.issuer)


with PgCluster() as pg:
    env = IdpEnv(pg, IDP, IDPCTL, key_rotation_interval="4s", jwks_max_age="2s",
                 key_publish_margin="1s", access_token_ttl="3s")
    try:
        cl = env.add_client("--name", "rotating")
        env.start()
        rp = StrictCachingRP(env)
        kids, failures, minted = [], [], 0
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(set(kids)) < 5:
            r = env.token({"grant_type": "client_credentials"}, auth=(cl["client_id"], cl["client_secret"]))
            if r.status != 200:
                failures.append(f"token {r.status} {r.body[:80]}")
                continue
            minted += 1
            tok = r.json()["access_token"]
            kid = jwt.get_unverified_header(tok)["kid"]
            if not kids or kids[-1] != kid:
                kids.append(kid)
            try:
                rp.verify(tok)
            except Exception as e:  # noqa: BLE001
                failures.append(str(e))
            time.sleep(0.02)
        rotations = len(kids) - 1
        check(f"{minted} tokens over {rotations} rotations, {rp.fetches} JWKS fetches: zero verification failures",
              not failures and rotations >= 3, {"failures": failures[:5], "rotations": rotations})
        check("every signing key was used once, in order (no key signs twice)", len(kids) == len(set(kids)), kids)

        st = json.loads(env.ctl("keys", "list", "--json").stdout)
        states = sorted(k["state"] for k in st if not k.get("withdrawn"))
        check("the key table holds one active and one next key", states.count("active") == 1
              and states.count("next") == 1, st)

        # A normal rotation on demand still honours pre-publication.
        r = env.token({"grant_type": "client_credentials"}, auth=(cl["client_id"], cl["client_secret"]))
        before = jwt.get_unverified_header(r.json()["access_token"])["kid"]
        published = {k["kid"] for k in env.get("/jwks").json()["keys"]}
        env.ctl("keys", "rotate")
        after = before
        for _ in range(200):
            r = env.token({"grant_type": "client_credentials"}, auth=(cl["client_id"], cl["client_secret"]))
            after = jwt.get_unverified_header(r.json()["access_token"])["kid"]
            if after != before:
                break
            time.sleep(0.05)
        check("keys rotate: a new key signs, and it was published before it signed",
              after != before and after in published, (before[:8], after[:8]))

        # Emergency: the active key leaves the JWKS at once and signs no more.
        r = env.token({"grant_type": "client_credentials"}, auth=(cl["client_id"], cl["client_secret"]))
        old_tok = r.json()["access_token"]
        old_kid = jwt.get_unverified_header(old_tok)["kid"]
        env.ctl("keys", "rotate", "--emergency")
        gone = False
        for _ in range(100):
            if old_kid not in {k["kid"] for k in env.get("/jwks").json()["keys"]}:
                gone = True
                break
            time.sleep(0.02)
        check("emergency rotation withdraws the active key from the JWKS within 2 s", gone)
        fresh = jwt.PyJWKClient(env.issuer + "/.well-known/openid-configuration/jwks", cache_keys=False)
        try:
            fresh.get_signing_key_from_jwt(old_tok)
            check("a token of the withdrawn key no longer verifies", False, "key still found")
        except jwt.exceptions.PyJWKClientError:
            check("a token of the withdrawn key no longer verifies", True)
        r = env.token({"grant_type": "client_credentials"}, auth=(cl["client_id"], cl["client_secret"]))
        new_tok = r.json()["access_token"]
        k = fresh.get_signing_key_from_jwt(new_tok)
        jwt.decode(new_tok, k.key, algorithms=["RS256"], audience=env.issuer, issuer=env.issuer)
        check("after the emergency rotation a new key signs and verifies",
              jwt.get_unverified_header(new_tok)["kid"] != old_kid)
    finally:
        rc = env.stop()
        check("idp exits 0", rc == 0, rc)
        if failed:
            print("---- idp log ----\n" + env.log()[-6000:])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
