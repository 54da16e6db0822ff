/* token.c: JWT and token-response shapes shared by mockidp and idp. */
#include <string.h>

#include <openssl/evp.h>

#include "b64url.h"
#include "token.h"

json_t *
token_header(const char *typ, const char *kid, const char *alg)
{
	json_t *h = json_object();

	json_object_set_new(h, "typ", json_string(typ));
	if (kid != NULL)
		json_object_set_new(h, "kid", json_string(kid));
	json_object_set_new(h, "alg", json_string(alg));
	return h;
}

json_t *
token_claims(const char *iss, long long iat, long long ttl, long nbf_skew)
{
	json_t *c = json_object();

	json_object_set_new(c, "iss", json_string(iss));
	json_object_set_new(c, "iat", json_integer(iat));
	json_object_set_new(c, "exp", json_integer(iat + ttl));
	if (nbf_skew >= 0)
		json_object_set_new(c, "nbf", json_integer(iat - nbf_skew));
	return c;
}

void
token_claims_merge(json_t *claims, const json_t *overrides)
{
	const char *name;
	json_t *v;

	if (!json_is_object(overrides))
		return;
	json_object_foreach((json_t *)overrides, name, v) {
		if (json_is_null(v))
			json_object_del(claims, name);
		else
			json_object_set(claims, name, v);
	}
}

char *
token_half_hash(enum jws_alg alg, const char *token)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	const char *mdname;
	size_t mdlen = 0;

	switch (alg) {
	case JWS_ALG_RS256: case JWS_ALG_PS256: case JWS_ALG_ES256:
		mdname = "SHA256";
		break;
	case JWS_ALG_RS384: case JWS_ALG_PS384: case JWS_ALG_ES384:
		mdname = "SHA384";
		break;
	case JWS_ALG_RS512: case JWS_ALG_PS512: case JWS_ALG_ES512:
	case JWS_ALG_EDDSA:	/* Ed25519: SHA-512, as OpenID Connect registries say */
		mdname = "SHA512";
		break;
	default:
		return NULL;
	}
	if (!EVP_Q_digest(NULL, mdname, NULL, token, strlen(token), md, &mdlen))
		return NULL;
	return b64url_encode(md, mdlen / 2);
}

json_t *
token_response(const char *access_token, long long expires_in)
{
	json_t *r = json_object();

	json_object_set_new(r, "access_token", json_string(access_token));
	json_object_set_new(r, "token_type", json_string("Bearer"));
	json_object_set_new(r, "expires_in", json_integer(expires_in));
	return r;
}
