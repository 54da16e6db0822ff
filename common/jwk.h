/* jwk.h: JSON Web Keys (RFC 7517/7518/8037): export, import, generation, thumbprints (RFC 7638). */
#ifndef IDP_JWK_H
#define IDP_JWK_H

#include <jansson.h>
#include <openssl/evp.h>

#include "jws.h"

/* Generate a key pair for alg: RSA 2048 / e=65537 for RS* and PS*, the alg's curve for
 * ES*, Ed25519 for EdDSA. Returns a new key (caller EVP_PKEY_free) or NULL + *errstr. */
EVP_PKEY	*jwk_generate(enum jws_alg alg, const char **errstr);

/* Export a key as a new JWK object, members in the order oauth2-mock-server uses:
 * RSA kty,n,e[,d,p,q,dp,dq,qi]; EC kty,x,y,crv[,d]; OKP crv[,d],x,kty.
 * Private members only when include_private and the key has them. NULL + *errstr on error. */
json_t		*jwk_from_pkey(EVP_PKEY *key, int include_private, const char **errstr);

/* Build a key from a JWK object (RSA, EC P-256/384/521, OKP Ed25519). With need_private,
 * a JWK without private members is an error. Returns a new key or NULL + *errstr. */
EVP_PKEY	*jwk_to_pkey(const json_t *jwk, int need_private, const char **errstr);

/* A new copy of jwk without private members (d p q dp dq qi oth k). */
json_t		*jwk_public(const json_t *jwk);

/* Read a file holding one JSON object (duplicate keys rejected). Returns a new
 * reference or NULL + *errstr ("cannot open", "not JSON", "not a JSON object"). */
json_t		*jwk_load_file(const char *path, const char **errstr);

/* RFC 7638 thumbprint: base64url(SHA-256(canonical required members)). Returns a new
 * string (caller frees) or NULL + *errstr for an unsupported or incomplete key. */
char		*jwk_thumbprint(const json_t *jwk, const char **errstr);

#endif
