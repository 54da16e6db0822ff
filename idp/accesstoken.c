/* accesstoken.c: verify idp's own JWT access tokens inside a worker.
 *
 * The worker holds no private key, but the signer pushes the public key set with every
 * change (IPC_KEYS, the same message that feeds /jwks). Those keys are kept here as
 * EVP_PKEYs by kid, each with the alg its JWK names, so that /introspect and /userinfo
 * can check a token's signature, issuer and lifetime with no database query and no
 * round trip to the signer. A token whose kid is not among them is foreign (or signed
 * by a key withdrawn in an emergency rotation) and never valid. The header is read
 * before the signature is checked only to pick the key: alg must be the key's own,
 * never the token's choice.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "accesstoken.h"
#include "b64url.h"
#include "jwk.h"
#include "jws.h"
#include "log.h"
#include "xalloc.h"

struct at_key {
	char		*kid;
	enum jws_alg	 alg;
	EVP_PKEY	*pkey;
};

static struct at_key	*at_keys;
static size_t		 at_nkeys;

static void
at_keys_free(struct at_key *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(keys[i].kid);
		EVP_PKEY_free(keys[i].pkey);
	}
	free(keys);
}

void
accesstoken_keys_update(const char *payload, size_t len)
{
	json_t *msg, *keys, *k;
	struct at_key *nk;
	const char *kid, *alg, *errstr;
	enum jws_alg a;
	EVP_PKEY *pkey;
	size_t i, n = 0;

	msg = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
	keys = json_object_get(json_object_get(msg, "jwks"), "keys");
	if (!json_is_array(keys) || json_array_size(keys) == 0) {
		json_decref(msg);
		return;
	}
	nk = xcalloc(json_array_size(keys), sizeof(*nk));
	json_array_foreach(keys, i, k) {
		kid = json_string_value(json_object_get(k, "kid"));
		alg = json_string_value(json_object_get(k, "alg"));
		if (kid == NULL || alg == NULL ||
		    (a = jws_alg_from_name(alg)) == JWS_ALG_UNKNOWN) {
			log_warnx("access tokens: a published key without kid or alg");
			continue;
		}
		if ((pkey = jwk_to_pkey(k, 0, &errstr)) == NULL) {
			log_warnx("access tokens: key %s: %s", kid, errstr);
			continue;
		}
		if (!jws_alg_fits_key(a, pkey)) {
			log_warnx("access tokens: key %s does not fit %s", kid, alg);
			EVP_PKEY_free(pkey);
			continue;
		}
		nk[n].kid = xstrdup(kid);
		nk[n].alg = a;
		nk[n].pkey = pkey;
		n++;
	}
	json_decref(msg);
	if (n == 0) {
		free(nk);
		return;
	}
	at_keys_free(at_keys, at_nkeys);
	at_keys = nk;
	at_nkeys = n;
}

size_t
accesstoken_nkeys(void)
{
	return at_nkeys;
}

int
accesstoken_is_jws(const char *token)
{
	const char *d1 = strchr(token, '.');

	return d1 != NULL && strchr(d1 + 1, '.') != NULL;
}

/* The header of a compact JWS, decoded (not trusted: it only picks the key). */
static json_t *
at_header(const char *token)
{
	unsigned char *buf;
	json_t *h;
	size_t n, len = strcspn(token, ".");

	if (token[len] != '.' || (buf = b64url_decode(token, len, &n)) == NULL)
		return NULL;
	h = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (!json_is_object(h)) {
		json_decref(h);
		return NULL;
	}
	return h;
}

/* A NumericDate claim as seconds; -1 if absent, -2 if not a number. */
static long long
at_time(const json_t *claims, const char *name)
{
	json_t *v = json_object_get(claims, name);

	if (v == NULL)
		return -1;
	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return -2;
}

enum accesstoken_status
accesstoken_verify(const char *token, const char *issuer, long long now, json_t **claims,
    const char **errstr)
{
	json_t *h, *c = NULL;
	const char *typ, *kid, *iss;
	const struct at_key *key = NULL;
	long long exp, iat, nbf;
	size_t i;

	*claims = NULL;
	if (strlen(token) > ACCESSTOKEN_MAX_LEN || !accesstoken_is_jws(token)) {
		*errstr = "not a JWT";
		return ACCESSTOKEN_INVALID;
	}
	if ((h = at_header(token)) == NULL) {
		*errstr = "malformed JWT header";
		return ACCESSTOKEN_INVALID;
	}
	typ = json_string_value(json_object_get(h, "typ"));
	kid = json_string_value(json_object_get(h, "kid"));
	/* at+jwt (RFC 9068), or JWT where access_token_typ says so (for verifiers that
	 * take nothing else); either way the claims below set it apart from an ID token,
	 * which has neither jti nor client_id. */
	if (typ == NULL || (strcmp(typ, "at+jwt") != 0 && strcmp(typ, "JWT") != 0)) {
		json_decref(h);
		*errstr = "not an access token (typ)";
		return ACCESSTOKEN_INVALID;
	}
	for (i = 0; kid != NULL && i < at_nkeys; i++)
		if (strcmp(at_keys[i].kid, kid) == 0) {
			key = &at_keys[i];
			break;
		}
	json_decref(h);
	if (key == NULL) {
		*errstr = "unknown key (not one of ours)";
		return ACCESSTOKEN_INVALID;
	}
	if (jws_verify(token, key->pkey, key->alg, NULL, &c, errstr) == -1)
		return ACCESSTOKEN_INVALID;
	iss = json_string_value(json_object_get(c, "iss"));
	if (iss == NULL || strcmp(iss, issuer) != 0) {
		*errstr = "another issuer";
		goto invalid;
	}
	if (!json_is_string(json_object_get(c, "jti")) ||
	    !json_is_string(json_object_get(c, "sub")) ||
	    !json_is_string(json_object_get(c, "client_id"))) {
		*errstr = "no jti, sub or client_id";
		goto invalid;
	}
	exp = at_time(c, "exp");
	iat = at_time(c, "iat");
	nbf = at_time(c, "nbf");
	if (exp < 0 || iat == -2 || nbf == -2) {
		*errstr = "malformed exp, iat or nbf";
		goto invalid;
	}
	if (exp <= now || iat > now + ACCESSTOKEN_SKEW_S ||
	    nbf > now + ACCESSTOKEN_SKEW_S) {
		json_decref(c);
		*errstr = "expired or not yet valid";
		return ACCESSTOKEN_EXPIRED;
	}
	*claims = c;
	return ACCESSTOKEN_OK;
invalid:
	json_decref(c);
	return ACCESSTOKEN_INVALID;
}
