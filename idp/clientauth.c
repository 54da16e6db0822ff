/* clientauth.c: OAuth client authentication for /token, /introspect and /revoke, and
 * the request /introspect and /revoke share up to the token they are about.
 *
 * The steps, each of which may wait: find the client (cache, else one query); a public
 * client that sent its client_id alone ("none") is done; otherwise check the secret
 * against the verified-secret cache, and if that does not settle it consult the
 * failure limiter (refuse, or wait a while) and run Argon2id on the hash pool. A
 * secret proven before costs a MAC and passes every limit: only those who do not know
 * it are slowed down. The outcome reaches the caller's callback from the event loop,
 * never from inside clientauth_start, so a caller can keep the handle.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <sodium.h>

#include "accesstoken.h"
#include "clientauth.h"
#include "clients.h"
#include "form.h"
#include "httputil.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "worker.h"
#include "xalloc.h"

struct clientauth {
	struct wreq		*r;
	struct worker		*w;
	clientauth_cb		*cb;
	void			*arg;
	char			*client_id;
	char			*secret;	/* NULL: none */
	size_t			 secret_len;
	int			 none;
	struct client_entry	*ce;
	/* What it waits for, one at a time. */
	struct clients_wait	*wait;
	struct clients_verify	*verify;
	struct event		*delay;
	struct event		*done_ev;	/* the outcome, from the loop */
	int			 cancelled;	/* while Argon2id runs */
	struct clientauth_result res;
};

/* A refresh token: base64url of 32 random bytes. */
#define CLIENTAUTH_REFRESH_LEN	43

/* ---- forms --------------------------------------------------------------------- */

/* 1 if the request's media type is application/x-www-form-urlencoded (parameters such
 * as charset allowed). */
static int
clientauth_is_form(struct wreq *r)
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

static int
clientauth_repeatable(const char *const *list, const char *name)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

int
clientauth_form(struct wreq *r, struct form *f, const char *const *repeatable,
    const char **errstr)
{
	const char *body, *name;
	size_t len, i, j;

	memset(f, 0, sizeof(*f));
	if (!clientauth_is_form(r)) {
		*errstr = "Content-Type must be application/x-www-form-urlencoded";
		return -1;
	}
	body = http_body(r->req, &len);
	if (form_parse(f, body != NULL ? body : "", len, errstr) == -1)
		return -1;
	if (f->nparams > CLIENTAUTH_MAX_PARAMS) {
		clientauth_form_free(f);
		*errstr = "too many parameters";
		return -1;
	}
	for (i = 0; i < f->nparams; i++) {
		name = f->params[i].name;
		if (clientauth_repeatable(repeatable, name))
			continue;
		for (j = i + 1; j < f->nparams; j++)
			if (strcmp(name, f->params[j].name) == 0) {
				clientauth_form_free(f);
				*errstr = "a parameter is repeated";
				return -1;
			}
	}
	return 0;
}

const char *
clientauth_param(const struct form *f, const char *name)
{
	const char *v = form_get(f, name, NULL);

	return v != NULL && *v != '\0' ? v : NULL;
}

void
clientauth_form_free(struct form *f)
{
	size_t i;

	for (i = 0; i < f->nparams; i++)
		sodium_memzero(f->params[i].value, strlen(f->params[i].value));
	form_free(f);
}

/* ---- the outcome --------------------------------------------------------------- */

static void
clientauth_free(struct clientauth *ca)
{
	if (ca->secret != NULL) {
		sodium_memzero(ca->secret, ca->secret_len);
		free(ca->secret);
	}
	free(ca->client_id);
	clients_release(ca->ce);
	if (ca->delay != NULL)
		event_free(ca->delay);
	if (ca->done_ev != NULL)
		event_free(ca->done_ev);
	free(ca);
}

static void
clientauth_deliver(struct clientauth *ca)
{
	struct clientauth_result res = ca->res;

	if (res.status == CLIENTAUTH_OK) {
		res.ce = ca->ce;		/* the callback takes the reference */
		res.client = clients_entry_client(ca->ce);
		res.none = ca->none;
		ca->ce = NULL;
	}
	ca->cb(&res, ca->arg);
	clientauth_free(ca);
}

static void
clientauth_done_cb(evutil_socket_t fd, short what, void *arg)
{
	clientauth_deliver(arg);
}

/* End with status: through the loop, so never inside clientauth_start. */
static void
clientauth_finish(struct clientauth *ca, enum clientauth_status s, const char *desc)
{
	ca->res.status = s;
	ca->res.description = desc;
	event_active(ca->done_ev, 0, 0);
}

