/* test-tokens.c: the token side's in-memory parts: the revocation set (expiry, growth,
 * lengths), access-token verification against an IPC_KEYS key set (valid, expired,
 * foreign, wrong typ, tampered, alg confusion, no kid, another issuer), and the claims
 * of ID tokens and /userinfo by scope. No database: the set has no store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "../unit/check.h"
#include "accesstoken.h"
#include "b64url.h"
#include "idtoken.h"
#include "jwk.h"
#include "jws.h"
#include "revocation.h"
#include "store.h"
#include "token.h"

#define ISS	"https://idp.example"
#define NOW	1800000000LL

/* An IPC_KEYS payload publishing key as kid (alg RS256). */
static char *
keys_payload(EVP_PKEY *key, const char *kid)
{
	const char *errstr;
	json_t *jwk = jwk_from_pkey(key, 0, &errstr), *msg;
	char *s;

	json_object_set_new(jwk, "kid", json_string(kid));
	json_object_set_new(jwk, "alg", json_string("RS256"));
	json_object_set_new(jwk, "use", json_string("sig"));
	msg = json_pack("{s{s[o]}sisss[]}", "jwks", "keys", jwk, "max_age", 60,
	    "active_kid", kid, "keys");
	s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return s;
}

static char *
sign(EVP_PKEY *key, const char *typ, const char *kid, json_t *claims)
{
	const char *errstr;
	json_t *h = token_header(typ, kid, "RS256");
	char *jws = jws_sign(key, JWS_ALG_RS256, h, claims, &errstr);

	json_decref(h);
	json_decref(claims);
	return jws;
}

static json_t *
claims(long long exp)
{
	return json_pack("{sssssssIsIssss}", "iss", ISS, "sub", "user-1", "aud", ISS,
	    "exp", (json_int_t)exp, "iat", (json_int_t)(NOW - 10), "jti", "jti-1",
	    "client_id", "web");
}

static enum accesstoken_status
verify(const char *tok)
{
	enum accesstoken_status s;
	const char *errstr;
	json_t *c;

	s = accesstoken_verify(tok, ISS, NOW, &c, &errstr);
	CHECK((s == ACCESSTOKEN_OK) == (c != NULL));
	json_decref(c);
	return s;
}

static void
test_revocation(void)
{
	struct revocation *rv = revocation_new(NULL, NULL, 3600);
	struct store_query *q;
	char jti[32], big[REVOCATION_MAX_JTI + 2];
	int i, all = 1;

	CHECK(!revocation_has(rv, "a", NOW));
	revocation_add(rv, "a", NOW + 10);
	CHECK(revocation_has(rv, "a", NOW));
	CHECK(revocation_has(rv, "a", NOW + 10));
	CHECK(!revocation_has(rv, "a", NOW + 11));
	revocation_add(rv, "a", NOW - 100);	/* the later expiry stays */
	CHECK(revocation_has(rv, "a", NOW + 10));
	for (i = 0; i < 5000; i++) {
		snprintf(jti, sizeof(jti), "jti-%d", i);
		revocation_add(rv, jti, NOW + i);
	}
	CHECK(revocation_count(rv) == 5001);
	for (i = 0; i < 5000; i++) {
		snprintf(jti, sizeof(jti), "jti-%d", i);
		all &= revocation_has(rv, jti, NOW);
	}
	CHECK(all);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	revocation_add(rv, big, NOW + 10);	/* never ours: not kept */
	CHECK(!revocation_has(rv, big, NOW));
	CHECK(revocation_count(rv) == 5001);
	revocation_notify(rv, "n-1");
	CHECK(revocation_has(rv, "n-1", (long long)time(NULL) + 3000));
	/* Never loaded and no database: nobody can say. */
	CHECK(!revocation_synced(rv) && !revocation_loaded(rv));
	CHECK(revocation_check(rv, "a", NOW, NULL, NULL, &q) == REVOCATION_UNKNOWN);
	revocation_free(rv);
}

