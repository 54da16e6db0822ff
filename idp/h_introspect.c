/* h_introspect.c: POST /introspect, token introspection (RFC 7662) for resource
 * servers and clients that authenticate as at /token (confidential clients only:
 * introspection must not be open to anyone who knows a public client's id).
 *
 * A JWT access token is checked in memory: signature by one of our published keys,
 * issuer, lifetime (accesstoken.c), and the revocation set (revocation.c), with no
 * database query while that set is in step with the database. Any authenticated
 * client may introspect any of our access tokens: that is what resource servers do.
 * A refresh token (43 characters, no dot) is looked up by its hash and is active only
 * for the client it was issued to, while unused, unexpired, unrevoked and its user
 * enabled. Anything else, expired, revoked, unknown or signed by someone else, is
 * {"active": false}, with no reason given (RFC 7662 section 2.2). token_type_hint is
 * not needed: the two kinds of token look different.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "accesstoken.h"
#include "clientauth.h"
#include "clients.h"
#include "idp.h"
#include "log.h"
#include "revocation.h"
#include "store.h"
#include "worker.h"
#include "secret.h"

static void
introspect_reply(struct clientauth_tokreq *x, json_t *body)
{
	wreq_reply_json(clientauth_tokreq_end(x), 200, body);
}

static void
introspect_inactive(struct clientauth_tokreq *x)
{
	introspect_reply(x, json_pack("{sb}", "active", 0));
}

static void
introspect_gone(struct clientauth_tokreq *x)
{
	wreq_reply_empty(clientauth_tokreq_end(x), 499);
}

/* ---- access tokens ------------------------------------------------------------- */

/* The active answer for a valid access token: its claims as RFC 7662 names them. */
static void
introspect_active_access(struct clientauth_tokreq *x)
{
	static const char *const copy[] = {
		"scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti",
		"auth_time", "roles",
	};
	json_t *out = json_object(), *v;
	size_t i;

	json_object_set_new(out, "active", json_true());
	for (i = 0; i < sizeof(copy) / sizeof(copy[0]); i++)
		if ((v = json_object_get(x->claims, copy[i])) != NULL)
			json_object_set(out, copy[i], v);
	json_object_set_new(out, "token_type", json_string("Bearer"));
	introspect_reply(x, out);
}

static void
introspect_revocation(enum revocation_answer a, void *arg)
{
	struct clientauth_tokreq *x = arg;

	x->q = NULL;
	switch (a) {
	case REVOCATION_NO:
		introspect_active_access(x);
		break;
	case REVOCATION_YES:
		introspect_inactive(x);
		break;
	case REVOCATION_CANCELLED:
		introspect_gone(x);
		break;
	default:
		clientauth_tokreq_unavailable(x, "revocations cannot be checked now");
		break;
	}
}

static void
introspect_access(struct clientauth_tokreq *x)
{
	enum revocation_answer a;
	const char *errstr;
	long long now = (long long)time(NULL);

	if (accesstoken_verify(x->token, worker_conf(x->w)->issuer, now, &x->claims,
	    &errstr) != ACCESSTOKEN_OK) {
		log_debug("%s: introspect: inactive: %s", x->r->id, errstr);
		introspect_inactive(x);
		return;
	}
	a = revocation_check(worker_revocation(x->w),
	    json_string_value(json_object_get(x->claims, "jti")), now,
	    introspect_revocation, x, &x->q);
	if (a != REVOCATION_PENDING)
		introspect_revocation(a, x);
}

/* ---- refresh tokens ------------------------------------------------------------ */

static void
introspect_refresh_found(enum store_status s, const PGresult *res, void *arg)
{
	struct clientauth_tokreq *x = arg;
	const char *client, *live, *used, *disabled;
	json_t *out;

	x->q = NULL;
	if (s == STORE_CANCELLED) {
		introspect_gone(x);
		return;
	}
	if (s != STORE_OK) {
		clientauth_tokreq_unavailable(x, "the database is unavailable");
		return;
	}
	if (PQntuples(res) != 1) {
		introspect_inactive(x);
		return;
	}
	client = PQgetvalue(res, 0, STORE_RG_CLIENT);
	live = PQgetvalue(res, 0, STORE_RG_LIVE);
	used = PQgetvalue(res, 0, STORE_RG_USED);
	disabled = PQgetvalue(res, 0, STORE_UC_DISABLED);
	if (strcmp(client, x->c->id) != 0 || live[0] != 't' || used[0] != 'f' ||
	    disabled[0] != 'f') {
		introspect_inactive(x);
		return;
	}
	out = json_object();
	json_object_set_new(out, "active", json_true());
	json_object_set_new(out, "scope", json_string(PQgetvalue(res, 0, STORE_RG_SCOPE)));
	json_object_set_new(out, "client_id", json_string(client));
	json_object_set_new(out, "username",
	    json_string(PQgetvalue(res, 0, STORE_UC_USERNAME)));
	json_object_set_new(out, "token_type", json_string("refresh_token"));
	json_object_set_new(out, "exp",
	    json_integer(strtoll(PQgetvalue(res, 0, STORE_RG_EXPIRES), NULL, 10)));
	json_object_set_new(out, "iat",
	    json_integer(strtoll(PQgetvalue(res, 0, STORE_RG_CREATED), NULL, 10)));
	json_object_set_new(out, "sub", json_string(PQgetvalue(res, 0, STORE_UC_ID)));
	json_object_set_new(out, "iss", json_string(worker_conf(x->w)->issuer));
	introspect_reply(x, out);
}

static void
introspect_refresh(struct clientauth_tokreq *x)
{
	char hash[SECRET_SHA256_HEX];
	const char *params[1] = { hash };

	secret_sha256_hex(x->token, hash);
	if ((x->q = store_exec(worker_store(x->w), STORE_TK_REFRESH_GET, 1, params,
	    introspect_refresh_found, x)) == NULL)
		clientauth_tokreq_unavailable(x, "the database is unavailable");
}

/* ---- the request --------------------------------------------------------------- */

/* Confidential clients only: see the top of the file. */
static const struct clientauth_tokops introspect_ops = {
	.flags = 0,
	.access = introspect_access,
	.refresh = introspect_refresh,
	.other = introspect_inactive,
};

void
h_introspect(struct wreq *r)
{
	clientauth_tokreq_start(r, &introspect_ops);
}
