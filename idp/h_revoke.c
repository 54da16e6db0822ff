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
#include "xalloc.h"

#define REVOKE_REFRESH_LEN	43

struct revoke_req {
	struct wreq		*r;
	struct worker		*w;
	struct form		 form;
	const char		*token;		/* owned by form */
	struct clientauth	*auth;
	struct client_entry	*ce;
	const struct client	*c;
	json_t			*claims;
	struct store_query	*q;
};

static void
revoke_free(struct revoke_req *x)
{
	clientauth_form_free(&x->form);
	clients_release(x->ce);
	json_decref(x->claims);
	x->r->hctx = NULL;
	free(x);
}

static void
revoke_ok(struct revoke_req *x)
{
	struct wreq *r = x->r;

	revoke_free(x);
	wreq_reply_empty(r, 200);
}

static void
revoke_error(struct revoke_req *x, int status, const char *error,
    const char *description)
{
	struct wreq *r = x->r;

	revoke_free(x);
	if (status == 503)
		wreq_header(r, "Retry-After", "1");
	wreq_reply_error(r, status, error, description);
}

static void
revoke_cancel(struct wreq *r)
{
	struct revoke_req *x = r->hctx;

	if (x == NULL)
		return;
	if (x->auth != NULL)
		clientauth_cancel(x->auth);
	else if (x->q != NULL)
		store_cancel(x->q);
}

static void
revoke_done(enum store_status s, const PGresult *res, void *arg)
{
	struct revoke_req *x = arg;
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
		revoke_free(x);
		wreq_reply_empty(r, 499);
		break;
	default:
		revoke_error(x, 503, "temporarily_unavailable",
		    "the database is unavailable");
		break;
	}
}

static void
revoke_access(struct revoke_req *x)
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
		revoke_error(x, 503, "temporarily_unavailable",
		    "the database is unavailable");
}

static void
revoke_refresh(struct revoke_req *x)
{
	char hash[SECRET_SHA256_HEX];
	const char *params[3] = { hash, x->c->id, "revoked" };

	secret_sha256_hex(x->token, hash);
	if ((x->q = store_exec(worker_store(x->w), STORE_TK_REFRESH_REVOKE, 3, params,
	    revoke_done, x)) == NULL)
		revoke_error(x, 503, "temporarily_unavailable",
		    "the database is unavailable");
}

static void
revoke_authenticated(const struct clientauth_result *res, void *arg)
{
	struct revoke_req *x = arg;
	struct wreq *r = x->r;
	size_t n = strlen(x->token);

	x->auth = NULL;
	if (res->status != CLIENTAUTH_OK) {
		revoke_free(x);
		clientauth_reply(r, res);
		return;
	}
	x->ce = res->ce;
	x->c = res->client;
	if (accesstoken_is_jws(x->token))
		revoke_access(x);
	else if (n == REVOKE_REFRESH_LEN && strspn(x->token,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n)
		revoke_refresh(x);
	else
		revoke_ok(x);
}

void
h_revoke(struct wreq *r)
{
	struct revoke_req *x = xcalloc(1, sizeof(*x));
	const char *errstr;

	x->r = r;
	x->w = r->w;
	r->hctx = x;
	if (clientauth_form(r, &x->form, NULL, &errstr) == -1) {
		revoke_error(x, 400, "invalid_request", errstr);
		return;
	}
	if ((x->token = clientauth_param(&x->form, "token")) == NULL) {
		revoke_error(x, 400, "invalid_request", "token is missing");
		return;
	}
	wreq_async(r, revoke_cancel);
	x->auth = clientauth_start(r, &x->form, CLIENTAUTH_ALLOW_PUBLIC,
	    revoke_authenticated, x);
}
