/* h_logout.c: GET and POST /logout, the end_session_endpoint of OpenID Connect
 * RP-Initiated Logout 1.0: ends the browser's session (sessions.ended_at), revokes the
 * refresh-token families issued in it, clears the cookie, and goes back to the client
 * when it asked to and may.
 *
 * The parameters: id_token_hint, client_id, post_logout_redirect_uri, state. The
 * client is the hint's azp or aud, or client_id (both must agree). The hint is
 * checked against the public keys of the JWKS (h_jwks_find): our signature and our
 * iss; an expired token is still a good hint. post_logout_redirect_uri must be one
 * the client registered, compared as exact strings; otherwise there is no redirect,
 * only the signed-out page.
 *
 * Without a valid hint for the signed-in user, anyone could sign the user out with a
 * link, so the user is asked first (html_logout_page): its form posts back here with
 * a CSRF token and the same parameters, and only that POST ends the session. A POST
 * without csrf_token is an RP's request like a GET (the specification allows both).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "authz.h"
#include "form.h"
#include "html.h"
#include "idp.h"
#include "jwk.h"
#include "jws.h"
#include "log.h"
#include "session.h"
#include "worker.h"
#include "xalloc.h"

#define LOGOUT_MAX_HINT		8192

/* authz.h: /logout's check of the hint, which /authorize uses too. */
int
authz_check_id_token_hint(const char *hint, const char *issuer, char **client,
    char **sub, const char **errstr)
{
	json_t *hdr = NULL, *claims = NULL, *jwk = NULL, *aud;
	const char *kid, *alg_name, *jwk_alg, *s;
	EVP_PKEY *key = NULL;
	enum jws_alg alg;
	int rv = -1;

	*client = *sub = NULL;
	if (strlen(hint) > LOGOUT_MAX_HINT) {
		*errstr = "id_token_hint is too long";
		return -1;
	}
	if (jws_decode_unverified(hint, &hdr, NULL, errstr) == -1)
		return -1;
	kid = json_string_value(json_object_get(hdr, "kid"));
	alg_name = json_string_value(json_object_get(hdr, "alg"));
	alg = alg_name != NULL ? jws_alg_from_name(alg_name) : JWS_ALG_UNKNOWN;
	if ((jwk = h_jwks_find(kid)) == NULL) {
		*errstr = "id_token_hint is not signed by a key of ours";
		goto done;
	}
	jwk_alg = json_string_value(json_object_get(jwk, "alg"));
	if (alg == JWS_ALG_UNKNOWN || (jwk_alg != NULL && strcmp(jwk_alg, alg_name) != 0)) {
		*errstr = "id_token_hint has the wrong alg";
		goto done;
	}
	if ((key = jwk_to_pkey(jwk, 0, errstr)) == NULL)
		goto done;
	if (!jws_alg_fits_key(alg, key)) {
		*errstr = "id_token_hint has the wrong alg";
		goto done;
	}
	if (jws_verify(hint, key, alg, NULL, &claims, errstr) == -1)
		goto done;
	if ((s = json_string_value(json_object_get(claims, "iss"))) == NULL ||
	    strcmp(s, issuer) != 0) {
		*errstr = "id_token_hint is from another issuer";
		goto done;
	}
	if ((s = json_string_value(json_object_get(claims, "sub"))) == NULL) {
		*errstr = "id_token_hint has no sub";
		goto done;
	}
	*sub = xstrdup(s);
	aud = json_object_get(claims, "aud");
	if ((s = json_string_value(json_object_get(claims, "azp"))) == NULL) {
		if (json_is_array(aud) && json_array_size(aud) == 1)
			aud = json_array_get(aud, 0);
		s = json_string_value(aud);
	}
	if (s == NULL) {
		*errstr = "id_token_hint names no single client";
		free(*sub);
		*sub = NULL;
		goto done;
	}
	*client = xstrdup(s);
	rv = 0;
done:
	EVP_PKEY_free(key);
	json_decref(jwk);
	json_decref(hdr);
	json_decref(claims);
	return rv;
}

