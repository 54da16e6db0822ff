/* authz.h: what the browser endpoints (h_authorize.c, h_login.c, h_consent.c) share:
 * one request context, the client as the browser flow sees it, the validated
 * authorization request, and the steps from a known user to a code. */
#ifndef IDP_AUTHZ_H
#define IDP_AUTHZ_H

#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "form.h"
#include "session.h"
#include "store.h"

struct worker;
struct wreq;
struct users_login;

#define AUTHZ_REQUEST_TTL_S	1800	/* a pending request waits this long for a form */
#define AUTHZ_MAX_PARAMS	64
#define AUTHZ_MAX_STATE		2048
#define AUTHZ_MAX_NONCE		512
#define AUTHZ_MAX_HINT		254

/* A client as the browser flow needs it (STORE_BR_CLIENT_GET). */
struct bclient {
	char	*id;
	char	*name;
	int	 public;
	int	 disabled;
	int	 first_party;
	int	 allow_plain_pkce;
	json_t	*grants;		/* arrays of strings */
	json_t	*scopes;
	json_t	*redirect_uris;
	json_t	*logout_uris;
};

/* Parse a STORE_BR_CLIENT_GET row; NULL if res has none or it is malformed. The
 * caller frees with bclient_free. */
struct bclient	*bclient_parse(const PGresult *res);
void		 bclient_free(struct bclient *);
/* 1 if the JSON array of strings a holds s. */
int		 authz_json_has(const json_t *a, const char *s);

/* The validated authorization request. Strings are owned; NULL when absent. */
struct authz_params {
	char	*client_id;
	char	*redirect_uri;
	char	*scope;			/* granted: space-separated, deduplicated */
	char	*state;
	char	*nonce;
	char	*code_challenge;
	char	*code_challenge_method;	/* "S256" or "plain" */
	char	*login_hint;
	int	 prompt_none;
	int	 prompt_login;
	int	 prompt_consent;
	int	 form_post;		/* response_mode=form_post, else query */
	long	 max_age;		/* -1: none */
};

/* The request context of a browser endpoint; it owns all of the request's
 * allocations and is freed by the reply functions below. */
struct authz {
	struct wreq		*r;
	struct worker		*w;
	struct form		 form;
	struct authz_params	 p;
	struct bclient		*c;
	int			 redirect_ok;	/* p.redirect_uri is the client's */
	int			 redirect_status;	/* 302 after GET, 303 after POST */
	char			*browser;	/* the browser cookie */
	char			*session;	/* the session cookie, or NULL */
	char			 session_hash[SESSION_HASH_SIZE];
	/* The signed-in user, once known. */
	int			 signed_in;
	char			*user_id;
	char			*username;
	long long		 auth_time;
	json_t			*consented;	/* scopes the user allowed, or NULL */
	int			 just_authenticated;
	/* The pending request (authorization_requests), once stored or loaded. */
	char			 request_id[SESSION_TOKEN_SIZE];	/* "" none */
	char			 code[SESSION_TOKEN_SIZE];	/* once issued */
	long long		 request_created;
	/* What the request waits for. */
	struct store_query	*q;
	struct users_login	*login;
	void			(*next)(struct authz *);	/* after a query */
	void			(*next2)(struct authz *);	/* after a load */
	/* The login page to show once the request is stored: static strings, or
	 * owned by form or p. */
	const char		*login_error;
	const char		*login_username;
	int			 login_status;
	char			*login_buf;	/* a login_error made for the request */
	/* /logout: the subject of a valid id_token_hint; the confirmation form. */
	char			*hint_sub;
	int			 confirmed;
};

/* A new context for r, which owns it (r->hctx) and is cancelled through it. */
struct authz	*authz_new(struct wreq *r);

/* Replies; each frees a and ends the request. */
/* An HTML page built by html.c (taken over), with the security headers; the form
 * origins are the redirect URI, when one is known. */
void		 authz_page(struct authz *a, int status, char *page);
/* html_error_page(title, message). */
void		 authz_error_page(struct authz *a, int status, const char *title,
		    const char *message);
/* 503 page. */
void		 authz_unavailable(struct authz *a);
/* Back to the client's redirect URI (a->redirect_ok must be set) with error,
 * error_description, state and iss. */
void		 authz_redirect_error(struct authz *a, const char *error,
		    const char *description);
/* 302 (after GET) or 303 (after POST) to url; the request ends. */
void		 authz_redirect_to(struct authz *a, const char *url);
/* Parse the request's parameters (the query of a GET, the form of a POST) into
 * a->form; repeats allowed. 0, or -1 after an error page. */
int		 authz_parse_request(struct authz *a);
/* 499: the client went away. */
void		 authz_gone(struct authz *a);

/* Run stmt; a->q is the handle meanwhile. cb gets a successful result; every other
 * outcome (cancelled, unavailable, failed) is answered here. Returns 0, or -1 after
 * replying 503. */
int		 authz_query(struct authz *a, enum store_stmt stmt, int n,
		    const char *const *params,
		    void (*cb)(struct authz *, const PGresult *));

/* Parse the form body of a POST (application/x-www-form-urlencoded) into a->form,
 * refusing repeated parameters. 0, or -1 after replying with an error page. */
int		 authz_parse_post(struct authz *a);
/* The CSRF check of a form: 0, or -1 after replying 403. */
int		 authz_check_csrf(struct authz *a);
/* Check an id_token_hint (/authorize and /logout): our signature and our issuer;
 * expiry does not matter. On success 0 with the client (azp, or the single aud) and
 * sub as new strings; else -1 and *errstr (static, safe to log). */
int		 authz_check_id_token_hint(const char *hint, const char *issuer,
		    char **client, char **sub, const char **errstr);
/* A form parameter ("" counts as absent). */
const char	*authz_param(struct authz *a, const char *name);

/* Load client id into a->c, then call next(a). Replies itself when the client is
 * unknown or disabled (error page) or the database is down. */
void		 authz_load_client(struct authz *a, const char *id,
		    void (*next)(struct authz *));
/* Load the pending request named by the form's "request" field (bound to this
 * browser), then its client, then call next(a) with a->p and a->c set and
 * a->redirect_ok. Replies itself when it has expired. */
void		 authz_load_request(struct authz *a, void (*next)(struct authz *));
/* Look up the session cookie's session (a->session must be set), then call next(a):
 * a->signed_in says whether it is live. */
void		 authz_load_session(struct authz *a, void (*next)(struct authz *));

/* The user is known (a->signed_in): go on to consent or the code. */
void		 authz_decide(struct authz *a);
/* Show the login page (storing the pending request first if need be), with error
 * (or NULL) and the given status. */
void		 authz_show_login(struct authz *a, int status, const char *error,
		    const char *username);
/* The user allowed (consent): remember it, then issue the code. */
void		 authz_consent_allow(struct authz *a);

#endif