/* invalid_client, counted against the client id and the address. */
static void
clientauth_failed(struct clientauth *ca, const char *why)
{
	uint64_t now = worker_now_ms();

	log_debug("%s: client authentication failed: %s", ca->r->id, why);
	metrics_auth_failure(worker_metrics_slot(ca->w));
	if (ca->client_id != NULL)
		limiter_failure(worker_limiter_client(ca->w), ca->client_id, now);
	limiter_failure(worker_limiter_addr(ca->w), ca->r->addr, now);
	clientauth_finish(ca, CLIENTAUTH_INVALID, "client authentication failed");
}

void
clientauth_cancel(struct clientauth *ca)
{
	if (ca->verify != NULL) {
		ca->cancelled = 1;
		return;
	}
	if (ca->wait != NULL) {
		clients_get_cancel(ca->wait);	/* calls back: CANCELLED */
		return;
	}
	if (ca->delay != NULL)
		evtimer_del(ca->delay);
	event_del(ca->done_ev);
	ca->res.status = CLIENTAUTH_CANCELLED;
	clientauth_deliver(ca);
}

void
clientauth_reply(struct wreq *r, const struct clientauth_result *res)
{
	char buf[32];

	switch (res->status) {
	case CLIENTAUTH_OK:
		fatalx("clientauth_reply: not a failure");
	case CLIENTAUTH_INVALID:
		wreq_header(r, "WWW-Authenticate", worker_www_authenticate(r->w));
		wreq_reply_error(r, 401, "invalid_client", res->description);
		break;
	case CLIENTAUTH_BAD_REQUEST:
		wreq_reply_error(r, 400, "invalid_request", res->description);
		break;
	case CLIENTAUTH_LIMITED:
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)res->retry_after);
		wreq_header(r, "Retry-After", buf);
		wreq_reply_error(r, 429, "temporarily_unavailable", res->description);
		break;
	case CLIENTAUTH_UNAVAILABLE:
		wreq_header(r, "Retry-After", "1");
		wreq_reply_error(r, 503, "temporarily_unavailable", res->description);
		break;
	case CLIENTAUTH_CANCELLED:
		wreq_reply_empty(r, 499);
		break;
	}
}

/* ---- the secret ---------------------------------------------------------------- */

static void
clientauth_verified(enum clients_auth a, void *arg)
{
	struct clientauth *ca = arg;

	ca->verify = NULL;
	if (a == CLIENTS_AUTH_OK && !ca->cancelled) {
		/* A client that proves its secret starts afresh; its address does not. */
		limiter_forget(worker_limiter_client(ca->w), ca->client_id);
		clientauth_finish(ca, CLIENTAUTH_OK, NULL);
		return;
	}
	if (a == CLIENTS_AUTH_CANCELLED || (a == CLIENTS_AUTH_OK && ca->cancelled)) {
		clientauth_finish(ca, CLIENTAUTH_CANCELLED, NULL);
		return;
	}
	clientauth_failed(ca, "wrong secret");
	if (ca->cancelled)
		ca->res.status = CLIENTAUTH_CANCELLED;
}

/* After the limiter's delay (or none): settle the secret, with Argon2id if need be. */
static void
clientauth_run_argon2(struct clientauth *ca)
{
	const struct client *c = clients_entry_client(ca->ce);

	if (c == NULL) {
		clientauth_failed(ca, "unknown client");
		return;
	}
	if (c->disabled) {
		clientauth_failed(ca, "client disabled");
		return;
	}
	if (c->public) {
		clientauth_failed(ca, "public client with a secret");
		return;
	}
	/* Another request may have settled this secret while we waited. */
	switch (clients_secret_cached(worker_clients(ca->w), ca->ce, ca->secret,
	    ca->secret_len)) {
	case CLIENTS_AUTH_OK:
		metrics_secret_cache(worker_metrics_slot(ca->w), 1);
		clientauth_finish(ca, CLIENTAUTH_OK, NULL);
		return;
	case CLIENTS_AUTH_BAD:
		clientauth_failed(ca, "wrong secret (known)");
		return;
	default:
		break;
	}
	metrics_secret_cache(worker_metrics_slot(ca->w), 0);
	ca->verify = clients_secret_verify(worker_clients(ca->w), ca->ce, ca->secret,
	    ca->secret_len, clientauth_verified, ca);
	if (ca->verify == NULL)
		clientauth_finish(ca, CLIENTAUTH_UNAVAILABLE,
		    "too many client secrets are being verified");
}

static void
clientauth_delay_done(evutil_socket_t fd, short what, void *arg)
{
	clientauth_run_argon2(arg);
}

