/* h_token.c: POST /token, the token endpoint (RFC 6749 section 3.2), for the
 * client_credentials grant: client authentication (client_secret_basic,
 * client_secret_post) through the verified-secret cache, failure limiting, scope and
 * audience (RFC 8707) selection, and a JWT access token (RFC 9068) from the signer.
 *
 * The steps, each of which may wait (the request is then asynchronous, and a client
 * that goes away cancels the wait): find the client (cache, else one query); check the
 * secret against the verified-secret cache; if that does not settle it, consult the
 * failure limiter (refuse, or wait a while) and run Argon2id on the hash pool; then
 * pick scope and audience and have the claims signed. Every reply carries
 * Cache-Control: no-store (set for the route by the dispatcher).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <sodium.h>

#include "clients.h"
#include "form.h"
#include "httputil.h"
#include "idp.h"
#include "log.h"
#include "metrics.h"
#include "secret.h"
#include "signclient.h"
#include "token.h"
#include "worker.h"
#include "xalloc.h"

#define GRANT_CLIENT_CREDENTIALS	"client_credentials"
#define TOKEN_MAX_PARAMS		32
#define TOKEN_MAX_CLIENT_ID		128
#define TOKEN_MAX_SECRET		256
#define TOKEN_MAX_AUDIENCES		8

struct token_req {
	struct wreq		*r;
	struct worker		*w;
	struct form		 form;
	char			*client_id;
	char			*secret;
	size_t			 secret_len;
	const char		*scope_requested;	/* owned by form */
	const char		*aud[TOKEN_MAX_AUDIENCES];	/* owned by form */
	size_t			 naud;
	char			*scope;		/* granted */
	struct client_entry	*ce;
	/* What the request waits for, one at a time. */
	struct clients_wait	*wait;
	struct clients_verify	*verify;
	struct event		*delay;
	struct sign_req		*sign;
};

static void	token_check_secret(struct token_req *);
static void	token_authenticated(struct token_req *);

/* Random bytes for jti, drawn 4 KiB at a time: one getrandom per 256 tokens, not one
 * per token. Bytes are wiped as they are used. Filled first after the fork. */
static unsigned char	jti_pool[4096];
static size_t		jti_used = sizeof(jti_pool);

