/* b64url.c: base64url (RFC 4648 section 5) without padding, delegated to libsodium. */
#include <string.h>

#include <sodium.h>

#include "b64url.h"
#include "xalloc.h"

char *
b64url_encode(const void *data, size_t len)
{
	const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
	size_t n = sodium_base64_encoded_len(len, variant);
	char *out = xmalloc(n);

	sodium_bin2base64(out, n, data, len, variant);
	return out;
}

static unsigned char *
b64_decode_variant(const char *s, size_t slen, size_t *outlen, int variant)
{
	unsigned char *out = xmalloc(slen * 3 / 4 + 2);
	const char *end = NULL;
	size_t n = 0;

	if (sodium_base642bin(out, slen * 3 / 4 + 1, s, slen, NULL, &n, &end,
	    variant) != 0 || end != s + slen) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return out;
}

unsigned char *
b64url_decode(const char *s, size_t slen, size_t *outlen)
{
	return b64_decode_variant(s, slen, outlen,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

unsigned char *
b64url_decode_lenient(const char *s, size_t slen, size_t *outlen)
{
	char *t = xmalloc(slen + 1);
	unsigned char *out;
	size_t i, n = 0;

	for (i = 0; i < slen; i++) {
		if (s[i] == '=')
			break;
		t[n++] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	}
	out = b64_decode_variant(t, n, outlen,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	free(t);
	return out;
}
