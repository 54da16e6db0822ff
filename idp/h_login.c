/* h_login.c: POST /login, the login form of a pending authorization request: CSRF
 * check, the request loaded, the password checked (users.c: throttle, Argon2id), and
 * on success a new session, then consent or the code (h_authorize.c).
 *
 * The form: csrf_token, request (the pending request's id), username, password. A
 * wrong username and a wrong password get the same page, HTML_LOGIN_FAILED, at the
 * same cost. Every sign-in makes a new session cookie: an earlier session in this
 * browser ends (its refresh-token families follow the same user to the new one), so
 * a cookie planted before the login is never promoted to a signed-in session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "authz.h"
#include "html.h"
#include "idp.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "users.h"
#include "worker.h"
#include "xalloc.h"

static void
login_session_made(struct authz *a, const PGresult *res)
{
	json_error_t jerr;

	if (PQntuples(res) != 1) {
		authz_unavailable(a);
		return;
	}
	session_cookie_set(a->r, SESSION_COOKIE_SESSION, a->session);
	a->signed_in = 1;
	a->just_authenticated = 1;
	a->auth_time = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (!PQgetisnull(res, 0, 1))
		a->consented = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
	authz_decide(a);
}

static void
login_done(const struct users_outcome *o, void *arg)
{
	struct authz *a = arg;
	const struct idp_config *conf = worker_conf(a->w);
	const char *params[7];
	char old[SESSION_HASH_SIZE], ttl[32], buf[160];
	char *prev;

	a->login = NULL;
	switch (o->result) {
	case USERS_CANCELLED:
		authz_gone(a);
		return;
	case USERS_UNAVAILABLE:
		authz_unavailable(a);
		return;
	case USERS_THROTTLED:
		snprintf(buf, sizeof(buf), "%ld", o->retry_after);
		wreq_header(a->r, "Retry-After", buf);
		snprintf(buf, sizeof(buf), "Too many failed sign-in attempts. Try again in "
		    "%ld minute%s.", (o->retry_after + 59) / 60,
		    (o->retry_after + 59) / 60 == 1 ? "" : "s");
		log_info("%s: login throttled from %s", a->r->id, a->r->addr);
		a->login_buf = xstrdup(buf);
		authz_show_login(a, 429, a->login_buf, authz_param(a, "username"));
		return;
	case USERS_BAD:
		log_info("%s: login failed from %s", a->r->id, a->r->addr);
		authz_show_login(a, 200, HTML_LOGIN_FAILED, authz_param(a, "username"));
		return;
	case USERS_DISABLED:
		log_info("%s: login of a disabled user from %s", a->r->id, a->r->addr);
		authz_show_login(a, 200, "This account is disabled.",
		    authz_param(a, "username"));
		return;
	case USERS_OK:
		break;
	}
	a->user_id = xstrdup(o->user_id);
	a->username = xstrdup(o->username);
	log_info("%s: user %s signed in from %s", a->r->id, a->user_id, a->r->addr);

	/* The session cookie this browser had, if any, ends now. */
	prev = session_cookie_get(a->r, SESSION_COOKIE_SESSION);
	if (prev != NULL) {
		session_hash_hex(prev, old);
		free(prev);
	} else
		old[0] = '\0';
	free(a->session);
	a->session = xmalloc(SESSION_TOKEN_SIZE);
	session_token_new(a->session);
	session_hash_hex(a->session, a->session_hash);
	snprintf(ttl, sizeof(ttl), "%ld", conf->session_absolute_ttl);
	params[0] = a->session_hash;
	params[1] = a->user_id;
	params[2] = ttl;
	params[3] = old;
	params[4] = a->c->id;
	params[5] = authz_param(a, "username");
	params[6] = a->r->addr;
	authz_query(a, STORE_BR_SESSION_NEW, 7, params, login_session_made);
}

static void
login_request_loaded(struct authz *a)
{
	const char *user = authz_param(a, "username");
	const char *pw = authz_param(a, "password");

	session_peer_addr(a->r);
	if (user == NULL || pw == NULL || strlen(user) > USERS_LOGIN_MAX ||
	    strlen(pw) > USERS_PASSWORD_MAX) {
		authz_show_login(a, 200, HTML_LOGIN_FAILED, user != NULL &&
		    strlen(user) <= USERS_LOGIN_MAX ? user : NULL);
		return;
	}
	a->login = users_login(a->w, user, pw, a->r->addr, login_done, a);
}

void
h_login(struct wreq *r)
{
	struct authz *a = authz_new(r);

	a->redirect_status = 303;
	if (authz_parse_post(a) == -1 || authz_check_csrf(a) == -1)
		return;
	authz_load_request(a, login_request_loaded);
}