/* A new jti: 128 random bits, base64url (22 characters). */
static void
token_jti(char out[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING)])
{
	if (jti_used + 16 > sizeof(jti_pool)) {
		randombytes_buf(jti_pool, sizeof(jti_pool));
		jti_used = 0;
	}
	sodium_bin2base64(out, sodium_base64_ENCODED_LEN(16,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING), jti_pool + jti_used, 16,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(jti_pool + jti_used, 16);
	jti_used += 16;
}

static void
token_free(struct token_req *t)
{
	size_t i;

	if (t->secret != NULL) {
		sodium_memzero(t->secret, t->secret_len);
		free(t->secret);
	}
	/* The form holds the secret too (client_secret_post). */
	for (i = 0; i < t->form.nparams; i++)
		sodium_memzero(t->form.params[i].value, strlen(t->form.params[i].value));
	form_free(&t->form);
	free(t->client_id);
	free(t->scope);
	clients_release(t->ce);
	if (t->delay != NULL)
		event_free(t->delay);
	t->r->hctx = NULL;
	free(t);
}

/* The outcomes a token request can end in besides a token: only token_error turns
 * them into responses (RFC 6749 section 5.2, RFC 8707 section 2). */
enum token_err {
	TE_INVALID_REQUEST,
	TE_INVALID_CLIENT,
	TE_UNAUTHORIZED_CLIENT,
	TE_UNSUPPORTED_GRANT_TYPE,
	TE_INVALID_SCOPE,
	TE_INVALID_TARGET,
	TE_TOO_MANY_FAILURES,		/* the failure limiter refuses */
	TE_UNAVAILABLE,			/* database, signer or hash pool */
};

static const struct {
	int		 status;
	const char	*error;
} token_errors[] = {
	[TE_INVALID_REQUEST] = { 400, "invalid_request" },
	[TE_INVALID_CLIENT] = { 401, "invalid_client" },
	[TE_UNAUTHORIZED_CLIENT] = { 400, "unauthorized_client" },
	[TE_UNSUPPORTED_GRANT_TYPE] = { 400, "unsupported_grant_type" },
	[TE_INVALID_SCOPE] = { 400, "invalid_scope" },
	[TE_INVALID_TARGET] = { 400, "invalid_target" },
	[TE_TOO_MANY_FAILURES] = { 429, "temporarily_unavailable" },
	[TE_UNAVAILABLE] = { 503, "temporarily_unavailable" },
};

/* End with an error response. */
static void
token_error(struct token_req *t, enum token_err e, const char *description)
{
	struct wreq *r = t->r;

	if (e == TE_UNAVAILABLE)
		wreq_header(r, "Retry-After", "1");
	if (e == TE_INVALID_CLIENT)
		wreq_header(r, "WWW-Authenticate", worker_www_authenticate(t->w));
	token_free(t);
	wreq_reply_error(r, token_errors[e].status, token_errors[e].error, description);
}

static void
token_unavailable(struct token_req *t, const char *description)
{
	token_error(t, TE_UNAVAILABLE, description);
}

/* The client went away while we waited: the reply is only for the log. */
static void
token_gone(struct token_req *t)
{
	struct wreq *r = t->r;

	token_free(t);
	wreq_reply_empty(r, 499);
}

/* 401 invalid_client, counted against the client id and the address. */
static void
token_auth_failed(struct token_req *t, const char *why)
{
	struct wreq *r = t->r;
	uint64_t now = worker_now_ms();

	log_debug("%s: client authentication failed: %s", r->id, why);
	metrics_auth_failure(worker_metrics_slot(t->w));
	if (t->client_id != NULL)
		limiter_failure(worker_limiter_client(t->w), t->client_id, now);
	limiter_failure(worker_limiter_addr(t->w), r->addr, now);
	token_error(t, TE_INVALID_CLIENT, "client authentication failed");
}

static void
token_cancel(struct wreq *r)
{
	struct token_req *t = r->hctx;

	if (t == NULL)
		return;
	/* Each of these calls back with a "cancelled" outcome, which ends the request.
	 * Not an Argon2id run: its failure must still count against the client and the
	 * address, or closing at once would be a way around the limiter (the run costs
	 * the same either way, and the hash queue bounds how many there are). */
	if (t->wait != NULL)
		clients_get_cancel(t->wait);
	else if (t->verify != NULL)
		return;
	else if (t->sign != NULL)
		signclient_cancel(t->sign);
	else if (t->delay != NULL && evtimer_pending(t->delay, NULL)) {
		evtimer_del(t->delay);
		token_gone(t);
	}
}

/* ---- the signature ------------------------------------------------------------ */

static void
token_signed(enum sign_status s, const char *jws, size_t len, void *arg)
{
	struct token_req *t = arg;
	struct wreq *r = t->r;
	json_t *resp;

	t->sign = NULL;
	switch (s) {
	case SIGN_CANCELLED:
		token_gone(t);
		return;
	case SIGN_ERROR:
		token_unavailable(t, "the token could not be signed");
		return;
	case SIGN_UNAVAILABLE:
		token_unavailable(t, "the signer did not answer in time");
		return;
	case SIGN_OK:
		break;
	}
	resp = token_response(jws, worker_conf(t->w)->access_token_ttl);
	if (*t->scope != '\0')
		json_object_set_new(resp, "scope", json_string(t->scope));
	metrics_token_issued(worker_metrics_slot(t->w), MG_CLIENT_CREDENTIALS);
	token_free(t);
	wreq_reply_json(r, 200, resp);
}

/* ---- after authentication ------------------------------------------------------- */

static void
token_authenticated(struct token_req *t)
{
	const struct idp_config *conf = worker_conf(t->w);
	const struct client *c = clients_entry_client(t->ce);
	const char *errstr;
	json_t *claims, *aud;
	char jti[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char *s;
	long long now;

	if (!client_has_grant(c, GRANT_CLIENT_CREDENTIALS)) {
		token_error(t, TE_UNAUTHORIZED_CLIENT,
		    "the client may not use the client_credentials grant");
		return;
	}
	if (client_scope_select(c, t->scope_requested, &t->scope, &errstr) == -1) {
		token_error(t, TE_INVALID_SCOPE, errstr);
		return;
	}
	if ((aud = client_audience_select(c, t->aud, t->naud, conf->issuer,
	    &errstr)) == NULL) {
		token_error(t, TE_INVALID_TARGET, errstr);
		return;
	}

	/* RFC 9068 section 2.2, in this order. */
	now = (long long)time(NULL);
	token_jti(jti);
	claims = json_object();
	json_object_set_new(claims, "iss", json_string(conf->issuer));
	json_object_set_new(claims, "sub", json_string(c->id));
	json_object_set_new(claims, "aud", aud);
	json_object_set_new(claims, "exp", json_integer(now + conf->access_token_ttl));
	json_object_set_new(claims, "iat", json_integer(now));
	json_object_set_new(claims, "jti", json_string(jti));
	json_object_set_new(claims, "client_id", json_string(c->id));
	if (*t->scope != '\0')
		json_object_set_new(claims, "scope", json_string(t->scope));
	if ((s = json_dumps(claims, JSON_COMPACT)) == NULL)
		fatalx("token: json_dumps");
	json_decref(claims);
	t->sign = signclient_sign(worker_signer(t->w), "at+jwt", s, strlen(s),
	    token_signed, t);
	free(s);
	if (t->sign == NULL)
		token_unavailable(t, "too many tokens are waiting for the signer");
}

/* ---- client authentication -------------------------------------------------------- */

static void
token_verified(enum clients_auth a, void *arg)
{
	struct token_req *t = arg;

	t->verify = NULL;
	switch (a) {
	case CLIENTS_AUTH_CANCELLED:
		token_gone(t);
		break;
	case CLIENTS_AUTH_OK:
		/* A client that proves its secret starts afresh; its address does not. */
		limiter_forget(worker_limiter_client(t->w), t->client_id);
		token_authenticated(t);
		break;
	default:
		token_auth_failed(t, "wrong secret");
		break;
	}
}

/* After the limiter's delay (or none): settle the secret, with Argon2id if need be. */
static void
token_run_argon2(struct token_req *t)
{
	const struct client *c = clients_entry_client(t->ce);

	if (c == NULL) {
		token_auth_failed(t, "unknown client");
		return;
	}
	if (c->disabled) {
		token_auth_failed(t, "client disabled");
		return;
	}
	if (c->public) {
		token_auth_failed(t, "public client");
		return;
	}
	/* Another request may have settled this secret while we waited. */
	switch (clients_secret_cached(worker_clients(t->w), t->ce, t->secret,
	    t->secret_len)) {
	case CLIENTS_AUTH_OK:
		metrics_secret_cache(worker_metrics_slot(t->w), 1);
		token_authenticated(t);
		return;
	case CLIENTS_AUTH_BAD:
		token_auth_failed(t, "wrong secret (known)");
		return;
	default:
		break;
	}
	metrics_secret_cache(worker_metrics_slot(t->w), 0);
	t->verify = clients_secret_verify(worker_clients(t->w), t->ce, t->secret,
	    t->secret_len, token_verified, t);
	if (t->verify == NULL)
		token_unavailable(t, "too many client secrets are being verified");
}

static void
token_delay_done(evutil_socket_t fd, short what, void *arg)
{
	token_run_argon2(arg);
}

static void
token_check_secret(struct token_req *t)
{
	const struct client *c = clients_entry_client(t->ce);
	struct wreq *r = t->r;
	uint64_t now = worker_now_ms(), delay_c, delay_a, retry_c, retry_a, delay;
	enum limiter_verdict vc, va;
	struct timeval tv;
	char buf[32];

	if (c != NULL) {
		free(r->client_id);
		r->client_id = xstrdup(c->id);
	}
	/* A secret proven before costs a MAC and passes every limit: only those who
	 * do not know it are slowed down. */
	if (c != NULL && !c->disabled && !c->public &&
	    clients_secret_cached(worker_clients(t->w), t->ce, t->secret,
	    t->secret_len) == CLIENTS_AUTH_OK) {
		metrics_secret_cache(worker_metrics_slot(t->w), 1);
		token_authenticated(t);
		return;
	}
	vc = limiter_check(worker_limiter_client(t->w), t->client_id, now, &delay_c,
	    &retry_c);
	va = limiter_check(worker_limiter_addr(t->w), r->addr, now, &delay_a, &retry_a);
	if (vc == LIMIT_BLOCK || va == LIMIT_BLOCK) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)(retry_c > retry_a ?
		    retry_c : retry_a));
		wreq_header(r, "Retry-After", buf);
		log_debug("%s: too many failed client authentications from %s", r->id,
		    r->addr);
		token_error(t, TE_TOO_MANY_FAILURES,
		    "too many failed attempts; try again later");
		return;
	}
	delay = delay_c > delay_a ? delay_c : delay_a;
	if (delay == 0) {
		token_run_argon2(t);
		return;
	}
	if ((t->delay = evtimer_new(worker_base(t->w), token_delay_done, t)) == NULL)
		fatalx("token: evtimer_new");
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(t->delay, &tv);
}

