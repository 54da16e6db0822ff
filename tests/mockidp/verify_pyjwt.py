#!/usr/bin/python3
"""Verify JWTs with PyJWT against the JWKS of the server that issued them.

Reads JSON lines on stdin, each {"jwks_uri": ..., "token": ..., "issuer": ...}
(an optional "label" is echoed in error messages).  For every token: fetch the
signing key from jwks_uri with jwt.PyJWKClient, check the signature with the
algorithm named in the token header, and check iss/exp/nbf/iat (aud is not
checked).  Prints "pyjwt: N tokens verified" and exits 0, or prints every
failure on stderr and exits 1.  Run with /usr/bin/python3: it needs the Debian
python3-jwt package (PyJWT 2.6).
"""

import json
import sys

import jwt


def main():
    clients = {}
    verified = 0
    failures = []
    for lineno, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if not line:
            continue
        label = "line %d" % lineno
        try:
            item = json.loads(line)
            label = item.get("label", label)
            uri = item["jwks_uri"]
            token = item["token"]
            client = clients.get(uri)
            if client is None:
                client = clients[uri] = jwt.PyJWKClient(uri)
            header = jwt.get_unverified_header(token)
            key = client.get_signing_key_from_jwt(token)
            jwt.decode(token, key.key, algorithms=[header["alg"]],
                       options={"verify_aud": False}, issuer=item["issuer"])
            verified += 1
        except Exception as e:  # report every failure, whatever its kind
            failures.append("%s: %s: %s" % (label, type(e).__name__, e))
    for f in failures:
        print("pyjwt FAILED %s" % f, file=sys.stderr)
    print("pyjwt: %d tokens verified, %d failed" % (verified, len(failures)))
    if failures or verified == 0:
        if verified == 0 and not failures:
            print("pyjwt FAILED: no tokens on stdin", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