static void
clientauth_check(struct clientauth *ca)
{
	const struct client *c = clients_entry_client(ca->ce);
	struct wreq *r = ca->r;
	uint64_t now = worker_now_ms(), delay_c, delay_a, retry_c, retry_a, delay;
	enum limiter_verdict vc, va;
	struct timeval tv;

	if (c != NULL) {
		free(r->client_id);
		r->client_id = xstrdup(c->id);
	}
	if (ca->none) {
		if (c == NULL || c->disabled || !c->public)
			clientauth_failed(ca, c == NULL ? "unknown client" : c->disabled ?
			    "client disabled" : "no client secret");
		else
			clientauth_finish(ca, CLIENTAUTH_OK, NULL);
		return;
	}
	if (c != NULL && !c->disabled && !c->public &&
	    clients_secret_cached(worker_clients(ca->w), ca->ce, ca->secret,
	    ca->secret_len) == CLIENTS_AUTH_OK) {
		metrics_secret_cache(worker_metrics_slot(ca->w), 1);
		clientauth_finish(ca, CLIENTAUTH_OK, NULL);
		return;
	}
	vc = limiter_check(worker_limiter_client(ca->w), ca->client_id, now, &delay_c,
	    &retry_c);
	va = limiter_check(worker_limiter_addr(ca->w), r->addr, now, &delay_a, &retry_a);
	if (vc == LIMIT_BLOCK || va == LIMIT_BLOCK) {
		log_debug("%s: too many failed client authentications from %s", r->id,
		    r->addr);
		ca->res.retry_after = retry_c > retry_a ? retry_c : retry_a;
		clientauth_finish(ca, CLIENTAUTH_LIMITED,
		    "too many failed attempts; try again later");
		return;
	}
	delay = delay_c > delay_a ? delay_c : delay_a;
	if (delay == 0) {
		clientauth_run_argon2(ca);
		return;
	}
	if ((ca->delay = evtimer_new(worker_base(ca->w), clientauth_delay_done,
	    ca)) == NULL)
		fatalx("clientauth: evtimer_new");
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(ca->delay, &tv);
}

static void
clientauth_found(enum clients_status s, struct client_entry *ce, void *arg)
{
	struct clientauth *ca = arg;

	ca->wait = NULL;
	switch (s) {
	case CLIENTS_OK:
		ca->ce = ce;
		clientauth_check(ca);
		break;
	case CLIENTS_CANCELLED:
		/* From clientauth_cancel: deliver now, the caller is waiting on it. */
		ca->res.status = CLIENTAUTH_CANCELLED;
		clientauth_deliver(ca);
		break;
	default:
		clientauth_finish(ca, CLIENTAUTH_UNAVAILABLE,
		    "the client database is unavailable");
		break;
	}
}

/* The client's credentials into ca. 0, or -1 after clientauth_finish. */
static int
clientauth_credentials(struct clientauth *ca, const struct form *f, unsigned flags)
{
	const char *authz = wreq_get_header(ca->r, "Authorization");
	const char *post_id = clientauth_param(f, "client_id");
	const char *post_secret = clientauth_param(f, "client_secret");
	char *user = NULL, *pass = NULL;
	int rc;

	if (authz != NULL) {
		rc = http_basic_credentials(authz, &user, &pass);
		if (rc != 1) {
			/* Another scheme, or malformed Basic: it is still an attempt at
			 * authentication by header, hence 401 (RFC 6749 section 5.2). */
			clientauth_failed(ca, rc == 0 ? "unsupported authentication "
			    "scheme" : "malformed Basic credentials");
			return -1;
		}
		/* RFC 6749 section 2.3.1: both are form-urlencoded inside Basic. */
		ca->client_id = form_decode(user, strlen(user), 1);
		ca->secret = form_decode(pass, strlen(pass), 1);
		sodium_memzero(pass, strlen(pass));
		free(pass);
		free(user);
		if (post_secret != NULL) {
			clientauth_finish(ca, CLIENTAUTH_BAD_REQUEST, "more than one client "
			    "authentication method (Basic and client_secret)");
			return -1;
		}
		if (ca->client_id == NULL || ca->secret == NULL) {
			clientauth_failed(ca, "undecodable Basic credentials");
			return -1;
		}
		if (post_id != NULL && strcmp(post_id, ca->client_id) != 0) {
			clientauth_finish(ca, CLIENTAUTH_BAD_REQUEST,
			    "client_id does not match the Basic credentials");
			return -1;
		}
	} else if (post_id != NULL && post_secret != NULL) {
		ca->client_id = xstrdup(post_id);
		ca->secret = xstrdup(post_secret);
	} else if (post_id != NULL && (flags & CLIENTAUTH_ALLOW_PUBLIC)) {
		ca->client_id = xstrdup(post_id);
		ca->none = 1;
	} else {
		clientauth_failed(ca, post_id != NULL ? "no client secret" :
		    "no client credentials");
		return -1;
	}
	ca->secret_len = ca->secret != NULL ? strlen(ca->secret) : 0;
	if (*ca->client_id == '\0' || strlen(ca->client_id) > CLIENTAUTH_MAX_CLIENT_ID ||
	    (!ca->none && (ca->secret_len == 0 ||
	    ca->secret_len > CLIENTAUTH_MAX_SECRET))) {
		free(ca->client_id);
		ca->client_id = NULL;	/* not a key worth a limiter entry */
		clientauth_failed(ca, "implausible credentials");
		return -1;
	}
	return 0;
}