static void
test_accesstoken(void)
{
	const char *errstr;
	EVP_PKEY *ours = jwk_generate(JWS_ALG_RS256, &errstr);
	EVP_PKEY *foreign = jwk_generate(JWS_ALG_RS256, &errstr);
	char *payload = keys_payload(ours, "k1"), *tok, *bad, *p;
	json_t *c;

	CHECK(ours != NULL && foreign != NULL);
	CHECK(accesstoken_nkeys() == 0);
	tok = sign(ours, "at+jwt", "k1", claims(NOW + 60));
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);	/* no keys yet */
	accesstoken_keys_update(payload, strlen(payload));
	CHECK(accesstoken_nkeys() == 1);
	accesstoken_keys_update("{}", 2);		/* unusable: the set stays */
	CHECK(accesstoken_nkeys() == 1);
	CHECK(verify(tok) == ACCESSTOKEN_OK);
	CHECK(accesstoken_verify(tok, ISS, NOW, &c, &errstr) == ACCESSTOKEN_OK &&
	    strcmp(json_string_value(json_object_get(c, "jti")), "jti-1") == 0);
	json_decref(c);
	CHECK(accesstoken_verify(tok, "https://other.example", NOW, &c, &errstr) ==
	    ACCESSTOKEN_INVALID);
	CHECK(accesstoken_verify(tok, ISS, NOW + 60, &c, &errstr) == ACCESSTOKEN_EXPIRED);

	/* Tampered payload: the signature no longer holds. */
	bad = strdup(tok);
	p = strchr(bad, '.') + 5;
	*p = *p == 'A' ? 'B' : 'A';
	CHECK(verify(bad) == ACCESSTOKEN_INVALID);
	free(bad);
	free(tok);

	tok = sign(ours, "at+jwt", "k1", claims(NOW - 1));
	CHECK(verify(tok) == ACCESSTOKEN_EXPIRED);
	free(tok);
	/* typ JWT (access_token_typ = JWT): an access token by its claims. */
	tok = sign(ours, "JWT", "k1", claims(NOW + 60));
	CHECK(verify(tok) == ACCESSTOKEN_OK);
	free(tok);
	/* An ID token, whatever its typ: no jti, no client_id. */
	tok = sign(ours, "JWT", "k1", json_pack("{sssssssIsIss}", "iss", ISS, "sub", "user-1",
	    "aud", "web", "exp", (json_int_t)(NOW + 60), "iat", (json_int_t)(NOW - 10),
	    "nonce", "n"));
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);
	free(tok);
	tok = sign(ours, "at+jwt", "k1", json_pack("{sssssssIsIss}", "iss", ISS, "sub",
	    "user-1", "aud", "web", "exp", (json_int_t)(NOW + 60), "iat",
	    (json_int_t)(NOW - 10), "jti", "j"));		/* no client_id */
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);
	free(tok);
	tok = sign(ours, "id+jwt", "k1", claims(NOW + 60));	/* another typ */
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);
	free(tok);
	tok = sign(ours, "at+jwt", NULL, claims(NOW + 60));	/* no kid */
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);
	free(tok);
	tok = sign(foreign, "at+jwt", "k1", claims(NOW + 60));	/* our kid, not our key */
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);
	free(tok);
	tok = sign(foreign, "at+jwt", "k2", claims(NOW + 60));
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);
	free(tok);
	c = claims(NOW + 60);
	json_object_del(c, "jti");
	tok = sign(ours, "at+jwt", "k1", c);
	CHECK(verify(tok) == ACCESSTOKEN_INVALID);
	free(tok);
	c = claims(NOW + 60);
	json_object_set_new(c, "nbf", json_integer(NOW + 600));
	tok = sign(ours, "at+jwt", "k1", c);
	CHECK(verify(tok) == ACCESSTOKEN_EXPIRED);
	free(tok);
	/* alg none with our kid. */
	CHECK(verify("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0Iiwia2lkIjoiazEifQ."
	    "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.") == ACCESSTOKEN_INVALID);
	CHECK(verify("") == ACCESSTOKEN_INVALID);
	CHECK(verify("a.b") == ACCESSTOKEN_INVALID);
	CHECK(verify("...") == ACCESSTOKEN_INVALID);
	CHECK(accesstoken_is_jws("a.b.c") && !accesstoken_is_jws("abc") &&
	    !accesstoken_is_jws("a.b"));
	free(payload);
	EVP_PKEY_free(ours);
	EVP_PKEY_free(foreign);
}

