/* jws.h: JWS compact serialization (RFC 7515) signing and verification with OpenSSL 3 EVP. */
#ifndef IDP_JWS_H
#define IDP_JWS_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

enum jws_alg {
	JWS_ALG_UNKNOWN = 0,
	JWS_ALG_RS256, JWS_ALG_RS384, JWS_ALG_RS512,
	JWS_ALG_PS256, JWS_ALG_PS384, JWS_ALG_PS512,
	JWS_ALG_ES256, JWS_ALG_ES384, JWS_ALG_ES512,
	JWS_ALG_EDDSA,
};

/* "RS256" ... "EdDSA"; NULL for JWS_ALG_UNKNOWN. */
const char	*jws_alg_name(enum jws_alg);
/* The alg named exactly (case-sensitive) or JWS_ALG_UNKNOWN ("none" and HS* included). */
enum jws_alg	 jws_alg_from_name(const char *);
/* 1 if the key's type (and curve) is the one alg needs, 0 otherwise. */
int		 jws_alg_fits_key(enum jws_alg, EVP_PKEY *);

/* Sign `in` (the JWS signing input). ECDSA signatures come out in JOSE's raw R||S form.
 * On success returns 0 and a new buffer in *sig (caller frees) of *siglen bytes;
 * on failure -1 and a static *errstr. */
int	jws_sign_raw(EVP_PKEY *key, enum jws_alg alg, const void *in, size_t inlen,
	    unsigned char **sig, size_t *siglen, const char **errstr);

/* Serialize header and payload compactly (keys in insertion order), sign, and return
 * the new compact JWS (caller frees), or NULL with *errstr set. The header's "alg" must
 * name alg ("Ed25519", RFC 9864, is accepted for JWS_ALG_EDDSA). */
char	*jws_sign(EVP_PKEY *key, enum jws_alg alg, const json_t *header,
	    const json_t *payload, const char **errstr);

/* Verify a compact JWS with `key`. The header's alg must equal `alg` (never "none").
 * On success returns 0 and, when the pointers are not NULL, new references to the
 * decoded header and payload objects; on failure -1 with a static *errstr. */
int	jws_verify(const char *compact, EVP_PKEY *key, enum jws_alg alg,
	    json_t **header, json_t **payload, const char **errstr);

/* Split and decode a compact JWS without checking the signature. Same ownership and
 * errors as jws_verify. For reading hints (id_token_hint, kid), never for trust. */
int	jws_decode_unverified(const char *compact, json_t **header, json_t **payload,
	    const char **errstr);

#endif
