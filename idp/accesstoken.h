/* accesstoken.h: a worker's check of idp's own JWT access tokens (RFC 9068) against
 * the public keys of the signer's last IPC_KEYS: no database, no signer. */
#ifndef IDP_ACCESSTOKEN_H
#define IDP_ACCESSTOKEN_H

#include <stddef.h>

#include <jansson.h>

/* Longest token looked at; a longer one is not ours. */
#define ACCESSTOKEN_MAX_LEN	8192
/* Seconds of clock skew allowed for iat and nbf in the future. */
#define ACCESSTOKEN_SKEW_S	60

/* Take the public keys of an IPC_KEYS payload (JSON, len bytes): every key in its
 * JWKS, published or retired, verifies. A payload without usable keys leaves the
 * previous set. */
void	accesstoken_keys_update(const char *payload, size_t len);
/* Keys in the set. */
size_t	accesstoken_nkeys(void);

enum accesstoken_status {
	ACCESSTOKEN_OK = 0,
	ACCESSTOKEN_INVALID,	/* not an access token of ours: malformed, another typ,
				 * an unknown kid (foreign), a bad signature, another
				 * iss, no jti */
	ACCESSTOKEN_EXPIRED,	/* ours, but past exp (or not yet valid) */
};

/* Check token: a compact JWS whose header has typ "at+jwt" and the kid of one of our
 * keys, the signature by that key under its alg, then the claims: iss equal to issuer,
 * exp after now (epoch seconds), iat and nbf (when present) not after now + skew, a
 * string jti and sub. With ACCESSTOKEN_OK, *claims gets a new reference to the claims
 * (caller decrefs); otherwise *claims is NULL and *errstr says why (static, safe to
 * log). Whether the jti was revoked is the caller's to ask (revocation.h). */
enum accesstoken_status accesstoken_verify(const char *token, const char *issuer,
	    long long now, json_t **claims, const char **errstr);

/* 1 if token looks like a compact JWS (two dots), 0 otherwise: a cheap way to tell an
 * access token from a refresh token, which has no dot. */
int	accesstoken_is_jws(const char *token);

#endif