static void
test_idtoken(void)
{
	const char *row[STORE_UC__COUNT] = {
		[STORE_UC_ID] = "u1", [STORE_UC_USERNAME] = "alice",
		[STORE_UC_NAME] = "Alice", [STORE_UC_EMAIL] = "a@example.com",
		[STORE_UC_EMAIL_VERIFIED] = "t", [STORE_UC_ROLES] = "[\"admin\"]",
		[STORE_UC_DISABLED] = "f",
	};
	struct idtoken_user u;
	const char *errstr;
	json_t *c;

	CHECK(idtoken_scope_has("openid profile", "profile"));
	CHECK(!idtoken_scope_has("openid profiles", "profile"));
	CHECK(!idtoken_scope_has("", "openid") && !idtoken_scope_has(NULL, "openid"));
	CHECK(idtoken_user_read(&u, row, &errstr) == 0);
	CHECK(u.email_verified && !u.disabled && json_array_size(u.roles) == 1);

	c = idtoken_claims(ISS, &u, "web", "openid profile email", NOW, 300, NOW - 5,
	    "n", "h");
	CHECK(strcmp(json_string_value(json_object_get(c, "sub")), "u1") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "aud")), "web") == 0);
	CHECK(json_integer_value(json_object_get(c, "exp")) == NOW + 300);
	CHECK(json_integer_value(json_object_get(c, "auth_time")) == NOW - 5);
	CHECK(strcmp(json_string_value(json_object_get(c, "nonce")), "n") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "at_hash")), "h") == 0);
	CHECK(json_object_get(c, "name") != NULL && json_object_get(c, "email") != NULL);
	CHECK(json_is_true(json_object_get(c, "email_verified")));
	CHECK(json_array_size(json_object_get(c, "roles")) == 1);
	json_decref(c);

	c = idtoken_claims(ISS, &u, "web", "openid", NOW, 300, NOW, NULL, NULL);
	CHECK(json_object_get(c, "name") == NULL && json_object_get(c, "email") == NULL &&
	    json_object_get(c, "nonce") == NULL && json_object_get(c, "at_hash") == NULL &&
	    json_object_get(c, "preferred_username") == NULL);
	json_decref(c);
	idtoken_user_clear(&u);

	row[STORE_UC_ROLES] = "{\"a\":1}";
	CHECK(idtoken_user_read(&u, row, &errstr) == -1);
	row[STORE_UC_ROLES] = "[1]";
	CHECK(idtoken_user_read(&u, row, &errstr) == -1);
	row[STORE_UC_ROLES] = "[]";
	row[STORE_UC_NAME] = NULL;
	row[STORE_UC_EMAIL] = NULL;
	CHECK(idtoken_user_read(&u, row, &errstr) == 0);
	c = json_object();
	idtoken_user_claims(c, &u, "openid profile email");
	/* No value, no claim (OIDC Core 5.3.2); preferred_username always has one. */
	CHECK(json_object_get(c, "name") == NULL && json_object_get(c, "email") == NULL &&
	    json_object_get(c, "email_verified") == NULL &&
	    json_object_get(c, "preferred_username") != NULL);
	json_decref(c);
	idtoken_user_clear(&u);

	CHECK(idtoken_jws_alg("eyJhbGciOiJFUzI1NiJ9.e30.x") == JWS_ALG_ES256);
	CHECK(idtoken_jws_alg("nonsense") == JWS_ALG_UNKNOWN);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_revocation();
	test_accesstoken();
	test_idtoken();
	return CHECK_DONE();
}
