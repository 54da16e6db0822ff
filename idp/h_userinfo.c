/* h_userinfo.c: GET and POST /userinfo (OIDC Core section 5.3): the claims about the
 * user that the access token's scopes allow.
 *
 * The access token comes as "Authorization: Bearer" or, on a POST with a form body,
 * as access_token (RFC 6750 sections 2.1 and 2.2; never both). It must be one of our
 * JWT access tokens (accesstoken.c: signature, issuer, lifetime), unrevoked
 * (revocation.c), with the openid scope, for a user who exists and is not disabled:
 * the one database query reads the user's current claims. Failures are 401 with
 * WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 section 3.1), a token
 * without openid is 403 insufficient_scope, and a request without a token is 401 with
 * a bare Bearer challenge. Replies carry Cache-Control: no-store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "accesstoken.h"
#include "clientauth.h"
#include "form.h"
#include "httputil.h"
#include "idp.h"
#include "idtoken.h"
#include "log.h"
#include "revocation.h"
#include "store.h"
#include "worker.h"
#include "xalloc.h"

struct userinfo_req {
	struct wreq		*r;
	struct worker		*w;
	struct form		 form;
	char			*token;
	json_t			*claims;	/* of the access token */
	struct store_query	*q;
};

static void
userinfo_free(struct userinfo_req *u)
{
	if (u->token != NULL) {
		sodium_memzero(u->token, strlen(u->token));
		free(u->token);
	}
	clientauth_form_free(&u->form);
	json_decref(u->claims);
	u->r->hctx = NULL;
	free(u);
}

/* End with a Bearer challenge: error NULL for a request without a token (RFC 6750
 * section 3.1: no error code then). */
static void
userinfo_challenge(struct userinfo_req *u, int status, const char *error,
    const char *description)
{
	struct wreq *r = u->r;
	const char *issuer = worker_conf(u->w)->issuer;
	char *realm, *h;
	size_t i;

	realm = xstrdup(issuer);
	for (i = 0; realm[i] != '\0'; i++)
		if (realm[i] == '"' || realm[i] == '\\')
			realm[i] = '_';
	if (error == NULL)
		h = xasprintf("Bearer realm=\"%s\"", realm);
	else if (strcmp(error, "insufficient_scope") == 0)
		h = xasprintf("Bearer realm=\"%s\", error=\"%s\", scope=\"openid\"", realm,
		    error);
	else
		h = xasprintf("Bearer realm=\"%s\", error=\"%s\", error_description=\"%s\"",
		    realm, error, description);
	wreq_header(r, "WWW-Authenticate", h);
	free(h);
	free(realm);
	userinfo_free(u);
	if (error == NULL)
		wreq_reply_error(r, status, "invalid_request", description);
	else
		wreq_reply_error(r, status, error, description);
}

static void
userinfo_unavailable(struct userinfo_req *u)
{
	struct wreq *r = u->r;

	userinfo_free(u);
	wreq_header(r, "Retry-After", "1");
	wreq_reply_error(r, 503, "temporarily_unavailable",
	    "the database is unavailable");
}

static void
userinfo_gone(struct userinfo_req *u)
{
	struct wreq *r = u->r;

	userinfo_free(u);
	wreq_reply_empty(r, 499);
}

static void
userinfo_cancel(struct wreq *r)
{
	struct userinfo_req *u = r->hctx;

	if (u != NULL && u->q != NULL)
		store_cancel(u->q);
}

static void
userinfo_user(enum store_status s, const PGresult *res, void *arg)
{
	struct userinfo_req *u = arg;
	struct idtoken_user user;
	const char *values[STORE_UC__COUNT], *errstr, *scope;
	struct wreq *r = u->r;
	json_t *out;
	int i;

	u->q = NULL;
	if (s == STORE_CANCELLED) {
		userinfo_gone(u);
		return;
	}
	if (s != STORE_OK) {
		userinfo_unavailable(u);
		return;
	}
	if (PQntuples(res) != 1) {
		userinfo_challenge(u, 401, "invalid_token", "the user does not exist");
		return;
	}
	for (i = 0; i < STORE_UC__COUNT; i++)
		values[i] = PQgetisnull(res, 0, i) ? NULL : PQgetvalue(res, 0, i);
	if (idtoken_user_read(&user, values, &errstr) == -1) {
		log_warnx("%s: %s", r->id, errstr);
		userinfo_unavailable(u);
		return;
	}
	if (user.disabled) {
		idtoken_user_clear(&user);
		userinfo_challenge(u, 401, "invalid_token", "the user is disabled");
		return;
	}
	scope = json_string_value(json_object_get(u->claims, "scope"));
	out = json_object();
	json_object_set_new(out, "sub", json_string(user.id));
	idtoken_user_claims(out, &user, scope);
	idtoken_user_clear(&user);
	userinfo_free(u);
	wreq_reply_json(r, 200, out);
}

