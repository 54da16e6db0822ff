/* test-b64url.c: base64url against RFC 4648 section 10, plus what strict decoding must refuse. */
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "check.h"

/* RFC 4648 section 10: no '+' or '/' in these, so base64url is the same. */
static const struct {
	const char	*plain;
	const char	*encoded;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg" },
	{ "fo", "Zm8" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg" },
	{ "fooba", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy" },
};

/* 1 if s decodes strictly to exactly the len bytes at want. */
static int
decodes_to(const char *s, const void *want, size_t len)
{
	unsigned char *out;
	size_t n = (size_t)-1;
	int ok;

	if ((out = b64url_decode(s, strlen(s), &n)) == NULL)
		return 0;
	ok = n == len && memcmp(out, want, len) == 0 && out[n] == '\0';
	free(out);
	return ok;
}

/* 1 if strict decoding refuses s. */
static int
refused(const char *s)
{
	unsigned char *out;
	size_t n;

	if ((out = b64url_decode(s, strlen(s), &n)) == NULL)
		return 1;
	free(out);
	return 0;
}

static void
test_rfc4648(void)
{
	char *s;
	size_t i;

	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		s = b64url_encode(rfc4648[i].plain, strlen(rfc4648[i].plain));
		CHECK(s != NULL && strcmp(s, rfc4648[i].encoded) == 0);
		free(s);
		CHECK(decodes_to(rfc4648[i].encoded, rfc4648[i].plain,
		    strlen(rfc4648[i].plain)));
	}
}

static void
test_url_alphabet(void)
{
	/* Standard base64 would be "+/8=" and "++++" and "////". */
	static const unsigned char a[] = { 0xfb, 0xff };
	static const unsigned char b[] = { 0xfb, 0xef, 0xbe };
	static const unsigned char c[] = { 0xff, 0xff, 0xff };
	static const unsigned char zeros[] = { 0, 0, 0, 0 };
	unsigned char all[256];
	unsigned char *back;
	char *s;
	size_t i, n;

	s = b64url_encode(a, sizeof(a));
	CHECK(strcmp(s, "-_8") == 0);
	free(s);
	s = b64url_encode(b, sizeof(b));
	CHECK(strcmp(s, "----") == 0);
	free(s);
	s = b64url_encode(c, sizeof(c));
	CHECK(strcmp(s, "____") == 0);
	free(s);
	CHECK(decodes_to("-_8", a, sizeof(a)));
	CHECK(decodes_to("----", b, sizeof(b)));
	CHECK(decodes_to("____", c, sizeof(c)));

	/* Embedded NULs survive, and the length is not strlen. */
	s = b64url_encode(zeros, sizeof(zeros));
	CHECK(strcmp(s, "AAAAAA") == 0);
	CHECK(decodes_to(s, zeros, sizeof(zeros)));
	free(s);

	/* Every byte value, and every prefix length, round-trips. */
	for (i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)i;
	for (i = 0; i <= sizeof(all); i++) {
		s = b64url_encode(all, i);
		CHECK(strlen(s) == (i * 4 + 2) / 3);
		CHECK(strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(s));
		back = b64url_decode(s, strlen(s), &n);
		CHECK(back != NULL && n == i && memcmp(back, all, i) == 0);
		free(back);
		free(s);
	}

	/* Only slen characters are read. */
	back = b64url_decode("Zm9vYmFy!!!", 8, &n);
	CHECK(back != NULL && n == 6 && memcmp(back, "foobar", 6) == 0);
	free(back);
	/* outlen may be NULL. */
	back = b64url_decode("Zm9v", 4, NULL);
	CHECK(back != NULL && strcmp((char *)back, "foo") == 0);
	free(back);
}

static void
test_strict_refusals(void)
{
	/* Padding. */
	CHECK(refused("Zg=="));
	CHECK(refused("Zm8="));
	CHECK(refused("Zg="));
	CHECK(refused("===="));
	/* The standard alphabet's two characters. */
	CHECK(refused("+/8"));
	CHECK(refused("Zm9+"));
	CHECK(refused("Zm9/"));
	/* Whitespace anywhere. */
	CHECK(refused(" Zm9v"));
	CHECK(refused("Zm9v "));
	CHECK(refused("Zm9v YmFy"));
	CHECK(refused("Zm9v\nYmFy"));
	CHECK(refused("Zm9v\r\nYmFy"));
	CHECK(refused("Zm9v\tYmFy"));
	/* Other characters. */
	CHECK(refused("Zm9v.YmFy"));
	CHECK(refused("Zm9v!"));
	CHECK(refused("Zm9v\xc3\xa9"));
	/* A length no encoding has (1 mod 4). */
	CHECK(refused("Z"));
	CHECK(refused("Zm9vY"));
	/* Non-zero leftover bits: "Zh" and "Zm9" would alias "Zg" and "Zm8". */
	CHECK(refused("Zh"));
	CHECK(refused("Zm9"));
	/* Embedded NUL inside slen. */
	{
		unsigned char *out;

		out = b64url_decode("Zm\0v", 4, NULL);
		CHECK(out == NULL);
		free(out);
	}
}

static void
test_lenient(void)
{
	static const unsigned char a[] = { 0xfb, 0xff };
	unsigned char *out;
	size_t n;

	out = b64url_decode_lenient("Zg==", 4, &n);
	CHECK(out != NULL && n == 1 && out[0] == 'f');
	free(out);
	out = b64url_decode_lenient("+/8=", 4, &n);
	CHECK(out != NULL && n == 2 && memcmp(out, a, 2) == 0);
	free(out);
	out = b64url_decode_lenient("-_8", 3, &n);
	CHECK(out != NULL && n == 2 && memcmp(out, a, 2) == 0);
	free(out);
	out = b64url_decode_lenient("Zm9vYmFy", 8, &n);
	CHECK(out != NULL && n == 6 && memcmp(out, "foobar", 6) == 0);
	free(out);
	/* Lenient is not anything-goes. */
	out = b64url_decode_lenient("Zm9v YmFy", 9, &n);
	CHECK(out == NULL);
	free(out);
	out = b64url_decode_lenient("Zm9v!", 5, &n);
	CHECK(out == NULL);
	free(out);
}

int
main(void)
{
	test_rfc4648();
	test_url_alphabet();
	test_strict_refusals();
	test_lenient();
	return CHECK_DONE();
}