/* The signed-out page, or the redirect to the client's registered URI with state. */
static void
logout_finish(struct authz *a)
{
	struct evbuffer *b;
	char *url, *st;
	size_t n;

	if (!a->redirect_ok) {
		authz_page(a, 200, html_logged_out_page());
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatalx("logout: out of memory");
	evbuffer_add(b, a->p.redirect_uri, strlen(a->p.redirect_uri));
	if (a->p.state != NULL) {
		n = strlen(a->p.redirect_uri);
		st = form_encode(a->p.state);
		evbuffer_add_printf(b, "%sstate=%s",
		    strchr(a->p.redirect_uri, '?') == NULL ? "?" :
		    (a->p.redirect_uri[n - 1] == '?' || a->p.redirect_uri[n - 1] == '&') ?
		    "" : "&", st);
		free(st);
	}
	n = evbuffer_get_length(b);
	url = xmalloc(n + 1);
	evbuffer_remove(b, url, n);
	url[n] = '\0';
	evbuffer_free(b);
	authz_redirect_to(a, url);
	free(url);
}

static void
logout_ended(struct authz *a, const PGresult *res)
{
	if (PQntuples(res) == 1)
		log_info("%s: signed out: %s session(s) ended, %s refresh famil%s revoked",
		    a->r->id, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		    strcmp(PQgetvalue(res, 0, 1), "1") == 0 ? "y" : "ies");
	session_cookie_set(a->r, SESSION_COOKIE_SESSION, NULL);
	logout_finish(a);
}

/* End the session of the cookie (a->session), if any, then finish. */
static void
logout_end(struct authz *a)
{
	const char *params[1];

	if (a->session == NULL) {
		logout_finish(a);
		return;
	}
	session_hash_hex(a->session, a->session_hash);
	params[0] = a->session_hash;
	authz_query(a, STORE_BR_SESSION_END, 1, params, logout_ended);
}

/* Ask first: the confirmation page, whose form carries the parameters back. */
static void
logout_confirm(struct authz *a)
{
	char csrf[SESSION_TOKEN_SIZE];
	struct html_field f[3];
	struct html_logout l;
	size_t n = 0;

	session_csrf_token(a->browser != NULL ? a->browser :
	    (a->browser = session_browser(a->r)), csrf);
	if (a->c != NULL)
		f[n++] = (struct html_field){ "client_id", a->c->id };
	if (a->redirect_ok)
		f[n++] = (struct html_field){ "post_logout_redirect_uri",
		    a->p.redirect_uri };
	if (a->p.state != NULL)
		f[n++] = (struct html_field){ "state", a->p.state };
	memset(&l, 0, sizeof(l));
	l.action = "/logout";
	l.issuer = worker_conf(a->w)->issuer;
	l.client_name = a->c != NULL ? a->c->name : NULL;
	l.csrf_token = csrf;
	l.fields = f;
	l.nfields = n;
	authz_page(a, 200, html_logout_page(&l));
}

/* The session is known (a->signed_in): end it now, or ask. */
static void
logout_session_known(struct authz *a)
{
	if (!a->signed_in) {
		/* Nothing to end (the cookie, if any, is stale): clear it and go. */
		logout_end(a);
		return;
	}
	if (a->hint_sub != NULL && a->user_id != NULL && strcmp(a->hint_sub,
	    a->user_id) == 0) {
		logout_end(a);
		return;
	}
	logout_confirm(a);
}

/* The client is known or there is none: settle the redirect, then the session. */
static void
logout_client_known(struct authz *a)
{
	const char *u = authz_param(a, "post_logout_redirect_uri");

	if (u != NULL && a->c != NULL && authz_json_has(a->c->logout_uris, u)) {
		a->p.redirect_uri = xstrdup(u);
		a->redirect_ok = 1;
	} else if (u != NULL)
		log_info("%s: post_logout_redirect_uri not registered%s", a->r->id,
		    a->c == NULL ? " (no client named)" : "");
	if (a->confirmed) {
		logout_end(a);
		return;
	}
	if ((a->session = session_cookie_get(a->r, SESSION_COOKIE_SESSION)) == NULL) {
		logout_finish(a);
		return;
	}
	authz_load_session(a, logout_session_known);
}

void
h_logout(struct wreq *r)
{
	struct authz *a = authz_new(r);
	const char *hint, *cid, *st, *errstr;
	char *hclient = NULL;

	if (authz_parse_request(a) == -1)
		return;
	if (form_first_repeat(&a->form) != NULL) {
		authz_error_page(a, 400, "Invalid request", "A parameter is repeated.");
		return;
	}
	if (r->method == EVHTTP_REQ_POST && authz_param(a, "csrf_token") != NULL) {
		/* The confirmation form. */
		if (authz_check_csrf(a) == -1)
			return;
		a->confirmed = 1;
		a->session = session_cookie_get(r, SESSION_COOKIE_SESSION);
	}
	if ((st = authz_param(a, "state")) != NULL && strlen(st) <= AUTHZ_MAX_STATE)
		a->p.state = xstrdup(st);
	cid = authz_param(a, "client_id");
	if (!a->confirmed && (hint = authz_param(a, "id_token_hint")) != NULL) {
		if (authz_check_id_token_hint(hint, worker_conf(a->w)->issuer, &hclient,
		    &a->hint_sub, &errstr) == -1)
			log_info("%s: id_token_hint ignored: %s", r->id, errstr);
		else if (cid != NULL && strcmp(cid, hclient) != 0) {
			free(hclient);
			authz_error_page(a, 400, "Invalid request", "client_id does not "
			    "match the client of id_token_hint.");
			return;
		} else
			cid = hclient;
	}
	if (cid == NULL || strlen(cid) > 128) {
		free(hclient);
		logout_client_known(a);
		return;
	}
	authz_load_client(a, cid, logout_client_known);
	free(hclient);
}