/* The token is valid and not revoked: read the user. */
static void
userinfo_lookup(struct userinfo_req *u)
{
	const char *params[1];

	params[0] = json_string_value(json_object_get(u->claims, "sub"));
	if ((u->q = store_exec(worker_store(u->w), STORE_TK_USER_GET, 1, params,
	    userinfo_user, u)) == NULL)
		userinfo_unavailable(u);
}

static void
userinfo_revocation(enum revocation_answer a, void *arg)
{
	struct userinfo_req *u = arg;

	u->q = NULL;
	switch (a) {
	case REVOCATION_NO:
		userinfo_lookup(u);
		break;
	case REVOCATION_YES:
		userinfo_challenge(u, 401, "invalid_token", "the token was revoked");
		break;
	case REVOCATION_CANCELLED:
		userinfo_gone(u);
		break;
	default:
		userinfo_unavailable(u);
		break;
	}
}

/* The access token of the request into u->token. 0, or -1 after replying. */
static int
userinfo_token(struct userinfo_req *u)
{
	struct wreq *r = u->r;
	const char *authz = wreq_get_header(r, "Authorization"), *errstr, *v;
	size_t count = 0;

	if (r->method == EVHTTP_REQ_POST &&
	    http_content_type_has(r->req, "application/x-www-form-urlencoded")) {
		if (clientauth_form(r, &u->form, NULL, &errstr) == -1) {
			userinfo_challenge(u, 400, "invalid_request", errstr);
			return -1;
		}
		if ((v = form_get(&u->form, "access_token", &count)) != NULL && *v != '\0')
			u->token = xstrdup(v);
	}
	if (authz != NULL) {
		if (u->token != NULL) {
			userinfo_challenge(u, 400, "invalid_request",
			    "more than one way of sending the access token");
			return -1;
		}
		if ((u->token = http_bearer_token(authz)) == NULL) {
			userinfo_challenge(u, 401, NULL,
			    "the Authorization header is not Bearer");
			return -1;
		}
	}
	if (u->token == NULL || *u->token == '\0') {
		userinfo_challenge(u, 401, NULL, "no access token");
		return -1;
	}
	return 0;
}

void
h_userinfo(struct wreq *r)
{
	struct userinfo_req *u = xcalloc(1, sizeof(*u));
	const char *errstr, *scope;
	long long now = (long long)time(NULL);

	u->r = r;
	u->w = r->w;
	r->hctx = u;
	if (userinfo_token(u) == -1)
		return;
	switch (accesstoken_verify(u->token, worker_conf(u->w)->issuer, now, &u->claims,
	    &errstr)) {
	case ACCESSTOKEN_OK:
		break;
	case ACCESSTOKEN_EXPIRED:
		userinfo_challenge(u, 401, "invalid_token", "the token has expired");
		return;
	default:
		log_debug("%s: userinfo: %s", r->id, errstr);
		userinfo_challenge(u, 401, "invalid_token", "the token is not valid");
		return;
	}
	free(r->client_id);
	r->client_id = xstrdup(json_string_value(json_object_get(u->claims,
	    "client_id")) != NULL ? json_string_value(json_object_get(u->claims,
	    "client_id")) : "-");
	scope = json_string_value(json_object_get(u->claims, "scope"));
	if (!idtoken_scope_has(scope, "openid")) {
		userinfo_challenge(u, 403, "insufficient_scope",
		    "the token lacks the openid scope");
		return;
	}
	wreq_async(r, userinfo_cancel);
	switch (revocation_check(worker_revocation(u->w),
	    json_string_value(json_object_get(u->claims, "jti")), now,
	    userinfo_revocation, u, &u->q)) {
	case REVOCATION_PENDING:
		break;
	case REVOCATION_NO:
		userinfo_lookup(u);
		break;
	case REVOCATION_YES:
		userinfo_challenge(u, 401, "invalid_token", "the token was revoked");
		break;
	default:
		userinfo_unavailable(u);
		break;
	}
}