struct clientauth *
clientauth_start(struct wreq *r, const struct form *f, unsigned flags, clientauth_cb *cb,
    void *arg)
{
	struct clientauth *ca = xcalloc(1, sizeof(*ca));
	struct evhttp_connection *evcon;
	struct client_entry *ce;
	char *host = NULL;
	ev_uint16_t port;

	ca->r = r;
	ca->w = r->w;
	ca->cb = cb;
	ca->arg = arg;
	if ((ca->done_ev = event_new(worker_base(ca->w), -1, 0, clientauth_done_cb,
	    ca)) == NULL)
		fatalx("clientauth: event_new");
	/* The limiter counts by address. */
	if (r->addr[0] == '\0') {
		if ((evcon = evhttp_request_get_connection(r->req)) != NULL)
			evhttp_connection_get_peer(evcon, &host, &port);
		snprintf(r->addr, sizeof(r->addr), "%s", host != NULL ? host : "-");
	}
	if (clientauth_credentials(ca, f, flags) == -1)
		return ca;
	switch (clients_get(worker_clients(ca->w), ca->client_id, &ce, &ca->wait,
	    clientauth_found, ca)) {
	case CLIENTS_OK:
		ca->ce = ce;
		clientauth_check(ca);
		break;
	case CLIENTS_PENDING:
		break;
	default:
		clientauth_finish(ca, CLIENTAUTH_UNAVAILABLE,
		    "the client database is unavailable");
		break;
	}
	return ca;
}

/* ---- /introspect and /revoke --------------------------------------------------- */

struct wreq *
clientauth_tokreq_end(struct clientauth_tokreq *t)
{
	struct wreq *r = t->r;

	clientauth_form_free(&t->form);
	clients_release(t->ce);
	json_decref(t->claims);
	r->hctx = NULL;
	free(t);
	return r;
}

static void
clientauth_tokreq_error(struct clientauth_tokreq *t, int status, const char *error,
    const char *description)
{
	struct wreq *r = clientauth_tokreq_end(t);

	if (status == 503)
		wreq_header(r, "Retry-After", "1");
	wreq_reply_error(r, status, error, description);
}

void
clientauth_tokreq_unavailable(struct clientauth_tokreq *t, const char *description)
{
	clientauth_tokreq_error(t, 503, "temporarily_unavailable", description);
}

static void
clientauth_tokreq_cancel(struct wreq *r)
{
	struct clientauth_tokreq *t = r->hctx;

	if (t == NULL)
		return;
	if (t->auth != NULL)
		clientauth_cancel(t->auth);
	else if (t->q != NULL)
		store_cancel(t->q);
}

static void
clientauth_tokreq_authenticated(const struct clientauth_result *res, void *arg)
{
	struct clientauth_tokreq *t = arg;
	size_t n = strlen(t->token);

	t->auth = NULL;
	if (res->status != CLIENTAUTH_OK) {
		clientauth_reply(clientauth_tokreq_end(t), res);
		return;
	}
	t->ce = res->ce;
	t->c = res->client;
	/* The two kinds look different, so no token_type_hint is needed. */
	if (accesstoken_is_jws(t->token))
		t->ops->access(t);
	else if (n == CLIENTAUTH_REFRESH_LEN && strspn(t->token,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n)
		t->ops->refresh(t);
	else
		t->ops->other(t);
}

void
clientauth_tokreq_start(struct wreq *r, const struct clientauth_tokops *ops)
{
	struct clientauth_tokreq *t = xcalloc(1, sizeof(*t));
	const char *errstr;

	t->r = r;
	t->w = r->w;
	t->ops = ops;
	r->hctx = t;
	if (clientauth_form(r, &t->form, NULL, &errstr) == -1) {
		clientauth_tokreq_error(t, 400, "invalid_request", errstr);
		return;
	}
	if ((t->token = clientauth_param(&t->form, "token")) == NULL) {
		clientauth_tokreq_error(t, 400, "invalid_request", "token is missing");
		return;
	}
	wreq_async(r, clientauth_tokreq_cancel);
	t->auth = clientauth_start(r, &t->form, ops->flags,
	    clientauth_tokreq_authenticated, t);
}
