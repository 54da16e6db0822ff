/* test-secret.c: unit tests for random values, Argon2id and comparisons (common/secret.c). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "secret.h"

/* Small Argon2id costs: these tests are about the plumbing, not the cost. */
#define OPS	crypto_pwhash_OPSLIMIT_MIN
#define MEM	(8192 * 1024)

static int
all_in(const char *s, const char *set)
{
	return s[strspn(s, set)] == '\0';
}

static void
test_random(void)
{
	unsigned char a[32], b[32];
	char *s, *t;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	secret_random(a, sizeof(a));
	secret_random(b, sizeof(b));
	CHECK(memcmp(a, b, sizeof(a)) != 0);

	s = secret_random_hex(16);
	CHECK(strlen(s) == 32 && all_in(s, "0123456789abcdef"));
	t = secret_random_hex(16);
	CHECK(strcmp(s, t) != 0);
	free(s);
	free(t);
	s = secret_random_hex(0);
	CHECK(strcmp(s, "") == 0);
	free(s);

	/* base64url without padding: 4 characters per 3 bytes, rounded up. */
	s = secret_random_b64url(32);
	CHECK(strlen(s) == 43);
	CHECK(all_in(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_"));
	free(s);
	s = secret_random_b64url(1);
	CHECK(strlen(s) == 2);
	free(s);
	s = secret_random_b64url(3);
	CHECK(strlen(s) == 4);
	free(s);
}

static void
test_uuid(void)
{
	char *u, *v;
	int i, j;

	for (i = 0; i < 200; i++) {
		u = secret_uuid_v4();
		CHECK(strlen(u) == 36);
		for (j = 0; j < 36; j++) {
			if (j == 8 || j == 13 || j == 18 || j == 23)
				CHECK(u[j] == '-');
			else
				CHECK(strchr("0123456789abcdef", u[j]) != NULL &&
				    u[j] != '\0');
		}
		CHECK(u[14] == '4');
		CHECK(u[19] == '8' || u[19] == '9' || u[19] == 'a' ||
		    u[19] == 'b');
		free(u);
	}
	u = secret_uuid_v4();
	v = secret_uuid_v4();
	CHECK(strcmp(u, v) != 0);
	free(u);
	free(v);
}

static void
test_hash(void)
{
	char h[SECRET_HASH_MAX], h2[SECRET_HASH_MAX], bad[SECRET_HASH_MAX];
	const char *pw = "correct horse battery staple";

	CHECK(secret_hash(pw, strlen(pw), OPS, MEM, h) == 0);
	CHECK(strncmp(h, "$argon2id$", 10) == 0);
	CHECK(strlen(h) < SECRET_HASH_MAX);
	CHECK(secret_verify(h, pw, strlen(pw)) == 0);
	CHECK(secret_verify(h, "correct horse battery stapl", strlen(pw) - 1) == -1);
	CHECK(secret_verify(h, "Correct horse battery staple", strlen(pw)) == -1);
	CHECK(secret_verify(h, "", 0) == -1);

	/* A fresh salt every time. */
	CHECK(secret_hash(pw, strlen(pw), OPS, MEM, h2) == 0);
	CHECK(strcmp(h, h2) != 0);
	CHECK(secret_verify(h2, pw, strlen(pw)) == 0);

	/* The password is (pw, pwlen): embedded NUL bytes count. */
	CHECK(secret_hash("a\0b", 3, OPS, MEM, h2) == 0);
	CHECK(secret_verify(h2, "a\0b", 3) == 0);
	CHECK(secret_verify(h2, "a", 1) == -1);
	CHECK(secret_verify(h2, "a\0c", 3) == -1);

	/* Malformed or foreign hashes never verify. */
	CHECK(secret_verify("", pw, strlen(pw)) == -1);
	CHECK(secret_verify(NULL, pw, strlen(pw)) == -1);
	CHECK(secret_verify("$argon2id$garbage", pw, strlen(pw)) == -1);
	CHECK(secret_verify("$2b$10$abcdefghijklmnopqrstuu", pw, strlen(pw)) == -1);
	memcpy(bad, h, sizeof(bad));
	bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
	CHECK(secret_verify(bad, pw, strlen(pw)) == -1);
	/* Not NUL-terminated within SECRET_HASH_MAX. */
	memset(bad, 'a', sizeof(bad));
	memcpy(bad, "$argon2id$", 10);
	CHECK(secret_verify(bad, pw, strlen(pw)) == -1);
	CHECK(secret_needs_rehash(bad, OPS, MEM) == 1);

	/* Costs: same costs need no rehash, other costs do. */
	CHECK(secret_needs_rehash(h, OPS, MEM) == 0);
	CHECK(secret_needs_rehash(h, OPS + 1, MEM) == 1);
	CHECK(secret_needs_rehash(h, OPS, MEM * 2) == 1);
	CHECK(secret_needs_rehash(h, 0, 0) == 1);
	CHECK(secret_needs_rehash("$argon2id$garbage", OPS, MEM) == 1);
	CHECK(secret_needs_rehash("", OPS, MEM) == 1);

	/* An Argon2i hash verifies but asks to be redone as Argon2id. */
	CHECK(crypto_pwhash_str_alg(h2, pw, strlen(pw), 3, MEM,
	    crypto_pwhash_ALG_ARGON2I13) == 0);
	CHECK(secret_verify(h2, pw, strlen(pw)) == 0);
	CHECK(secret_verify(h2, "other", 5) == -1);
	CHECK(secret_needs_rehash(h2, 3, MEM) == 1);

	/* Impossible costs fail cleanly. */
	CHECK(secret_hash(pw, strlen(pw), 0, 1, h2) == -1);
}

static void
test_defaults(void)
{
	char h[SECRET_HASH_MAX];
	const char *pw = "pw";

	/* 0, 0 means libsodium's interactive costs. */
	CHECK(secret_hash(pw, strlen(pw), 0, 0, h) == 0);
	CHECK(strncmp(h, "$argon2id$", 10) == 0);
	CHECK(secret_verify(h, pw, strlen(pw)) == 0);
	CHECK(secret_needs_rehash(h, 0, 0) == 0);
	CHECK(secret_needs_rehash(h, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0);
	CHECK(secret_needs_rehash(h, OPS, MEM) == 1);
}

static void
test_equal(void)
{
	unsigned char a[16], b[16];

	memset(a, 7, sizeof(a));
	memcpy(b, a, sizeof(b));
	CHECK(secret_equal(a, b, sizeof(a)) == 1);
	b[15] ^= 1;
	CHECK(secret_equal(a, b, sizeof(a)) == 0);
	CHECK(secret_equal(a, b, 15) == 1);
	b[0] ^= 0x80;
	CHECK(secret_equal(a, b, sizeof(a)) == 0);
	CHECK(secret_equal(a, b, 0) == 1);

	CHECK(secret_str_equal("", "") == 1);
	CHECK(secret_str_equal("verifier", "verifier") == 1);
	CHECK(secret_str_equal("verifier", "verifieR") == 0);
	CHECK(secret_str_equal("verifier", "verifie") == 0);
	CHECK(secret_str_equal("verifie", "verifier") == 0);
	CHECK(secret_str_equal("", "x") == 0);
}

int
main(void)
{
	secret_init();
	secret_init();
	test_random();
	test_uuid();
	test_hash();
	test_defaults();
	test_equal();
	{
		/* FIPS 180-2 example: SHA-256("abc"). */
		char hex[SECRET_SHA256_HEX];

		secret_sha256_hex("abc", hex);
		CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223"
		    "b00361a396177a9cb410ff61f20015ad") == 0);
	}
	return CHECK_DONE();
}
