/* test-jwks.c: the worker's key set from the signer's IPC_KEYS: what is kept, what is
 * refused, and the key-age metrics (timestamps as numbers or as text). */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "../unit/check.h"
#include "worker.h"

static char *
ages(long long now)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	h_jwks_render_metrics(b, now);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

int
main(void)
{
	const char *good = "{\"jwks\":{\"keys\":[{\"kty\":\"OKP\",\"kid\":\"a\"}]},"
	    "\"max_age\":120,\"active_kid\":\"a\",\"active_alg\":\"EdDSA\",\"keys\":["
	    "{\"kid\":\"a\",\"state\":\"active\",\"created_at\":1714564800,\"activated_at\":null},"
	    "{\"kid\":\"b\",\"state\":\"next\",\"created_at\":\"2024-05-01T12:00:00Z\"},"
	    "{\"kid\":\"c\\\"q\",\"state\":\"retired\",\"created_at\":\"2024-05-01 14:00:00.5+02\"},"
	    "{\"kid\":\"d\",\"state\":\"next\",\"created_at\":\"yesterday\"}]}";
	char etag[48], etag2[48], *s;

	if (sodium_init() < 0)
		return 1;
	CHECK(!h_jwks_loaded());
	h_jwks_update("not json", 8, 60);
	CHECK(!h_jwks_loaded());
	h_jwks_update("{\"jwks\":{}}", 11, 60);
	CHECK(!h_jwks_loaded());
	h_jwks_update(good, strlen(good), 60);
	CHECK(h_jwks_loaded());
	/* 2024-05-01T12:00:00Z is 1714564800; the last one cannot be read. */
	s = ages(1714564800 + 100);
	CHECK(strstr(s, "# TYPE idp_signing_key_age_seconds gauge\n") != NULL);
	CHECK(strstr(s, "idp_signing_key_age_seconds{kid=\"a\",state=\"active\"} 100\n"));
	CHECK(strstr(s, "idp_signing_key_age_seconds{kid=\"b\",state=\"next\"} 100\n"));
	CHECK(strstr(s, "idp_signing_key_age_seconds{kid=\"c\\\"q\",state=\"retired\"} 100\n"));
	CHECK(strstr(s, "kid=\"d\"") == NULL);
	free(s);
	/* A bad update keeps what was there. */
	h_jwks_update("{\"jwks\":[]}", 11, 60);
	CHECK(h_jwks_loaded());

	worker_etag("abc", 3, etag, sizeof(etag));
	worker_etag("abd", 3, etag2, sizeof(etag2));
	CHECK(strlen(etag) == 24 && etag[0] == '"' && etag[23] == '"' &&
	    strcmp(etag, etag2) != 0);
	return CHECK_DONE();
}
