/* conf.c: idp's configuration keys, defaults and the checks a table cannot express. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idp.h"
#include "jws.h"

#define K(name, type, field, def, min, max) \
	{ name, type, offsetof(struct idp_config, field), def, min, max }

const struct config_key idp_config_keys[] = {
	K("issuer", CONFIG_STRING, issuer, NULL, 0, 0),
	K("listen", CONFIG_STRING, listen, "127.0.0.1:8080", 0, 0),
	K("database", CONFIG_STRING, database, "", 0, 0),
	K("key_encryption_key_file", CONFIG_STRING, key_encryption_key_file, NULL, 0, 0),
	K("workers", CONFIG_INT, workers, "0", 0, 64),
	K("signing_alg", CONFIG_STRING, signing_alg, "RS256", 0, 0),
	K("access_token_typ", CONFIG_STRING, access_token_typ, "at+jwt", 0, 0),
	K("access_token_ttl", CONFIG_DURATION, access_token_ttl, "15m", 1, 86400),
	K("key_rotation_interval", CONFIG_DURATION, key_rotation_interval, "7d", 2,
	    365L * 86400),
	K("jwks_max_age", CONFIG_DURATION, jwks_max_age, "1h", 0, 86400),
	K("key_publish_margin", CONFIG_DURATION, key_publish_margin, "1m", 0, 86400),
	K("log_level", CONFIG_STRING, log_level, "info", 0, 0),
	K("argon2_threads", CONFIG_INT, argon2_threads, "0", 0, 64),
	K("argon2_queue", CONFIG_INT, argon2_queue, "64", 1, 100000),
	K("cors_origins", CONFIG_STRING, cors_origins, "", 0, 0),
	K("session_idle_ttl", CONFIG_DURATION, session_idle_ttl, "30m", 60, 30L * 86400),
	K("session_absolute_ttl", CONFIG_DURATION, session_absolute_ttl, "12h", 60,
	    365L * 86400),
	K("auth_code_ttl", CONFIG_DURATION, auth_code_ttl, "60s", 5, 600),
	K("allow_plain_pkce", CONFIG_BOOL, allow_plain_pkce, "no", 0, 0),
	/* The token side (h_token.c): "0" for id_token_ttl is access_token_ttl. */
	K("refresh_token_ttl", CONFIG_DURATION, refresh_token_ttl, "30d", 60,
	    365L * 86400),
	K("refresh_reuse_grace", CONFIG_DURATION, refresh_reuse_grace, "10s", 0, 300),
	K("id_token_ttl", CONFIG_DURATION, id_token_ttl, "0", 0, 86400),
};
const size_t idp_config_nkeys = sizeof(idp_config_keys) / sizeof(idp_config_keys[0]);

static int	idp_config_check(struct idp_config *, char *, size_t);

int
idp_config_load(struct idp_config *c, const char *path, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (config_load(idp_config_keys, idp_config_nkeys, c, path, "IDP_", err,
	    errlen) == -1)
		return -1;
	if (idp_config_check(c, err, errlen) == -1) {
		idp_config_free(c);
		return -1;
	}
	return 0;
}

/* What the key table cannot express; -1 with a message in err. */
static int
idp_config_check(struct idp_config *c, char *err, size_t errlen)
{
	enum jws_alg alg;
	const char *colon;
	size_t n;

	if (c->issuer == NULL || (strncmp(c->issuer, "https://", 8) != 0 &&
	    strncmp(c->issuer, "http://", 7) != 0) || strchr(c->issuer, '?') != NULL ||
	    strchr(c->issuer, '#') != NULL) {
		snprintf(err, errlen, "issuer must be set to an absolute http(s) URL "
		    "without query or fragment");
		return -1;
	}
	n = strlen(c->issuer);
	if (c->issuer[n - 1] == '/') {
		snprintf(err, errlen, "issuer must not end with '/'");
		return -1;
	}
	if ((colon = strrchr(c->listen, ':')) == NULL || colon == c->listen ||
	    colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		snprintf(err, errlen, "listen must be host:port, not '%s'", c->listen);
		return -1;
	}
	if (c->key_encryption_key_file == NULL || *c->key_encryption_key_file == '\0') {
		snprintf(err, errlen, "key_encryption_key_file must be set "
		    "(make one with: idpctl kek generate FILE)");
		return -1;
	}
	alg = jws_alg_from_name(c->signing_alg);
	if (alg != JWS_ALG_RS256 && alg != JWS_ALG_PS256 && alg != JWS_ALG_ES256 &&
	    alg != JWS_ALG_EDDSA) {
		snprintf(err, errlen, "signing_alg must be RS256, PS256, ES256 or EdDSA, "
		    "not '%s'", c->signing_alg);
		return -1;
	}
	if (strcmp(c->access_token_typ, "at+jwt") != 0 &&
	    strcmp(c->access_token_typ, "JWT") != 0) {
		snprintf(err, errlen, "access_token_typ must be at+jwt or JWT, not '%s'",
		    c->access_token_typ);
		return -1;
	}
	if (c->key_rotation_interval < c->jwks_max_age + c->key_publish_margin) {
		snprintf(err, errlen, "key_rotation_interval (%lds) must be at least "
		    "jwks_max_age + key_publish_margin (%lds), so that the next key is "
		    "published long enough before it signs", c->key_rotation_interval,
		    c->jwks_max_age + c->key_publish_margin);
		return -1;
	}
	if (c->id_token_ttl == 0)
		c->id_token_ttl = c->access_token_ttl;
	if (c->id_token_ttl > c->access_token_ttl) {
		/* A retired key stays published for access_token_ttl (idp.h): a
		 * longer-lived ID token could outlive its key in the JWKS. */
		snprintf(err, errlen, "id_token_ttl (%lds) must not exceed "
		    "access_token_ttl (%lds)", c->id_token_ttl, c->access_token_ttl);
		return -1;
	}
	if (strcmp(c->log_level, "error") != 0 && strcmp(c->log_level, "warn") != 0 &&
	    strcmp(c->log_level, "info") != 0 && strcmp(c->log_level, "debug") != 0) {
		snprintf(err, errlen, "log_level must be error, warn, info or debug");
		return -1;
	}
	return 0;
}

void
idp_config_free(struct idp_config *c)
{
	config_free(idp_config_keys, idp_config_nkeys, c);
}
