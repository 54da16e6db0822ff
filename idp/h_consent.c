/* h_consent.c: POST /consent, the consent form of a pending authorization request:
 * "Allow" remembers the scopes for the user and client (consents) and issues the
 * code; "Deny" sends the browser back with access_denied.
 *
 * The form: csrf_token, request, decision ("allow" or "deny"). The user is the one
 * the session cookie names now; if that session has ended, or no longer satisfies
 * the request's prompt=login or max_age, the login page comes first.
 */
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "log.h"
#include "session.h"
#include "worker.h"
#include "xalloc.h"

static void
consent_session_known(struct authz *a)
{
	const char *d = authz_param(a, "decision");

	/* Signed in since the request came, or recently enough for its max_age. */
	if (!a->signed_in || (a->p.prompt_login && a->auth_time < a->request_created) ||
	    (a->p.max_age >= 0 && a->auth_time < a->request_created - a->p.max_age)) {
		authz_show_login(a, 200, NULL, NULL);
		return;
	}
	if (d != NULL && strcmp(d, "allow") == 0) {
		log_info("%s: user %s allowed %s: %s", a->r->id, a->user_id, a->c->id,
		    a->p.scope);
		authz_consent_allow(a);
	} else if (d != NULL && strcmp(d, "deny") == 0) {
		log_info("%s: user %s denied %s", a->r->id, a->user_id, a->c->id);
		authz_redirect_error(a, "access_denied", "the user denied the request");
	} else
		authz_error_page(a, 400, "Invalid request",
		    "The form has no decision. Go back to the application and try again.");
}

static void
consent_request_loaded(struct authz *a)
{
	if ((a->session = session_cookie_get(a->r, SESSION_COOKIE_SESSION)) == NULL) {
		authz_show_login(a, 200, NULL, NULL);
		return;
	}
	authz_load_session(a, consent_session_known);
}

void
h_consent(struct wreq *r)
{
	struct authz *a = authz_new(r);

	a->redirect_status = 303;
	if (authz_parse_post(a) == -1 || authz_check_csrf(a) == -1)
		return;
	authz_load_request(a, consent_request_loaded);
}
