/* keys.c: mockidp's signing keys: loading JWK files, generating, round-robin signing, JWKS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwk.h"
#include "jws.h"
#include "mockidp.h"
#include "secret.h"
#include "token.h"
#include "xalloc.h"

void
mock_key_free(struct mock_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->alg_name);
	free(k->kid);
	json_decref(k->jwk);
	free(k);
}

/* The signing alg for an "alg" member; "Ed25519" is the fully-specified name of EdDSA
 * over Ed25519 that oauth2-mock-server also takes. */
static enum jws_alg
mock_alg(const char *name)
{
	if (strcmp(name, "Ed25519") == 0)
		return JWS_ALG_EDDSA;
	return jws_alg_from_name(name);
}

/* Finish a key from its full JWK (steals jwk): check alg, build the EVP key, add a kid. */
static struct mock_key *
mock_key_from_jwk(json_t *jwk, char *err, size_t errlen)
{
	struct mock_key *k;
	const char *alg, *crv, *errstr = NULL;
	enum jws_alg a;
	EVP_PKEY *pkey;
	json_t *kid;

	if ((alg = json_string_value(json_object_get(jwk, "alg"))) == NULL) {
		snprintf(err, errlen, "Unspecified JWK \"alg\" property");
		goto fail;
	}
	if ((a = mock_alg(alg)) == JWS_ALG_UNKNOWN) {
		snprintf(err, errlen, "Unsupported JWK \"alg\" value (\"%s\")", alg);
		goto fail;
	}
	crv = json_string_value(json_object_get(jwk, "crv"));
	if (a == JWS_ALG_EDDSA && (crv == NULL || strcmp(crv, "Ed25519") != 0)) {
		snprintf(err, errlen, "Invalid or unsupported crv option provided, "
		    "supported values are: Ed25519");
		goto fail;
	}
	if ((pkey = jwk_to_pkey(jwk, 1, &errstr)) == NULL) {
		if (errstr != NULL && strstr(errstr, "private") != NULL)
			snprintf(err, errlen, "Invalid JWK type. No \"private\" key "
			    "related data has been found.");
		else
			snprintf(err, errlen, "invalid JWK: %s", errstr);
		goto fail;
	}
	if (!jws_alg_fits_key(a, pkey)) {
		snprintf(err, errlen, "the key does not fit JWK \"alg\" value (\"%s\")", alg);
		EVP_PKEY_free(pkey);
		goto fail;
	}
	kid = json_object_get(jwk, "kid");
	if (kid != NULL && !json_is_string(kid)) {
		snprintf(err, errlen, "invalid JWK: \"kid\" is not a string");
		EVP_PKEY_free(pkey);
		goto fail;
	}
	if (kid == NULL) {
		char *hex = secret_random_hex(40);

		json_object_set_new(jwk, "kid", json_string(hex));
		free(hex);
	}
	k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	k->alg = a;
	k->alg_name = xstrdup(alg);
	k->kid = xstrdup(json_string_value(json_object_get(jwk, "kid")));
	k->jwk = jwk;
	return k;
fail:
	json_decref(jwk);
	return NULL;
}

struct mock_key *
mock_key_load(const char *path, char *err, size_t errlen)
{
	const char *errstr = NULL;
	json_t *jwk;

	if ((jwk = jwk_load_file(path, &errstr)) == NULL) {
		snprintf(err, errlen, "%s", errstr);
		return NULL;
	}
	return mock_key_from_jwk(jwk, err, errlen);
}

struct mock_key *
mock_key_generate(enum jws_alg alg, char *err, size_t errlen)
{
	const char *errstr = NULL;
	EVP_PKEY *pkey;
	json_t *jwk;
	char *hex;

	if ((pkey = jwk_generate(alg, &errstr)) == NULL ||
	    (jwk = jwk_from_pkey(pkey, 1, &errstr)) == NULL) {
		snprintf(err, errlen, "cannot generate a key: %s", errstr);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	EVP_PKEY_free(pkey);
	hex = secret_random_hex(40);
	json_object_set_new(jwk, "kid", json_string(hex));
	json_object_set_new(jwk, "alg", json_string(jws_alg_name(alg)));
	free(hex);
	return mock_key_from_jwk(jwk, err, errlen);
}

void
mock_keys_add(struct mock_keys *ks, struct mock_key *k)
{
	size_t i;

	for (i = 0; i < ks->n; i++) {
		if (strcmp(ks->v[i]->kid, k->kid) == 0) {
			mock_key_free(ks->v[i]);
			ks->v[i] = k;
			return;
		}
	}
	ks->v = xreallocarray(ks->v, ks->n + 1, sizeof(*ks->v));
	ks->v[ks->n++] = k;
}

struct mock_key *
mock_keys_next(struct mock_keys *ks)
{
	struct mock_key *k;

	if (ks->n == 0)
		return NULL;
	k = ks->v[0];
	memmove(ks->v, ks->v + 1, (ks->n - 1) * sizeof(*ks->v));
	ks->v[ks->n - 1] = k;
	return k;
}

json_t *
mock_keys_jwks(const struct mock_keys *ks)
{
	json_t *keys = json_array();
	size_t i;

	for (i = 0; i < ks->n; i++)
		json_array_append_new(keys, jwk_public(ks->v[i]->jwk));
	return json_pack("{s:o}", "keys", keys);
}

void
mock_keys_clear(struct mock_keys *ks)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		mock_key_free(ks->v[i]);
	free(ks->v);
	ks->v = NULL;
	ks->n = 0;
}

char *
mock_sign(struct mock_keys *ks, const char *typ, json_t *payload, const char **errstr)
{
	struct mock_key *k;
	json_t *header;
	char *jws;

	if ((k = mock_keys_next(ks)) == NULL) {
		*errstr = "no signing key";
		return NULL;
	}
	header = token_header(typ, k->kid, k->alg_name);
	jws = jws_sign(k->pkey, k->alg, header, payload, errstr);
	json_decref(header);
	return jws;
}
