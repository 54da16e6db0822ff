/* idtoken.h: the claims of ID tokens (OpenID Connect Core 1.0 section 2) and of
 * /userinfo: who the user is, by scope. */
#ifndef IDP_IDTOKEN_H
#define IDP_IDTOKEN_H

#include <jansson.h>

#include "jws.h"

/* A user as the token side reads it (the STORE_UC_* columns). */
struct idtoken_user {
	char	*id;		/* the OIDC sub */
	char	*username;
	char	*name;		/* NULL when none */
	char	*email;		/* NULL when none */
	int	 email_verified;
	json_t	*roles;		/* array of strings, never NULL once read */
	int	 disabled;
};

/* Fill u from the text values of the STORE_UC_* columns (values[i] NULL for SQL NULL).
 * Returns 0, or -1 + *errstr (u cleared) for a row that is not a user. */
int	idtoken_user_read(struct idtoken_user *u, const char *const *values,
	    const char **errstr);
/* Free what u holds and zero it. */
void	idtoken_user_clear(struct idtoken_user *u);

/* 1 if the space-separated scope has word. */
int	idtoken_scope_has(const char *scope, const char *word);

/* Add the claims about u that scope allows to claims: with profile, name (when set)
 * and preferred_username; with email, email and email_verified (when set); always
 * roles. sub is not added. */
void	idtoken_user_claims(json_t *claims, const struct idtoken_user *u,
	    const char *scope);

/* The claims of an ID token, in the order of OIDC Core section 2: iss, sub (u->id),
 * aud (client_id), exp (iat + ttl), iat, auth_time, nonce (when not NULL or ""),
 * at_hash (when not NULL), then the user's claims by scope (idtoken_user_claims).
 * aud is the client alone, so azp, which OIDC Core asks for only when there are other
 * audiences, is not needed. Returns a new object. */
json_t	*idtoken_claims(const char *issuer, const struct idtoken_user *u,
	    const char *client_id, const char *scope, long long iat, long long ttl,
	    long long auth_time, const char *nonce, const char *at_hash);

/* The alg named in the header of a compact JWS that we signed (not a check of
 * anything: for at_hash, which depends on the alg of the ID token's key), or
 * JWS_ALG_UNKNOWN. */
enum jws_alg idtoken_jws_alg(const char *jws);

#endif
