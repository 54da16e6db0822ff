/* h_revoke.c: POST /revoke, token revocation (RFC 7009), for clients that
 * authenticate as at /token (public clients by their client_id).
 *
 * A refresh token revokes its whole family: every refresh token descended from the
 * same authorization, and the access tokens issued with them (RFC 7009 section 2.1:
 * the grant goes). A JWT access token is revoked by its jti: a row in revoked_jtis
 * until the token's own exp, whose trigger NOTIFYs every worker (revocation.c), so
 * /introspect and /userinfo everywhere refuse it within a second. A client revokes only
 * its own tokens; an unknown, expired, foreign or another client's token is answered
 * 200 like any other (section 2.2: the client cannot tell, and need not), as is a
 * token_type_hint we do not know. The database must have the revocation before the
 * 200: otherwise 503, and the client tries again.
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
revoke_ok(struct clientauth_tokreq *x)
{
	wreq_reply_empty(clientauth_tokreq_end(x), 200);
}

static void
revoke_done(enum store_status s, const PGresult *res, void *arg)
{
	struct clientauth_tokreq *x = arg;
	struct wreq *r = x->r;

	x->q = NULL;
	switch (s) {
	case STORE_OK:
		if (PQntuples(res) == 1)
			log_info("%s: client %s revoked a refresh token: %s families and "
			    "%s access tokens", r->id, x->c->id, PQgetvalue(res, 0, 0),
			    PQgetvalue(res, 0, 1));
		else
			log_info("%s: client %s revoked an access token", r->id,
			    x->c->id);
		revoke_ok(x);
		break;
	case STORE_CANCELLED:
		wreq_reply_empty(clientauth_tokreq_end(x), 499);
		break;
	default:
		clientauth_tokreq_unavailable(x, "the database is unavailable");
		break;
	}
}

static void
revoke_access(struct clientauth_tokreq *x)
{
	const char *errstr, *client, *jti, *params[3];
	long long now = (long long)time(NULL), exp;
	char expbuf[32];

	if (accesstoken_verify(x->token, worker_conf(x->w)->issuer, now, &x->claims,
	    &errstr) != ACCESSTOKEN_OK) {
		log_debug("%s: revoke: nothing to do: %s", x->r->id, errstr);
		revoke_ok(x);
		return;
	}
	client = json_string_value(json_object_get(x->claims, "client_id"));
	jti = json_string_value(json_object_get(x->claims, "jti"));
	exp = (long long)json_integer_value(json_object_get(x->claims, "exp"));
	if (client == NULL || strcmp(client, x->c->id) != 0 ||
	    strlen(jti) > REVOCATION_MAX_JTI) {
		log_debug("%s: revoke: another client's token", x->r->id);
		revoke_ok(x);
		return;
	}
	/* This worker knows at once; the others by NOTIFY. */
	revocation_add(worker_revocation(x->w), jti, exp);
	snprintf(expbuf, sizeof(expbuf), "%lld", exp);
	params[0] = jti;
	params[1] = client;
	params[2] = expbuf;
	if ((x->q = store_exec(worker_store(x->w), STORE_TK_JTI_REVOKE, 3, params,
	    revoke_done, x)) == NULL)
		clientauth_tokreq_unavailable(x, "the database is unavailable");
}

static void
revoke_refresh(struct clientauth_tokreq *x)
{
	char hash[SECRET_SHA256_HEX];
	const char *params[3] = { hash, x->c->id, "revoked" };

	secret_sha256_hex(x->token, hash);
	if ((x->q = store_exec(worker_store(x->w), STORE_TK_REFRESH_REVOKE, 3, params,
	    revoke_done, x)) == NULL)
		clientauth_tokreq_unavailable(x, "the database is unavailable");
}

/* Public clients too, by their client_id: they hold refresh tokens as well. */
static const struct clientauth_tokops revoke_ops = {
	.flags = CLIENTAUTH_ALLOW_PUBLIC,
	.access = revoke_access,
	.refresh = revoke_refresh,
	.other = revoke_ok,
};

void
h_revoke(struct wreq *r)
{
	clientauth_tokreq_start(r, &revoke_ops);
}
