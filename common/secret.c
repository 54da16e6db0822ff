/* secret.c: random values, Argon2id hashes and constant-time comparison on libsodium. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "b64url.h"
#include "log.h"
#include "secret.h"
#include "xalloc.h"

#define SECRET_ARGON2ID_PREFIX	"$argon2id$"

void
secret_init(void)
{
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
}

void
secret_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

char *
secret_random_b64url(size_t nbytes)
{
	unsigned char *buf = xmalloc(nbytes);
	char *out;

	randombytes_buf(buf, nbytes);
	out = b64url_encode(buf, nbytes);
	sodium_memzero(buf, nbytes);
	free(buf);
	return out;
}

char *
secret_random_hex(size_t nbytes)
{
	unsigned char *buf = xmalloc(nbytes);
	char *out = xreallocarray(NULL, nbytes + 1, 2);

	randombytes_buf(buf, nbytes);
	sodium_bin2hex(out, nbytes * 2 + 1, buf, nbytes);
	sodium_memzero(buf, nbytes);
	free(buf);
	return out;
}

char *
secret_uuid_v4(void)
{
	unsigned char b[16];
	char hex[sizeof(b) * 2 + 1];
	char *out;

	randombytes_buf(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* variant 10xx (RFC 4122) */
	sodium_bin2hex(hex, sizeof(hex), b, sizeof(b));
	out = xasprintf("%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
	    hex + 16, hex + 20);
	return out;
}

/* Zero costs stand for libsodium's interactive defaults, each on its own. */
static void
secret_costs(unsigned long long *opslimit, size_t *memlimit)
{
	if (*opslimit == 0)
		*opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	if (*memlimit == 0)
		*memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
}

int
secret_hash(const char *pw, size_t pwlen, unsigned long long opslimit,
    size_t memlimit, char out[SECRET_HASH_MAX])
{
	secret_costs(&opslimit, &memlimit);
	if (crypto_pwhash_str_alg(out, pw, pwlen, opslimit, memlimit,
	    crypto_pwhash_ALG_ARGON2ID13) != 0) {
		memset(out, 0, SECRET_HASH_MAX);
		return -1;
	}
	return 0;
}

/* 1 if hash is a NUL-terminated string that fits SECRET_HASH_MAX. */
static int
secret_hash_fits(const char *hash)
{
	return hash != NULL && strnlen(hash, SECRET_HASH_MAX) < SECRET_HASH_MAX;
}

/* 1 if hash fits and is an Argon2id hash string. */
static int
secret_is_argon2id(const char *hash)
{
	return secret_hash_fits(hash) && strncmp(hash, SECRET_ARGON2ID_PREFIX,
	    sizeof(SECRET_ARGON2ID_PREFIX) - 1) == 0;
}

/*
 * Any hash libsodium can verify is accepted, Argon2i included, so that old hashes keep
 * working until secret_needs_rehash has them redone as Argon2id.
 */
int
secret_verify(const char *hash, const char *pw, size_t pwlen)
{
	if (!secret_hash_fits(hash))
		return -1;
	return crypto_pwhash_str_verify(hash, pw, pwlen) == 0 ? 0 : -1;
}

int
secret_needs_rehash(const char *hash, unsigned long long opslimit, size_t memlimit)
{
	if (!secret_is_argon2id(hash))
		return 1;
	secret_costs(&opslimit, &memlimit);
	return crypto_pwhash_str_needs_rehash(hash, opslimit, memlimit) != 0;
}

int
secret_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

int
secret_str_equal(const char *a, const char *b)
{
	unsigned char ha[32], hb[32];
	int eq;

	crypto_generichash(ha, sizeof(ha), (const unsigned char *)a, strlen(a),
	    NULL, 0);
	crypto_generichash(hb, sizeof(hb), (const unsigned char *)b, strlen(b),
	    NULL, 0);
	eq = sodium_memcmp(ha, hb, sizeof(ha)) == 0;
	sodium_memzero(ha, sizeof(ha));
	sodium_memzero(hb, sizeof(hb));
	return eq;
}

void
secret_sha256_hex(const char *s, char out[SECRET_SHA256_HEX])
{
	unsigned char md[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(md, (const unsigned char *)s, strlen(s));
	sodium_bin2hex(out, SECRET_SHA256_HEX, md, sizeof(md));
}