static void
token_client_found(enum clients_status s, struct client_entry *ce, void *arg)
{
	struct token_req *t = arg;

	t->wait = NULL;
	switch (s) {
	case CLIENTS_OK:
		t->ce = ce;
		token_check_secret(t);
		break;
	case CLIENTS_CANCELLED:
		token_gone(t);
		break;
	default:
		token_unavailable(t, "the client database is unavailable");
		break;
	}
}

/* ---- the request ------------------------------------------------------------------- */

/* 1 if the request's media type is application/x-www-form-urlencoded (parameters such
 * as charset allowed). */
static int
token_is_form(struct wreq *r)
{
	static const char want[] = "application/x-www-form-urlencoded";
	const char *ct = wreq_get_header(r, "Content-Type");
	size_t n;

	if (ct == NULL)
		return 0;
	ct += strspn(ct, " \t");
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == sizeof(want) - 1 && strncasecmp(ct, want, n) == 0;
}

/* A form parameter; "" counts as absent (RFC 6749 section 3.1). */
static const char *
token_param(struct token_req *t, const char *name)
{
	const char *v = form_get(&t->form, name, NULL);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* The client's credentials into t->client_id and t->secret. 0, or -1 after replying. */
static int
token_credentials(struct token_req *t)
{
	const char *authz = wreq_get_header(t->r, "Authorization");
	const char *post_id = token_param(t, "client_id");
	const char *post_secret = token_param(t, "client_secret");
	char *user = NULL, *pass = NULL;
	int rc;

	if (authz != NULL) {
		rc = http_basic_credentials(authz, &user, &pass);
		if (rc != 1) {
			/* Another scheme, or malformed Basic: it is still an attempt at
			 * authentication by header, hence 401 (RFC 6749 section 5.2). */
			token_auth_failed(t, rc == 0 ? "unsupported authentication scheme" :
			    "malformed Basic credentials");
			return -1;
		}
		/* RFC 6749 section 2.3.1: both are form-urlencoded inside Basic. */
		t->client_id = form_decode(user, strlen(user), 1);
		t->secret = form_decode(pass, strlen(pass), 1);
		sodium_memzero(pass, strlen(pass));
		free(pass);
		free(user);
		if (post_secret != NULL) {
			token_error(t, TE_INVALID_REQUEST, "more than one client "
			    "authentication method (Basic and client_secret)");
			return -1;
		}
		if (t->client_id == NULL || t->secret == NULL) {
			token_auth_failed(t, "undecodable Basic credentials");
			return -1;
		}
		if (post_id != NULL && strcmp(post_id, t->client_id) != 0) {
			token_error(t, TE_INVALID_REQUEST,
			    "client_id does not match the Basic credentials");
			return -1;
		}
	} else if (post_id != NULL && post_secret != NULL) {
		t->client_id = xstrdup(post_id);
		t->secret = xstrdup(post_secret);
	} else {
		token_auth_failed(t, post_id != NULL ? "no client secret" :
		    "no client credentials");
		return -1;
	}
	t->secret_len = strlen(t->secret);
	if (*t->client_id == '\0' || strlen(t->client_id) > TOKEN_MAX_CLIENT_ID ||
	    t->secret_len == 0 || t->secret_len > TOKEN_MAX_SECRET) {
		free(t->client_id);
		t->client_id = NULL;	/* not a key worth a limiter entry */
		token_auth_failed(t, "implausible credentials");
		return -1;
	}
	return 0;
}

/* Read and check the parameters. 0, or -1 after replying. */
static int
token_params(struct token_req *t)
{
	const char *body, *errstr, *grant, *name, *v;
	size_t len, i, j, n;
	char msg[96];

	if (!token_is_form(t->r)) {
		token_error(t, TE_INVALID_REQUEST,
		    "Content-Type must be application/x-www-form-urlencoded");
		return -1;
	}
	body = http_body(t->r->req, &len);
	if (form_parse(&t->form, body != NULL ? body : "", len, &errstr) == -1) {
		token_error(t, TE_INVALID_REQUEST, errstr);
		return -1;
	}
	if (t->form.nparams > TOKEN_MAX_PARAMS) {
		token_error(t, TE_INVALID_REQUEST, "too many parameters");
		return -1;
	}
	/* Parameters must not repeat (RFC 6749 section 3.2), except resource, which
	 * may name several targets (RFC 8707 section 2). */
	for (i = 0; i < t->form.nparams; i++) {
		name = t->form.params[i].name;
		if (strcmp(name, "resource") == 0)
			continue;
		for (j = i + 1; j < t->form.nparams; j++) {
			if (strcmp(name, t->form.params[j].name) == 0) {
				snprintf(msg, sizeof(msg), "parameter %.40s is repeated",
				    name);
				token_error(t, TE_INVALID_REQUEST, msg);
				return -1;
			}
		}
	}
	if ((grant = token_param(t, "grant_type")) == NULL) {
		token_error(t, TE_INVALID_REQUEST, "grant_type is missing");
		return -1;
	}
	if (strcmp(grant, GRANT_CLIENT_CREDENTIALS) != 0) {
		token_error(t, TE_UNSUPPORTED_GRANT_TYPE,
		    "only client_credentials is supported");
		return -1;
	}
	t->scope_requested = token_param(t, "scope");
	for (i = 0; i < t->form.nparams; i++) {
		name = t->form.params[i].name;
		v = t->form.params[i].value;
		if ((strcmp(name, "resource") != 0 && strcmp(name, "audience") != 0) ||
		    *v == '\0')
			continue;
		if (strcmp(name, "resource") == 0) {
			/* RFC 8707: an absolute URI without a fragment. */
			n = strcspn(v, ":/?#");
			if (n == 0 || v[n] != ':' || strchr(v, '#') != NULL) {
				token_error(t, TE_INVALID_TARGET,
				    "resource must be an absolute URI without a fragment");
				return -1;
			}
		}
		if (t->naud == TOKEN_MAX_AUDIENCES) {
			token_error(t, TE_INVALID_TARGET, "too many audiences");
			return -1;
		}
		t->aud[t->naud++] = v;
	}
	return 0;
}

void
h_token(struct wreq *r)
{
	struct token_req *t = xcalloc(1, sizeof(*t));
	struct client_entry *ce;

	t->r = r;
	t->w = r->w;
	r->hctx = t;
	if (token_params(t) == -1 || token_credentials(t) == -1)
		return;
	wreq_async(r, token_cancel);
	switch (clients_get(worker_clients(t->w), t->client_id, &ce, &t->wait,
	    token_client_found, t)) {
	case CLIENTS_OK:
		t->ce = ce;
		token_check_secret(t);
		break;
	case CLIENTS_PENDING:
		break;
	default:
		token_unavailable(t, "the client database is unavailable");
		break;
	}
}
