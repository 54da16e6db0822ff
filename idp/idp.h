/* idp.h: what idp's processes share: the configuration and the process roles. */
#ifndef IDP_IDP_H
#define IDP_IDP_H

#include <stddef.h>

#include "config.h"

/* The configuration, read once by the parent (idp -c FILE; IDP_<KEY> overrides). */
struct idp_config {
	char	*issuer;			/* https://idp.example.com (no trailing slash) */
	char	*listen;			/* host:port */
	char	*database;			/* libpq conninfo or URI ("" = libpq defaults) */
	char	*key_encryption_key_file;	/* 32 bytes, mode 0600 or stricter */
	long	 workers;			/* 0 = one per core */
	char	*signing_alg;			/* RS256, PS256, ES256, EdDSA */
	char	*access_token_typ;		/* the JWS typ of access tokens */
	long	 access_token_ttl;		/* seconds */
	long	 key_rotation_interval;		/* seconds a key signs */
	long	 jwks_max_age;			/* Cache-Control max-age of the JWKS */
	long	 key_publish_margin;		/* extra seconds a next key is published */
	char	*log_level;			/* error, warn, info, debug */
	long	 argon2_threads;		/* hashing threads per worker; 0: cores/workers */
	long	 argon2_queue;			/* waiting hashes per worker before 503 */
	char	*cors_origins;			/* space-separated origins, "" = none */
	/* The browser side (h_authorize.c, h_login.c, session.c). */
	long	 session_idle_ttl;		/* seconds a session lives unused */
	long	 session_absolute_ttl;		/* seconds a session lives at most */
	long	 auth_code_ttl;			/* seconds an authorization code lives */
	int	 allow_plain_pkce;		/* PKCE "plain" for clients that allow it */
	/* The token side (h_token.c). */
	long	 refresh_token_ttl;		/* seconds a refresh token lives */
	long	 refresh_reuse_grace;		/* seconds a rotated refresh token still
						 * gets its successor (concurrency) */
	long	 id_token_ttl;			/* seconds; 0 in the file: access_token_ttl */
};

extern const struct config_key	idp_config_keys[];
extern const size_t		idp_config_nkeys;

/* Load and check the configuration (defaults, file, IDP_* environment). Checks what the
 * table cannot: issuer is an absolute http(s) URL without a trailing slash, listen is
 * host:port, signing_alg is supported, key_rotation_interval >= jwks_max_age +
 * key_publish_margin, access_token_ttl > 0, id_token_ttl <= access_token_ttl
 * (0 becomes access_token_ttl). -1 with a message in err on error. */
int	idp_config_load(struct idp_config *c, const char *path, char *err, size_t errlen);
void	idp_config_free(struct idp_config *c);

/*
 * Key schedule (the signer runs it; every instance may, one at a time under
 * pg_try_advisory_lock(IDP_ROTATION_LOCK)):
 *
 *   - There is always one active key (signing) and one next key (published only).
 *   - A next key becomes active when the active key has signed for
 *     key_rotation_interval AND the next key has been published for at least
 *     jwks_max_age + key_publish_margin. The old active key becomes retired.
 *   - A retired key stays published until access_token_ttl + jwks_max_age +
 *     key_publish_margin after it stopped signing, then it is deleted.
 *   - On an empty table (first start) the first key is active at once (nobody can
 *     have cached a JWKS yet) and a next key is made beside it.
 *   - idpctl keys rotate inserts a request: the next key becomes active as soon as it
 *     has been published long enough (never earlier), and a new next key is made.
 *     With --emergency, the active key is withdrawn (out of the JWKS at once) and the
 *     next key signs at once: relying parties that cached the old JWKS may fail to
 *     verify new tokens for up to jwks_max_age, which is the price of the emergency.
 */
#define IDP_ROTATION_LOCK	726175	/* pg advisory lock key */

#endif
