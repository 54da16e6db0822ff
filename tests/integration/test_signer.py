#!/usr/bin/python3
"""test_signer.py: idp's signer process against a throwaway PostgreSQL. signer-drv
(signer-drv.c) forks real signers and talks to them as the workers do; this script makes
the cluster, the key-encryption keys and the configurations, runs each scenario, and
looks at the database with its own eyes: no private key material in the clear, rows
that open under the KEK with the kid as associated data (libsodium through ctypes, not
our C code), kids that are RFC 7638 thumbprints.

Usage: test_signer.py SIGNER_DRV"""

import base64
import ctypes
import ctypes.util
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pgcluster import PgCluster  # noqa: E402

DRV = os.path.abspath(sys.argv[1])
TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
WRONG_KEK = "cannot decrypt the signing keys: wrong key_encryption_key_file?"
PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name} {detail}")


sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if sodium.sodium_init() < 0:
    raise RuntimeError("sodium_init failed")


def aead_open(kek, kid, enc, nonce):
    """XChaCha20-Poly1305 (libsodium IETF) decryption with kid as associated data."""
    out = ctypes.create_string_buffer(max(len(enc), 1))
    outlen = ctypes.c_ulonglong(0)
    ad = kid.encode()
    r = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        out, ctypes.byref(outlen), None, enc, ctypes.c_ulonglong(len(enc)), ad,
        ctypes.c_ulonglong(len(ad)), nonce, kek)
    return out.raw[:outlen.value] if r == 0 else None


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def thumbprint(jwk):
    """RFC 7638, written here again so that the C code is not its own judge."""
    req = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"),
           "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canon = json.dumps({k: jwk[k] for k in req}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(
        b"=").decode()


