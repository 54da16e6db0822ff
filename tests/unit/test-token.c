/* test-token.c: unit tests for the token shapes shared by mockidp and idp. */
#include <string.h>

#include "check.h"
#include "token.h"

int
main(void)
{
	json_t *h, *c, *o;
	char *s;

	h = token_header("JWT", "k1", "RS256");
	s = json_dumps(h, JSON_COMPACT);
	CHECK(strcmp(s, "{\"typ\":\"JWT\",\"kid\":\"k1\",\"alg\":\"RS256\"}") == 0);
	free(s);
	json_decref(h);
	h = token_header("at+jwt", NULL, "ES256");
	s = json_dumps(h, JSON_COMPACT);
	CHECK(strcmp(s, "{\"typ\":\"at+jwt\",\"alg\":\"ES256\"}") == 0);
	free(s);
	json_decref(h);

	/* iss, iat, exp, nbf in that order; nbf = iat - skew. */
	c = token_claims("http://localhost:8080", 1000, 3600, 10);
	s = json_dumps(c, JSON_COMPACT);
	CHECK(strcmp(s, "{\"iss\":\"http://localhost:8080\",\"iat\":1000,\"exp\":4600,"
	    "\"nbf\":990}") == 0);
	free(s);

	/* Merge: replace in place, add at the end, null removes. */
	o = json_pack("{s:i, s:s, s:n}", "exp", 5000, "sub", "alice", "nbf");
	token_claims_merge(c, o);
	s = json_dumps(c, JSON_COMPACT);
	CHECK(strcmp(s, "{\"iss\":\"http://localhost:8080\",\"iat\":1000,\"exp\":5000,"
	    "\"sub\":\"alice\"}") == 0);
	free(s);
	token_claims_merge(c, NULL);
	json_decref(o);
	json_decref(c);
	c = token_claims("x", 1, 2, -1);
	CHECK(json_object_get(c, "nbf") == NULL);
	json_decref(c);

	/* at_hash (OIDC Core 3.1.3.6): base64url of the left half of SHA-256 of the
	 * token's ASCII; the expected value was computed with Python's hashlib. */
	s = token_half_hash(JWS_ALG_RS256, "hello");
	CHECK(s != NULL && strcmp(s, "LPJNul-wow4m6Dsqxbning") == 0);
	free(s);
	s = token_half_hash(JWS_ALG_ES384, "hello");
	CHECK(s != NULL && strlen(s) == 32);	/* 24 bytes */
	free(s);
	s = token_half_hash(JWS_ALG_EDDSA, "hello");
	CHECK(s != NULL && strlen(s) == 43);	/* 32 bytes of SHA-512 */
	free(s);
	CHECK(token_half_hash(JWS_ALG_UNKNOWN, "hello") == NULL);

	o = token_response("AT", 3600);
	s = json_dumps(o, JSON_COMPACT);
	CHECK(strcmp(s, "{\"access_token\":\"AT\",\"token_type\":\"Bearer\","
	    "\"expires_in\":3600}") == 0);
	free(s);
	json_decref(o);
	return CHECK_DONE();
}
