/* h_authorize.c: GET and POST /authorize, the authorization endpoint (RFC 6749
 * section 4.1, OpenID Connect Core 3.1.2) for the code flow with PKCE, and the steps
 * the login and consent forms (h_login.c, h_consent.c) share with it (authz.h).
 *
 * The order of the checks is the point. client_id and redirect_uri come first, and
 * until both are known good every error is a page of ours (400), never a redirect:
 * the redirect URI must be one the client registered, compared as exact strings
 * (no normalisation of case, escapes, slashes or user info), or the endpoint becomes
 * an open redirector. A client with one registered URI may leave it out. Only then
 * do errors go back to the client, as error, error_description, state and iss (RFC
 * 9207), appended to the redirect URI's own query.
 *
 * The request between this endpoint and the login or consent form. Workers (and
 * instances) share nothing but the database, so the validated request is stored
 * there (authorization_requests, sql/003_browser.sql) under the SHA-256 of a random
 * id that the form carries, bound to the SHA-256 of the browser cookie: the form can
 * only be posted from the browser that was shown it, and its CSRF token is derived
 * from the same cookie (session.c). It is written only when a page is shown; a
 * signed-in user whose consent is on file gets the code at once.
 *
 * Then: who the user is (the session cookie; prompt=login, max_age and prompt=none
 * decide whether to ask), consent (first-party clients skip it; others show the
 * consent page unless a stored consent covers the scopes) and the code: 256 random
 * bits in base64url, stored as the SHA-256 of its 43 ASCII characters in auth_codes
 * with what the token endpoint must check (STORE_BR_CODE_NEW).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/http.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "authz.h"
#include "form.h"
#include "html.h"
#include "httputil.h"
#include "idp.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "users.h"
#include "worker.h"
#include "xalloc.h"

#define AUTHZ_MAX_CLIENT_ID	128

/* What the pages say when no redirect is allowed. */
#define MSG_GO_BACK	"Go back to the application and try again."

/* ---- clients ----------------------------------------------------------------- */

static json_t *
json_strings(const char *text)
{
	json_error_t jerr;
	json_t *a, *e;
	size_t i;

	if (text == NULL)
		return json_array();
	if ((a = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr)) == NULL)
		return NULL;
	if (json_is_null(a)) {
		json_decref(a);
		return json_array();
	}
	if (!json_is_array(a)) {
		json_decref(a);
		return NULL;
	}
	json_array_foreach(a, i, e)
		if (!json_is_string(e)) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static const char *
