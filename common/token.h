/* token.h: the shapes of JWTs and token responses, shared so mockidp and idp mint the same. */
#ifndef IDP_TOKEN_H
#define IDP_TOKEN_H

#include <jansson.h>

#include "jws.h"

/* A new JOSE header {"typ": typ, "kid": kid, "alg": alg} in that order (kid omitted
 * when NULL). alg is a string so that aliases ("Ed25519") can be kept verbatim. */
json_t	*token_header(const char *typ, const char *kid, const char *alg);
/* A new claims object starting {"iss", "iat", "exp"} and, when nbf_skew >= 0,
 * "nbf" = iat - nbf_skew. */
json_t	*token_claims(const char *iss, long long iat, long long ttl, long nbf_skew);
/* Merge overrides into claims: each member is set (replacing an existing one in its
 * place), and a member whose value is JSON null removes the claim. */
void	 token_claims_merge(json_t *claims, const json_t *overrides);
/* OIDC at_hash / c_hash: base64url of the left half of the alg's hash of the ASCII
 * token. Returns a new string or NULL for an unknown alg. */
char	*token_half_hash(enum jws_alg alg, const char *token);
/* The start of a token response {"access_token", "token_type": "Bearer",
 * "expires_in"}; the caller appends what else the grant gives. */
json_t	*token_response(const char *access_token, long long expires_in);

#endif
