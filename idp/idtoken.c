/* idtoken.c: ID token claims (OpenID Connect Core 1.0 sections 2, 3.1.3.6 and 5.4)
 * and the user claims /userinfo shares with them.
 *
 * Claims by scope: openid gives sub (and makes an ID token at all); profile gives name
 * and preferred_username; email gives email and email_verified. roles, the user's
 * roles, is in every ID token and /userinfo answer: relying parties authorize by it.
 * Only claims with a value are sent (OIDC Core section 5.3.2: a claim without a value
 * is omitted, not null).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "b64url.h"
#include "idtoken.h"
#include "store.h"
#include "xalloc.h"

int
idtoken_user_read(struct idtoken_user *u, const char *const *values, const char **errstr)
{
	json_t *roles;
	size_t i;

	memset(u, 0, sizeof(*u));
	if (values[STORE_UC_ID] == NULL || values[STORE_UC_USERNAME] == NULL) {
		*errstr = "user row without id or username";
		return -1;
	}
	roles = values[STORE_UC_ROLES] != NULL ?
	    json_loads(values[STORE_UC_ROLES], JSON_REJECT_DUPLICATES, NULL) :
	    json_array();
	if (!json_is_array(roles)) {
		json_decref(roles);
		*errstr = "user row with malformed roles";
		return -1;
	}
	for (i = 0; i < json_array_size(roles); i++)
		if (!json_is_string(json_array_get(roles, i))) {
			json_decref(roles);
			*errstr = "user row with malformed roles";
			return -1;
		}
	u->id = xstrdup(values[STORE_UC_ID]);
	u->username = xstrdup(values[STORE_UC_USERNAME]);
	if (values[STORE_UC_NAME] != NULL && *values[STORE_UC_NAME] != '\0')
		u->name = xstrdup(values[STORE_UC_NAME]);
	if (values[STORE_UC_EMAIL] != NULL && *values[STORE_UC_EMAIL] != '\0')
		u->email = xstrdup(values[STORE_UC_EMAIL]);
	u->email_verified = values[STORE_UC_EMAIL_VERIFIED] != NULL &&
	    values[STORE_UC_EMAIL_VERIFIED][0] == 't';
	u->disabled = values[STORE_UC_DISABLED] != NULL &&
	    values[STORE_UC_DISABLED][0] == 't';
	u->roles = roles;
	return 0;
}

void
idtoken_user_clear(struct idtoken_user *u)
{
	free(u->id);
	free(u->username);
	free(u->name);
	free(u->email);
	json_decref(u->roles);
	memset(u, 0, sizeof(*u));
}

int
idtoken_scope_has(const char *scope, const char *word)
{
	size_t wl = strlen(word), n;
	const char *p;

	if (scope == NULL)
		return 0;
	for (p = scope; *p != '\0'; p += n) {
		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n == wl && strncmp(p, word, n) == 0)
			return 1;
	}
	return 0;
}

void
idtoken_user_claims(json_t *claims, const struct idtoken_user *u, const char *scope)
{
	if (idtoken_scope_has(scope, "profile")) {
		if (u->name != NULL)
			json_object_set_new(claims, "name", json_string(u->name));
		json_object_set_new(claims, "preferred_username",
		    json_string(u->username));
	}
	if (idtoken_scope_has(scope, "email") && u->email != NULL) {
		json_object_set_new(claims, "email", json_string(u->email));
		json_object_set_new(claims, "email_verified",
		    json_boolean(u->email_verified));
	}
	json_object_set_new(claims, "roles", u->roles != NULL ? json_deep_copy(u->roles) :
	    json_array());
}

json_t *
idtoken_claims(const char *issuer, const struct idtoken_user *u, const char *client_id,
    const char *scope, long long iat, long long ttl, long long auth_time,
    const char *nonce, const char *at_hash)
{
	json_t *c = json_object();

	json_object_set_new(c, "iss", json_string(issuer));
	json_object_set_new(c, "sub", json_string(u->id));
	json_object_set_new(c, "aud", json_string(client_id));
	json_object_set_new(c, "exp", json_integer(iat + ttl));
	json_object_set_new(c, "iat", json_integer(iat));
	json_object_set_new(c, "auth_time", json_integer(auth_time));
	if (nonce != NULL && *nonce != '\0')
		json_object_set_new(c, "nonce", json_string(nonce));
	if (at_hash != NULL)
		json_object_set_new(c, "at_hash", json_string(at_hash));
	idtoken_user_claims(c, u, scope);
	return c;
}

enum jws_alg
idtoken_jws_alg(const char *jws)
{
	unsigned char *buf;
	enum jws_alg alg = JWS_ALG_UNKNOWN;
	json_t *h;
	size_t n, len = strcspn(jws, ".");

	if (jws[len] != '.' || (buf = b64url_decode(jws, len, &n)) == NULL)
		return JWS_ALG_UNKNOWN;
	h = json_loadb((const char *)buf, n, 0, NULL);
	free(buf);
	if (json_is_string(json_object_get(h, "alg")))
		alg = jws_alg_from_name(json_string_value(json_object_get(h, "alg")));
	json_decref(h);
	return alg;
}