col(const PGresult *res, int c)
{
	return PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

struct bclient *
bclient_parse(const PGresult *res)
{
	struct bclient *c;

	if (PQntuples(res) != 1 || PQnfields(res) != 10 || col(res, 0) == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->id = xstrdup(col(res, 0));
	c->name = xstrdup(col(res, 1) != NULL ? col(res, 1) : c->id);
	c->public = PQgetvalue(res, 0, 2)[0] == 't';
	c->disabled = PQgetvalue(res, 0, 3)[0] == 't';
	c->first_party = PQgetvalue(res, 0, 4)[0] == 't';
	c->allow_plain_pkce = PQgetvalue(res, 0, 5)[0] == 't';
	if ((c->grants = json_strings(col(res, 6))) == NULL ||
	    (c->scopes = json_strings(col(res, 7))) == NULL ||
	    (c->redirect_uris = json_strings(col(res, 8))) == NULL ||
	    (c->logout_uris = json_strings(col(res, 9))) == NULL) {
		bclient_free(c);
		return NULL;
	}
	return c;
}

void
bclient_free(struct bclient *c)
{
	if (c == NULL)
		return;
	free(c->id);
	free(c->name);
	json_decref(c->grants);
	json_decref(c->scopes);
	json_decref(c->redirect_uris);
	json_decref(c->logout_uris);
	free(c);
}

int
authz_json_has(const json_t *a, const char *s)
{
	const json_t *e;
	size_t i;

	json_array_foreach(a, i, e)
		if (strcmp(json_string_value(e), s) == 0)
			return 1;
	return 0;
}

/* ---- the context and its replies ---------------------------------------------- */

static void
authz_params_free(struct authz_params *p)
{
	free(p->client_id);
	free(p->redirect_uri);
	free(p->scope);
	free(p->state);
	free(p->nonce);
	free(p->code_challenge);
	free(p->code_challenge_method);
	free(p->login_hint);
	memset(p, 0, sizeof(*p));
}

static void
authz_free(struct authz *a)
{
	size_t i;

	/* The login form holds a password. */
	for (i = 0; i < a->form.nparams; i++)
		sodium_memzero(a->form.params[i].value, strlen(a->form.params[i].value));
	form_free(&a->form);
	authz_params_free(&a->p);
	bclient_free(a->c);
	free(a->browser);
	free(a->session);
	free(a->user_id);
	free(a->username);
	free(a->login_buf);
	free(a->hint_sub);
	json_decref(a->consented);
	a->r->hctx = NULL;
	free(a);
}

static void
authz_cancel(struct wreq *r)
{
	struct authz *a = r->hctx;

	if (a == NULL)
		return;
	if (a->q != NULL)
		store_cancel(a->q);	/* its callback ends the request */
	else if (a->login != NULL)
		users_login_cancel(a->login);
}

struct authz *
authz_new(struct wreq *r)
{
	struct authz *a = xcalloc(1, sizeof(*a));

	a->r = r;
	a->w = r->w;
	a->p.max_age = -1;
	a->redirect_status = r->method == EVHTTP_REQ_POST ? 303 : 302;
	r->hctx = a;
	wreq_async(r, authz_cancel);
	return a;
}

/* The browser cookie, made (and set on the response) if the request has none. */
static const char *
authz_browser(struct authz *a)
{
	if (a->browser == NULL)
		a->browser = session_browser(a->r);
	return a->browser;
}

static void
authz_headers(struct authz *a)
{
	const char *origins[1];
	size_t n = 0;

	if (a->redirect_ok && a->p.redirect_uri != NULL)
		origins[n++] = a->p.redirect_uri;
	html_security_headers(a->r->req, worker_conf(a->w)->issuer, origins, n, NULL);
}

void
authz_page(struct authz *a, int status, char *page)
{
	struct wreq *r = a->r;

	authz_headers(a);
	authz_free(a);
	wreq_reply(r, status, NULL, page, strlen(page));
	free(page);
}

void
authz_error_page(struct authz *a, int status, const char *title, const char *message)
{
	authz_page(a, status, html_error_page(title, message));
}

void
authz_unavailable(struct authz *a)
{
	wreq_header(a->r, "Retry-After", "1");
	authz_error_page(a, 503, "Temporarily unavailable",
	    "The sign-in service cannot answer right now. Try again in a moment.");
}

void
authz_gone(struct authz *a)
{
	struct wreq *r = a->r;

	authz_free(a);
	wreq_reply_empty(r, 499);
}

/* Append "&name=value" (the first without '&') to b, value form-encoded. */
static void
authz_qs(struct evbuffer *b, int *first, const char *name, const char *value)
{
	char *v;

	if (value == NULL)
		return;
	v = form_encode(value);
	evbuffer_add_printf(b, "%s%s=%s", *first ? "" : "&", name, v);
	*first = 0;
	free(v);
}

/* The response in response_mode=form_post: a page whose form POSTs the parameters
 * (as authz_redirect), state and iss to the redirect URI. */
static void
authz_form_post(struct authz *a, const char *const *kv)
{
	struct html_field f[8];
	struct wreq *r = a->r;
	const char *origins[1], *err;
	size_t n = 0, i;
	char *page;

	for (i = 0; kv[i] != NULL && n < 6; i += 2)
		if (kv[i + 1] != NULL) {
			f[n].name = kv[i];
			f[n++].value = kv[i + 1];
		}
	if (a->p.state != NULL) {
		f[n].name = "state";
		f[n++].value = a->p.state;
	}
	f[n].name = "iss";
	f[n++].value = worker_conf(a->w)->issuer;
	page = html_form_post_page(a->p.redirect_uri, f, n);
	origins[0] = a->p.redirect_uri;
	if (html_form_post_headers(r->req, worker_conf(a->w)->issuer, origins, 1,
	    &err) == -1)
		log_warnx("%s: client %s: form_post to a redirect URI that CSP form-action "
		    "cannot name (%s): browsers will not send the response", r->id,
		    a->c != NULL ? a->c->id : "?", err);
	authz_free(a);
	wreq_reply(r, 200, NULL, page, strlen(page));
	free(page);
}

/* Send the browser back to the client's redirect URI with the parameters (name,
 * value pairs, NULL-terminated, at most 3; NULL values left out), state and iss: in
 * the query of a redirect, or POSTed by a form_post page. */
static void
authz_redirect(struct authz *a, const char *const *kv)
{
	const char *u = a->p.redirect_uri, *q = strchr(u, '?');
	struct evbuffer *b;
	int first = 1;
	size_t n, i;
	char *loc;

	if (a->p.form_post) {
		authz_form_post(a, kv);
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatalx("authorize: out of memory");
	evbuffer_add(b, u, strlen(u));
	/* Keep the URI's own query (RFC 6749 section 3.1.2). */
	n = strlen(u);
	if (q == NULL)
		evbuffer_add(b, "?", 1);
	else if (u[n - 1] != '?' && u[n - 1] != '&')
		evbuffer_add(b, "&", 1);
	for (i = 0; kv[i] != NULL; i += 2)
		authz_qs(b, &first, kv[i], kv[i + 1]);
	authz_qs(b, &first, "state", a->p.state);
	authz_qs(b, &first, "iss", worker_conf(a->w)->issuer);
	n = evbuffer_get_length(b);
	loc = xmalloc(n + 1);
	evbuffer_remove(b, loc, n);
	loc[n] = '\0';
	evbuffer_free(b);

	authz_redirect_to(a, loc);
	free(loc);
}

void
authz_redirect_to(struct authz *a, const char *url)
{
	struct wreq *r = a->r;
	int status = a->redirect_status;

	authz_headers(a);
	evhttp_remove_header(evhttp_request_get_output_headers(r->req), "Content-Type");
	wreq_header(r, "Location", url);
	authz_free(a);
	wreq_reply_empty(r, status);
}

void
authz_redirect_error(struct authz *a, const char *error, const char *description)
{
	const char *kv[] = { "error", error, "error_description", description, NULL };

	log_debug("%s: authorization error %s: %s", a->r->id, error, description);
	authz_redirect(a, kv);
}

/* ---- the database ----------------------------------------------------------------- */

/* A query's continuation: cb gets a successful result (authz_query). */
struct authz_dbwait {
	struct authz	*a;
	void		(*cb)(struct authz *, const PGresult *);
};

static void
authz_db_cb(enum store_status s, const PGresult *res, void *arg)
{
	struct authz_dbwait *dw = arg;
	struct authz *a = dw->a;
	void (*cb)(struct authz *, const PGresult *) = dw->cb;

	free(dw);
	a->q = NULL;
	switch (s) {
	case STORE_OK:
		cb(a, res);
		break;
	case STORE_CANCELLED:
		authz_gone(a);
		break;
	case STORE_ERROR:
		authz_error_page(a, 500, "Something went wrong",
		    "The sign-in service failed to answer. Try again in a moment.");
		break;
	default:
		authz_unavailable(a);
		break;
	}
}

int
authz_query(struct authz *a, enum store_stmt stmt, int n, const char *const *params,
    void (*cb)(struct authz *, const PGresult *))
{
	struct authz_dbwait *dw = xcalloc(1, sizeof(*dw));

	dw->a = a;
	dw->cb = cb;
	if ((a->q = store_exec(worker_store(a->w), stmt, n, params, authz_db_cb,
	    dw)) == NULL) {
		free(dw);
		authz_unavailable(a);
		return -1;
	}
	return 0;
}

/* ---- forms --------------------------------------------------------------------- */

const char *
authz_param(struct authz *a, const char *name)
{
	const char *v = form_get(&a->form, name, NULL);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* Parse s (len bytes) into a->form. 0, or -1 after an error page. */
static int
authz_parse(struct authz *a, const char *s, size_t len)
{
	const char *errstr;

	if (form_parse(&a->form, s != NULL ? s : "", len, &errstr) == -1) {
		authz_error_page(a, 400, "Invalid request", errstr);
		return -1;
	}
	if (a->form.nparams > AUTHZ_MAX_PARAMS) {
		authz_error_page(a, 400, "Invalid request", "The request has too many "
		    "parameters.");
		return -1;
	}
	return 0;
}

/* The form body into a->form. 0, or -1 after an error page. */
static int
authz_parse_body(struct authz *a)
{
	const char *body;
	size_t len;

	if (!http_content_type_has(a->r->req, "application/x-www-form-urlencoded")) {
		authz_error_page(a, 415, "Invalid request",
		    "The form must be sent as application/x-www-form-urlencoded.");
		return -1;
	}
	body = http_body(a->r->req, &len);
	return authz_parse(a, body, len);
}

int
authz_parse_post(struct authz *a)
{
	if (authz_parse_body(a) == -1)
		return -1;
	if (form_first_repeat(&a->form) != NULL) {
		authz_error_page(a, 400, "Invalid request", "A form field is repeated.");
		return -1;
	}
	return 0;
}

int
authz_check_csrf(struct authz *a)
{
	a->browser = session_cookie_get(a->r, SESSION_COOKIE_BROWSER);
	if (!session_csrf_check(a->browser, authz_param(a, "csrf_token"))) {
		log_info("%s: CSRF token missing or wrong", a->r->id);
		authz_error_page(a, 403, "This form has expired",
		    "The form was not sent from this site, or your browser did not send "
		    "its cookie. " MSG_GO_BACK);
		return -1;
	}
	return 0;
}

/* ---- loading ------------------------------------------------------------------- */

static void
authz_client_loaded(struct authz *a, const PGresult *res)
{
	void (*next)(struct authz *) = a->next;

	if ((a->c = bclient_parse(res)) == NULL || a->c->disabled) {
		authz_error_page(a, 400, "Unknown application",
		    "The application that sent you here is not registered with this "
		    "sign-in service.");
		return;
	}
	next(a);
}

void
authz_load_client(struct authz *a, const char *id, void (*next)(struct authz *))
{
	const char *params[1] = { id };

	free(a->r->client_id);
	a->r->client_id = xstrdup(id);
	a->next = next;
	authz_query(a, STORE_BR_CLIENT_GET, 1, params, authz_client_loaded);
}

static char *
jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? xstrdup(s) : NULL;
}

static json_t *
authz_params_json(const struct authz_params *p)
{
	json_t *o = json_object();

#define PUTS(k, v)	if ((v) != NULL) json_object_set_new(o, k, json_string(v))
	PUTS("redirect_uri", p->redirect_uri);
	PUTS("scope", p->scope);
	PUTS("state", p->state);
	PUTS("nonce", p->nonce);
	PUTS("code_challenge", p->code_challenge);
	PUTS("code_challenge_method", p->code_challenge_method);
	PUTS("login_hint", p->login_hint);
#undef PUTS
	json_object_set_new(o, "prompt_none", json_boolean(p->prompt_none));
	json_object_set_new(o, "prompt_login", json_boolean(p->prompt_login));
	json_object_set_new(o, "prompt_consent", json_boolean(p->prompt_consent));
	json_object_set_new(o, "form_post", json_boolean(p->form_post));
	json_object_set_new(o, "max_age", json_integer(p->max_age));
	return o;
}

static int
authz_params_from_json(struct authz_params *p, const char *text)
{
	json_error_t jerr;
	json_t *o, *v;

	if ((o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return -1;
	p->redirect_uri = jstr(o, "redirect_uri");
	p->scope = jstr(o, "scope");
	p->state = jstr(o, "state");
	p->nonce = jstr(o, "nonce");
	p->code_challenge = jstr(o, "code_challenge");
	p->code_challenge_method = jstr(o, "code_challenge_method");
	p->login_hint = jstr(o, "login_hint");
	p->prompt_none = json_is_true(json_object_get(o, "prompt_none"));
	p->prompt_login = json_is_true(json_object_get(o, "prompt_login"));
	p->prompt_consent = json_is_true(json_object_get(o, "prompt_consent"));
	p->form_post = json_is_true(json_object_get(o, "form_post"));
	v = json_object_get(o, "max_age");
	p->max_age = json_is_integer(v) ? (long)json_integer_value(v) : -1;
	json_decref(o);
	return p->redirect_uri != NULL && p->scope != NULL ? 0 : -1;
}

static void
authz_request_client(struct authz *a)
{
	void (*next)(struct authz *) = a->next2;

	/* Registered URIs may have changed since: the redirect must still be one. */
	if (!authz_json_has(a->c->redirect_uris, a->p.redirect_uri)) {
		authz_error_page(a, 400, "Invalid request",
		    "The application's redirect URI is no longer registered.");
		return;
	}
	a->redirect_ok = 1;
	next(a);
}

static void
authz_request_loaded(struct authz *a, const PGresult *res)
{
	if (PQntuples(res) != 1 ||
	    authz_params_from_json(&a->p, PQgetvalue(res, 0, 1)) == -1) {
		authz_error_page(a, 400, "This sign-in page has expired",
		    "It was open too long, or it was opened in another browser. "
		    MSG_GO_BACK);
		return;
	}
	a->p.client_id = xstrdup(PQgetvalue(res, 0, 0));
	a->request_created = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	authz_load_client(a, a->p.client_id, authz_request_client);
}

void
authz_load_request(struct authz *a, void (*next)(struct authz *))
{
	const char *id = authz_param(a, "request"), *params[2];
	char idh[SESSION_HASH_SIZE], bh[SESSION_HASH_SIZE];

	if (id == NULL || strlen(id) != SESSION_TOKEN_LEN || a->browser == NULL) {
		authz_error_page(a, 400, "Invalid request",
		    "The form does not name a sign-in request. " MSG_GO_BACK);
		return;
	}
	snprintf(a->request_id, sizeof(a->request_id), "%s", id);
	session_hash_hex(id, idh);
	session_hash_hex(a->browser, bh);
	params[0] = idh;
	params[1] = bh;
	a->next2 = next;
	authz_query(a, STORE_BR_AUTHZ_GET, 2, params, authz_request_loaded);
}

static void
authz_session_loaded(struct authz *a, const PGresult *res)
{
	void (*next)(struct authz *) = a->next;
	json_error_t jerr;

	if (PQntuples(res) == 1 && PQnfields(res) == 4) {
		a->signed_in = 1;
		a->user_id = xstrdup(PQgetvalue(res, 0, 0));
		a->auth_time = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		a->username = xstrdup(PQgetvalue(res, 0, 2));
		if (!PQgetisnull(res, 0, 3))
			a->consented = json_loads(PQgetvalue(res, 0, 3), 0, &jerr);
	}
	next(a);
}

void
authz_load_session(struct authz *a, void (*next)(struct authz *))
{
	const char *params[3];
	char idle[32];

	snprintf(idle, sizeof(idle), "%ld", worker_conf(a->w)->session_idle_ttl);
	session_hash_hex(a->session, a->session_hash);
	params[0] = a->session_hash;
	params[1] = idle;
	params[2] = a->c != NULL ? a->c->id : "";
	a->next = next;
	authz_query(a, STORE_BR_SESSION_GET, 3, params, authz_session_loaded);
}

/* ---- pages and the code ------------------------------------------------------- */

static void
authz_request_stored(struct authz *a, const PGresult *res)
{
	a->next(a);
}

/* Store the pending request if it is not stored yet, then call next(a). */
static void
authz_store_request(struct authz *a, void (*next)(struct authz *))
{
	const char *params[5];
	char idh[SESSION_HASH_SIZE], bh[SESSION_HASH_SIZE], ttl[16], *js;
	json_t *o;

	if (a->request_id[0] != '\0') {
		next(a);
		return;
	}
	session_token_new(a->request_id);
	session_hash_hex(a->request_id, idh);
	session_hash_hex(authz_browser(a), bh);
	o = authz_params_json(&a->p);
	if ((js = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("authorize: json_dumps");
	json_decref(o);
	snprintf(ttl, sizeof(ttl), "%d", AUTHZ_REQUEST_TTL_S);
	params[0] = idh;
	params[1] = bh;
	params[2] = a->c->id;
	params[3] = js;
	params[4] = ttl;
	a->next = next;
	authz_query(a, STORE_BR_AUTHZ_NEW, 5, params, authz_request_stored);
	free(js);
}

static void
authz_login_page(struct authz *a)
{
	char csrf[SESSION_TOKEN_SIZE];
	struct html_field f[1] = { { "request", a->request_id } };
	struct html_login l;

	session_csrf_token(authz_browser(a), csrf);
	memset(&l, 0, sizeof(l));
	l.action = "/login";
	l.client_name = a->c->name;
	l.username = a->login_username;
	l.error = a->login_error;
	l.csrf_token = csrf;
	l.fields = f;
	l.nfields = 1;
	authz_page(a, a->login_status, html_login_page(&l));
}

void
authz_show_login(struct authz *a, int status, const char *error, const char *username)
{
	/* The page is built when the request is stored, maybe after a query: the
	 * message and name must live until then. They are static strings or owned
	 * by a's form, which outlives the query. */
	a->login_error = error;
	a->login_username = username != NULL ? username : a->p.login_hint;
	a->login_status = status;
	authz_store_request(a, authz_login_page);
}

static void
authz_consent_page(struct authz *a)
{
	char csrf[SESSION_TOKEN_SIZE];
	struct html_field f[1] = { { "request", a->request_id } };
	struct html_consent c;

	session_csrf_token(authz_browser(a), csrf);
	memset(&c, 0, sizeof(c));
	c.action = "/consent";
	c.client_name = a->c->name;
	c.username = a->username;
	c.scope = a->p.scope;
	c.csrf_token = csrf;
	c.fields = f;
	c.nfields = 1;
	authz_page(a, 200, html_consent_page(&c));
}

static void
authz_code_stored(struct authz *a, const PGresult *res)
{
	const char *kv[] = { "code", a->code, NULL };

	log_debug("%s: code issued to %s for %s", a->r->id, a->c->id, a->user_id);
	authz_redirect(a, kv);
}

/* Issue the code and send the browser back with it. */
static void
authz_issue_code(struct authz *a)
{
	const struct idp_config *conf = worker_conf(a->w);
	const char *params[12];
	char ch[SESSION_HASH_SIZE], idh[SESSION_HASH_SIZE], at[32], ttl[32];

	session_token_new(a->code);
	session_hash_hex(a->code, ch);
	if (a->request_id[0] != '\0')
		session_hash_hex(a->request_id, idh);
	else
		idh[0] = '\0';
	snprintf(at, sizeof(at), "%lld", a->auth_time);
	snprintf(ttl, sizeof(ttl), "%ld", conf->auth_code_ttl);
	params[0] = ch;
	params[1] = a->c->id;
	params[2] = a->user_id;
	params[3] = a->session_hash;
	params[4] = a->p.redirect_uri;
	params[5] = a->p.scope;
	params[6] = a->p.nonce != NULL ? a->p.nonce : "";
	params[7] = a->p.code_challenge != NULL ? a->p.code_challenge : "";
	params[8] = a->p.code_challenge_method != NULL ? a->p.code_challenge_method : "";
	params[9] = at;
	params[10] = ttl;
	params[11] = idh;
	authz_query(a, STORE_BR_CODE_NEW, 12, params, authz_code_stored);
}

/* 1 if every scope of the request is in the user's stored consent. */
static int
authz_consent_covers(struct authz *a)
{
	const char *s = a->p.scope;
	size_t n;
	char *tok;
	int ok = 1;

	if (a->consented == NULL)
		return 0;
	for (; *s != '\0' && ok; s += n) {
		s += strspn(s, " ");
		if ((n = strcspn(s, " ")) == 0)
			break;
		tok = xstrndup(s, n);
		ok = authz_json_has(a->consented, tok);
		free(tok);
	}
	return ok;
}

void
authz_decide(struct authz *a)
{
	if (!a->c->first_party && (a->p.prompt_consent || !authz_consent_covers(a))) {
		if (a->p.prompt_none) {
			authz_redirect_error(a, "consent_required",
			    "the user has not allowed this application yet");
			return;
		}
		authz_store_request(a, authz_consent_page);
		return;
	}
	authz_issue_code(a);
}

static void
authz_consent_saved(struct authz *a, const PGresult *res)
{
	authz_issue_code(a);
}

void
authz_consent_allow(struct authz *a)
{
	const char *params[3] = { a->user_id, a->c->id, a->p.scope };

	authz_query(a, STORE_BR_CONSENT_SAVE, 3, params, authz_consent_saved);
}

/* ---- GET and POST /authorize -------------------------------------------------- */

/* RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
static int
scope_token_ok(const char *s, size_t n)
{
	size_t i;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch < 0x21 || ch == 0x22 || ch == 0x5c || ch > 0x7e)
			return 0;
	}
	return n > 0;
}

/* 1 if the client may ask for scope tok: the OpenID Connect scopes openid, profile
 * and email always, offline_access with the refresh_token grant, anything else when
 * the client's scopes list it. */
static int
authorize_scope_allowed(const struct bclient *c, const char *tok)
{
	if (strcmp(tok, "openid") == 0 || strcmp(tok, "profile") == 0 ||
	    strcmp(tok, "email") == 0)
		return 1;
	if (strcmp(tok, "offline_access") == 0)
		return authz_json_has(c->grants, "refresh_token");
	return authz_json_has(c->scopes, tok);
}

/* 1 if the space-separated list s has tok as a token before position end. */
static int
scope_seen_before(const char *s, const char *end, const char *tok)
{
	size_t n, tn = strlen(tok);

	for (; s < end; s += n) {
		s += strspn(s, " ");
		n = strcspn(s, " ");
		if (s >= end || n == 0)
			break;
		if (n == tn && memcmp(s, tok, n) == 0)
			return 1;
	}
	return 0;
}

/* The requested scope into a->p.scope (deduplicated, order kept). NULL, or the
 * error description (invalid_scope). Without openid this is a plain OAuth 2.0
 * request: the code gives an access token and no ID token (h_token.c). */
static const char *
authorize_scope(struct authz *a, const char *req)
{
	struct evbuffer *b;
	const char *s, *err = NULL;
	size_t n, len;
	char *tok, *out;

	if (req == NULL)
		return "scope is missing";
	if ((b = evbuffer_new()) == NULL)
		fatalx("authorize: out of memory");
	for (s = req; *s != '\0' && err == NULL; s += n) {
		s += strspn(s, " ");
		if ((n = strcspn(s, " ")) == 0)
			break;
		if (!scope_token_ok(s, n)) {
			err = "scope is malformed";
			break;
		}
		tok = xstrndup(s, n);
		if (!authorize_scope_allowed(a->c, tok))
			err = "a requested scope is unknown or not allowed for this client";
		else if (!scope_seen_before(req, s, tok)) {
			if (evbuffer_get_length(b) > 0)
				evbuffer_add(b, " ", 1);
			evbuffer_add(b, tok, n);
		}
		free(tok);
	}
	if (err == NULL && evbuffer_get_length(b) == 0)
		err = "scope is missing";
	if (err == NULL) {
		len = evbuffer_get_length(b);
		out = xmalloc(len + 1);
		evbuffer_remove(b, out, len);
		out[len] = '\0';
		a->p.scope = out;
	}
	evbuffer_free(b);
	return err;
}

/* 1 if s is 43 to 128 characters of RFC 7636's unreserved set; with s256, exactly
 * 43 base64url characters (a SHA-256). */
static int
pkce_challenge_ok(const char *s, int s256)
{
	size_t n = strlen(s), i;

	if (n < 43 || n > 128 || (s256 && n != 43))
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' ||
		    (!s256 && (s[i] == '.' || s[i] == '~'))))
			return 0;
	return 1;
}

/* PKCE (RFC 7636) into a->p. NULL, or the error description (invalid_request). */
static const char *
authorize_pkce(struct authz *a)
{
	const char *cc = authz_param(a, "code_challenge");
	const char *m = authz_param(a, "code_challenge_method");

	if (cc == NULL) {
		if (m != NULL)
			return "code_challenge_method without code_challenge";
		if (a->c->public)
			return "this client must use PKCE: send code_challenge with "
			    "code_challenge_method=S256";
		return NULL;
	}
	if (m == NULL)
		m = "plain";		/* RFC 7636 section 4.3 */
	if (strcmp(m, "S256") == 0) {
		if (!pkce_challenge_ok(cc, 1))
			return "code_challenge must be the base64url SHA-256 of the "
			    "verifier (43 characters)";
	} else if (strcmp(m, "plain") == 0) {
		if (!a->c->allow_plain_pkce || !worker_conf(a->w)->allow_plain_pkce)
			return "code_challenge_method plain is not allowed; use S256";
		if (!pkce_challenge_ok(cc, 0))
			return "code_challenge must be 43 to 128 unreserved characters";
	} else
		return "code_challenge_method must be S256";
	a->p.code_challenge = xstrdup(cc);
	a->p.code_challenge_method = xstrdup(m);
	return NULL;
}

/* prompt (OpenID Connect Core 3.1.2.1). NULL, or the error description. */
static const char *
authorize_prompt(struct authz *a)
{
	const char *s = authz_param(a, "prompt");
	size_t n;
	int other = 0;

	for (; s != NULL && *s != '\0'; s += n) {
		s += strspn(s, " ");
		if ((n = strcspn(s, " ")) == 0)
			break;
		if (n == 4 && strncmp(s, "none", 4) == 0)
			a->p.prompt_none = 1;
		else if (n == 5 && strncmp(s, "login", 5) == 0)
			a->p.prompt_login = other = 1;
		else if (n == 7 && strncmp(s, "consent", 7) == 0)
			a->p.prompt_consent = other = 1;
		else if (n == 14 && strncmp(s, "select_account", 14) == 0)
			other = 1;	/* one account per browser: nothing to pick */
		else
			return "prompt has an unsupported value";
	}
	if (a->p.prompt_none && other)
		return "prompt=none cannot be combined with other values";
	return NULL;
}

/* After the session lookup (or without one): sign in, or go on. */
static void
authorize_session_known(struct authz *a)
{
	long long now = (long long)time(NULL);
	int need_login;

	/* max_age=0 asks for a fresh login, as prompt=login does. id_token_hint names
	 * the user the client expects (OpenID Connect Core 3.1.2.1): another user's
	 * session does not count. */
	need_login = !a->signed_in || a->p.prompt_login || a->p.max_age == 0 ||
	    (a->p.max_age > 0 && now - a->auth_time > a->p.max_age) ||
	    (a->hint_sub != NULL && strcmp(a->hint_sub, a->user_id) != 0);
	if (!need_login) {
		authz_decide(a);
		return;
	}
	if (a->p.prompt_none) {
		authz_redirect_error(a, "login_required",
		    a->signed_in ? "the user must sign in again" :
		    "the user is not signed in");
		return;
	}
	authz_show_login(a, 200, NULL, NULL);
}

/* The client is known: the redirect URI, then everything else. */
static void
authorize_client_loaded(struct authz *a)
{
	const struct bclient *c = a->c;
	const char *ru, *v, *err, *rep;
	size_t count;
	char msg[128], *hclient;

	ru = form_get(&a->form, "redirect_uri", &count);
	if (count > 1) {
		authz_error_page(a, 400, "Invalid request",
		    "The request has more than one redirect_uri.");
		return;
	}
	if (ru == NULL || *ru == '\0') {
		if (json_array_size(c->redirect_uris) != 1) {
			authz_error_page(a, 400, "Invalid request", "The request has no "
			    "redirect_uri, and the application registered more than one.");
			return;
		}
		ru = json_string_value(json_array_get(c->redirect_uris, 0));
	} else if (!authz_json_has(c->redirect_uris, ru)) {
		log_info("%s: unregistered redirect_uri for client %s", a->r->id, c->id);
		authz_error_page(a, 400, "Invalid request",
		    "The redirect URI is not registered for this application.");
		return;
	}
	a->p.redirect_uri = xstrdup(ru);
	a->p.client_id = xstrdup(c->id);
	/* From here on, errors go back to the client. state first, so that they
	 * carry it; a repeated state is echoed as its first value. */
	if ((v = authz_param(a, "state")) != NULL && strlen(v) <= AUTHZ_MAX_STATE)
		a->p.state = xstrdup(v);
	/* And the response mode, so that they go back the way the client asked. */
	if ((v = authz_param(a, "response_mode")) != NULL && strcmp(v, "form_post") == 0)
		a->p.form_post = 1;
	a->redirect_ok = 1;

	if ((rep = form_first_repeat(&a->form)) != NULL) {
		snprintf(msg, sizeof(msg), "parameter %.40s is repeated", rep);
		authz_redirect_error(a, "invalid_request", msg);
		return;
	}
	if ((v = authz_param(a, "state")) != NULL && strlen(v) > AUTHZ_MAX_STATE) {
		authz_redirect_error(a, "invalid_request", "state is too long");
		return;
	}
	if (authz_param(a, "request") != NULL) {
		authz_redirect_error(a, "request_not_supported",
		    "request objects are not supported");
		return;
	}
	if (authz_param(a, "request_uri") != NULL) {
		authz_redirect_error(a, "request_uri_not_supported",
		    "request_uri is not supported");
		return;
	}
	if (authz_param(a, "registration") != NULL) {
		authz_redirect_error(a, "registration_not_supported",
		    "registration is not supported");
		return;
	}
	if ((v = authz_param(a, "response_type")) == NULL) {
		authz_redirect_error(a, "invalid_request", "response_type is missing");
		return;
	}
	if (strcmp(v, "code") != 0) {
		authz_redirect_error(a, "unsupported_response_type",
		    "only response_type=code is supported");
		return;
	}
	if ((v = authz_param(a, "response_mode")) != NULL && strcmp(v, "query") != 0 &&
	    strcmp(v, "form_post") != 0) {
		authz_redirect_error(a, "invalid_request",
		    "response_mode must be query or form_post");
		return;
	}
	if (!authz_json_has(c->grants, "authorization_code")) {
		authz_redirect_error(a, "unauthorized_client",
		    "the client may not use the authorization code flow");
		return;
	}
	if ((err = authorize_scope(a, authz_param(a, "scope"))) != NULL) {
		authz_redirect_error(a, "invalid_scope", err);
		return;
	}
	if ((v = authz_param(a, "nonce")) != NULL) {
		if (strlen(v) > AUTHZ_MAX_NONCE) {
			authz_redirect_error(a, "invalid_request", "nonce is too long");
			return;
		}
		a->p.nonce = xstrdup(v);
	}
	if ((err = authorize_pkce(a)) != NULL || (err = authorize_prompt(a)) != NULL) {
		authz_redirect_error(a, "invalid_request", err);
		return;
	}
	if ((v = authz_param(a, "max_age")) != NULL) {
		if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 9) {
			authz_redirect_error(a, "invalid_request",
			    "max_age must be a number of seconds");
			return;
		}
		a->p.max_age = strtol(v, NULL, 10);
	}
	if ((v = authz_param(a, "login_hint")) != NULL && strlen(v) <= AUTHZ_MAX_HINT)
		a->p.login_hint = xstrdup(v);
	if ((v = authz_param(a, "id_token_hint")) != NULL) {
		if (authz_check_id_token_hint(v, worker_conf(a->w)->issuer, &hclient,
		    &a->hint_sub, &err) == -1) {
			log_info("%s: id_token_hint refused: %s", a->r->id, err);
			authz_redirect_error(a, "invalid_request",
			    "id_token_hint is not an ID token from this issuer");
			return;
		}
		free(hclient);
	}

	if ((a->session = session_cookie_get(a->r, SESSION_COOKIE_SESSION)) != NULL) {
		authz_load_session(a, authorize_session_known);
		return;
	}
	authorize_session_known(a);
}

int
authz_parse_request(struct authz *a)
{
	const struct evhttp_uri *u;
	const char *q;

	/* OpenID Connect Core 3.1.2.1: the parameters may come as a form. */
	if (a->r->method == EVHTTP_REQ_POST)
		return authz_parse_body(a);
	u = evhttp_request_get_evhttp_uri(a->r->req);
	q = u != NULL ? evhttp_uri_get_query(u) : NULL;
	return authz_parse(a, q, q != NULL ? strlen(q) : 0);
}

void
h_authorize(struct wreq *r)
{
	struct authz *a = authz_new(r);
	const char *id;
	size_t count;

	if (authz_parse_request(a) == -1)
		return;
	id = form_get(&a->form, "client_id", &count);
	if (count > 1) {
		authz_error_page(a, 400, "Invalid request",
		    "The request has more than one client_id.");
		return;
	}
	if (id == NULL || *id == '\0' || strlen(id) > AUTHZ_MAX_CLIENT_ID) {
		authz_error_page(a, 400, "Invalid request",
		    "The request does not name a registered application (client_id).");
		return;
	}
	authz_load_client(a, id, authorize_client_loaded);
}