class Setup:
    def __init__(self, pg, tmp):
        self.pg = pg
        self.tmp = tmp
        self.kek = self.write_kek("kek", os.urandom(32))

    def write_kek(self, name, data, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def conf(self, name, **over):
        settings = {
            "issuer": "https://idp.test",
            "database": self.pg.conninfo,
            "key_encryption_key_file": self.kek,
            "signing_alg": "RS256",
            "access_token_ttl": "3s",
            "key_rotation_interval": "4s",
            "jwks_max_age": "2s",
            "key_publish_margin": "1s",
            "log_level": "info",
        }
        settings.update(over)
        path = os.path.join(self.tmp, name + ".conf")
        with open(path, "w") as f:
            for k, v in settings.items():
                f.write(f'{k} = "{v}"\n')
        return path

    def reset(self):
        self.pg.psql("TRUNCATE signing_keys, key_rotation_requests")


def drv(mode, conf, *args, timeout=150):
    t0 = time.monotonic()
    r = subprocess.run([DRV, mode, conf, *map(str, args)], capture_output=True,
                       text=True, timeout=timeout)
    print(f"# signer-drv {mode} {' '.join(map(str, args))}: exit {r.returncode} "
          f"in {time.monotonic() - t0:.1f} s")
    for line in r.stdout.splitlines():
        print("#   " + line)
    return r


def show_log(r):
    for line in r.stderr.splitlines()[-60:]:
        print("#   log: " + line)


def scenario(name, r, want=0):
    check(name, r.returncode == want, f"(exit {r.returncode}, want {want})")
    if r.returncode != want:
        show_log(r)


def rows(pg):
    out = pg.psql("SELECT kid, state, withdrawn, encode(private_enc, 'hex'), "
                  "encode(nonce, 'hex'), public_jwk::text FROM signing_keys ORDER BY kid")
    result = []
    for line in out.splitlines():
        kid, state, withdrawn, enc, nonce, pub = line.split("|", 5)
        result.append({"kid": kid, "state": state, "withdrawn": withdrawn == "t",
                       "enc": bytes.fromhex(enc), "nonce": bytes.fromhex(nonce),
                       "pub": json.loads(pub)})
    return result


def check_rows(s, logs):
    """What the database holds: sealed private keys, public JWKs, kids."""
    kek = open(s.kek, "rb").read()
    found = rows(s.pg)
    check("db: keys were stored", len(found) >= 3, f"({len(found)} rows)")
    for row in found:
        kid, pub = row["kid"], row["pub"]
        plain = aead_open(kek, kid, row["enc"], row["nonce"])
        check(f"db {kid[:8]}: opens under the KEK with the kid as associated data",
              plain is not None)
        if plain is None:
            continue
        priv = json.loads(plain)
        check(f"db {kid[:8]}: the sealed JWK is private", "d" in priv)
        d = priv.get("d", "")
        enc = row["enc"]
        check(f"db {kid[:8]}: no private value in the clear",
              d.encode() not in enc and b64url_decode(d) not in enc and
              all(priv[m].encode() not in enc for m in PRIVATE if m in priv))
        check(f"db {kid[:8]}: public_jwk has no private member",
              not any(m in pub for m in PRIVATE))
        check(f"db {kid[:8]}: public_jwk is the public half of the sealed key",
              all(pub.get(m) == priv.get(m) for m in ("kty", "n", "e", "crv", "x", "y")))
        check(f"db {kid[:8]}: kid is the RFC 7638 thumbprint",
              thumbprint(pub) == kid and pub.get("kid") == kid)
        check(f"db {kid[:8]}: use sig, alg set", pub.get("use") == "sig" and
              pub.get("alg") == "RS256")
        check(f"db {kid[:8]}: nonce is 24 random bytes", len(row["nonce"]) == 24)
        check(f"db {kid[:8]}: does not open under another kid",
              aead_open(kek, kid[:-1] + ("A" if kid[-1] != "A" else "B"), row["enc"],
                        row["nonce"]) is None)
        check(f"db {kid[:8]}: private values never logged",
              all(priv[m] not in logs for m in PRIVATE if m in priv))
    nonces = [r["nonce"] for r in found]
    check("db: nonces are all different", len(set(nonces)) == len(nonces))
    states = [r["state"] for r in found]
    check("db: one active and one next key", states.count("active") == 1 and
          states.count("next") == 1, f"({states})")


def main():
    with tempfile.TemporaryDirectory(prefix="idp-signer-test-") as tmp, PgCluster() as pg:
        pg.psql(open(os.path.join(TOP, "sql", "001_init.sql")).read())
        s = Setup(pg, tmp)

        # The key-encryption key file must be 32 bytes that only the owner may touch.
        for name, data, mode, want in (
                ("kek-world", os.urandom(32), 0o644, "readable or writable by others"),
                ("kek-group", os.urandom(32), 0o640, "readable or writable by others"),
                ("kek-short", os.urandom(31), 0o600, "exactly 32 bytes"),
                ("kek-long", os.urandom(33), 0o600, "exactly 32 bytes")):
            path = s.write_kek(name, data, mode)
            r = drv("run", s.conf(name, key_encryption_key_file=path), 20)
            check(f"kek: {name} is refused", r.returncode == 1 and want in r.stderr,
                  f"(exit {r.returncode}: {r.stderr.strip()[-200:]})")
        r = drv("run", s.conf("kek-missing", key_encryption_key_file=tmp + "/nope"), 20)
        check("kek: a missing file is refused", r.returncode == 1 and
              "key_encryption_key_file" in r.stderr)
        check("kek: nothing was written to the database before",
              pg.psql("SELECT count(*) FROM signing_keys") == "0")

        # Rotation with two instances sharing the database, RS256.
        r = drv("rotate", s.conf("rotate"), 16, 2, 3, 1)
        scenario("rotate: two instances, RS256", r)
        logs = r.stderr
        check("rotate: rotations logged by kid",
              "next -> active" in logs and "active -> retired" in logs and
              "retired -> deleted" in logs)
        check_rows(s, logs)

        # The wrong KEK: a clear error, and nothing sealed with it.
        before = pg.psql("SELECT string_agg(kid || state, ',' ORDER BY kid) "
                         "FROM signing_keys")
        time.sleep(4)  # let the active key be due, so a wrong signer would rotate
        wrong = s.write_kek("kek-wrong", os.urandom(32))
        r = drv("run", s.conf("wrong", key_encryption_key_file=wrong), 30)
        check("wrong kek: exits 1 with a clear message",
              r.returncode == 1 and WRONG_KEK in r.stderr,
              f"(exit {r.returncode}: {r.stderr.strip()[-300:]})")
        after = pg.psql("SELECT string_agg(kid || state, ',' ORDER BY kid) "
                        "FROM signing_keys")
        check("wrong kek: the database was not changed", before == after)

        # idpctl keys rotate [--emergency], as the rows it inserts.
        s.reset()
        r = drv("requests", s.conf("requests", key_rotation_interval="1h"))
        scenario("requests: normal waits for the publish window, emergency withdraws "
                 "at once", r)

        # The other algorithms.
        for alg in ("ES256", "EdDSA", "PS256"):
            s.reset()
            r = drv("rotate", s.conf("rotate-" + alg, signing_alg=alg), 9, 1, 2, 0)
            scenario(f"rotate: {alg}", r)
            algs = pg.psql("SELECT DISTINCT alg FROM signing_keys")
            check(f"rotate: {alg} keys stored", algs == alg, f"({algs})")

        s.reset()
        r = drv("peercred", s.conf("peercred"))
        scenario("peercred: connections from another uid are refused", r)

        r = drv("nodb", s.conf("nodb", database="host=/nonexistent port=1 dbname=x"))
        scenario("nodb: no keys and no signatures without a database, clean stop", r)

        # The database goes away and comes back: signing never stops, rotation resumes.
        s.reset()
        p = subprocess.Popen([DRV, "outage", s.conf("outage"), "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        check("outage: the signer is ready", line.strip() == "ready", f"({line!r})")
        time.sleep(2)
        pg.stop("fast")
        time.sleep(4)
        pg.start()
        out, err = p.communicate(timeout=120)
        for ln in out.splitlines():
            print("#   " + ln)
        r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        scenario("outage: signs through a database restart and rotates after", r)
        check("outage: the loss and the return are logged",
              "lost the database connection" in err and
              "connected to the database again" in err)

    print(f"# {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
