/* html.h: the provider's server-rendered pages (login, consent, error, logout, the
 * form_post response) and the security headers they are sent with. No JavaScript but
 * the form_post page's one line; everything reflected is escaped. */
#ifndef IDP_HTML_H
#define IDP_HTML_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/http.h>

/* The login failure message: it never says which of the two was wrong. */
#define HTML_LOGIN_FAILED	"The username or password is incorrect."

/* A hidden form field the caller carries through a form (the authorization request
 * id, state, ...). A NULL name skips the field; a NULL value is sent as "". */
struct html_field {
	const char	*name;
	const char	*value;
};

/* Every string below is borrowed for the call, may be any bytes (invalid UTF-8 and
 * control characters are replaced by U+FFFD) and is escaped wherever it is written.
 * NULL is allowed where a member says "or NULL". */

struct html_login {
	const char		*action;	/* form action, e.g. "/login" */
	const char		*client_name;	/* "Sign in to <client_name>"; or NULL */
	const char		*username;	/* prefilled, or NULL */
	const char		*error;		/* e.g. HTML_LOGIN_FAILED, or NULL */
	const char		*csrf_token;
	const struct html_field	*fields;	/* extra hidden fields */
	size_t			 nfields;
};

struct html_consent {
	const char		*action;
	const char		*client_name;	/* or NULL */
	const char		*username;	/* "Signed in as <username>", or NULL */
	const char		*scope;		/* space-separated, as in the request */
	const char		*csrf_token;
	const struct html_field	*fields;
	size_t			 nfields;
};

struct html_logout {
	const char		*action;
	const char		*issuer;	/* "Sign out of <host of issuer>?" */
	const char		*client_name;	/* the client asking, or NULL */
	const char		*csrf_token;
	const struct html_field	*fields;
	size_t			 nfields;
};

/*
 * Pages. Each returns a complete HTML5 document as a new NUL-terminated string that
 * the caller frees with free(); they never fail (out of memory is fatal). Send them
 * with html_security_headers() and then the page with no content type of its own
 * (wreq_reply(r, status, NULL, page, strlen(page))), or Content-Type appears twice.
 */

/* The login form: username and password fields, hidden csrf_token and fields, a
 * button "Sign in"; the error message above the form when given. */
char	*html_login_page(const struct html_login *);
/* The consent form: the scopes described (openid, profile, email, offline_access;
 * any other scope by its name), hidden csrf_token and fields, and two buttons named
 * "decision", "Allow" (value "allow") and "Deny" (value "deny"). */
char	*html_consent_page(const struct html_consent *);
/* A page with a heading and a message, for errors that must not redirect (unknown
 * client, unregistered redirect URI): it has no form and no link. The caller picks
 * the status. title or message may be NULL. */
char	*html_error_page(const char *title, const char *message);
/* "Sign out of <issuer host>?" with a form: hidden csrf_token and fields, a button
 * "Sign out". */
char	*html_logout_page(const struct html_logout *);
/* "You are signed out". */
char	*html_logged_out_page(void);
/* The authorization response in response_mode=form_post (OAuth 2.0 Form Post Response
 * Mode): "Continue to <host of action>" and a form that POSTs the fields to action,
 * submitted at once by the page's one script line, or by its "Continue" button where
 * scripts do not run. Send it with html_form_post_headers(). */
char	*html_form_post_page(const char *action, const struct html_field *fields,
	    size_t nfields);

/* The scope's description on the consent page, or NULL for a scope not known here. */
const char *html_scope_description(const char *scope);

/*
 * Escaping for HTML text and for double- or single-quoted attribute values alike:
 * & < > " ' ` = become character references; valid UTF-8 passes through unchanged;
 * each maximal invalid UTF-8 subpart, NUL and the other C0 controls except TAB, LF
 * and CR, DEL, the C1 controls (U+0080-U+009F) and Unicode noncharacters become
 * U+FFFD. The output never contains a byte that could end a quoted attribute value or
 * start a tag, so it is safe in text and in quoted attributes; never in unquoted
 * attributes, script, style, comments or URLs the browser will follow.
 */
/* s escaped as a new string (caller frees); NULL gives "". */
char	*html_escape(const char *s);
/* len bytes of s escaped and appended to out (out of memory is fatal). */
void	 html_escape_buf(struct evbuffer *out, const char *s, size_t len);

/*
 * Set the headers every page is sent with, replacing any earlier ones of these names:
 *	Content-Type: text/html; charset=utf-8
 *	Content-Security-Policy: default-src 'none'; form-action 'self' <issuer origin>
 *	    <form origins>; frame-ancestors 'none'; base-uri 'none';
 *	    style-src 'sha256-<hash of the pages' style block>'
 *	X-Frame-Options: DENY
 *	Referrer-Policy: no-referrer
 *	X-Content-Type-Options: nosniff
 *	Cache-Control: no-store
 *
 * form-action is also checked by browsers against every redirect that follows the
 * form's POST, so form_origins lists where such redirects may go: the origins of the
 * client's redirect URIs (or post-logout redirect URIs) the answer may redirect to.
 * issuer (or NULL) and each of the norigins form_origins may be a whole URL: an
 * http(s) URL is reduced to its origin (scheme://host[:port], lower case, a port of
 * "*" kept), any other scheme to a scheme source ("com.example.app:"). What CSP cannot
 * express or must never allow is left out: URLs with userinfo, IP literals in
 * brackets, hosts with characters other than letters, digits, '-' and '.', and the
 * schemes javascript, data, blob, filesystem, about, file and vbscript. Duplicates are
 * dropped. Leaving a source out only makes the policy stricter, so the headers are set
 * in every case; the return value says whether all were used: 0 when they were, -1
 * with *errstr (static, safe to log; errstr may be NULL) naming the first left out.
 * An issuer on an IP literal in brackets is always left out ('self' covers it).
 *
 * Note for the form handlers: with Referrer-Policy: no-referrer, browsers send
 * "Origin: null" with the form POSTs of these pages, so CSRF protection must rest on
 * the csrf_token (optionally with Sec-Fetch-Site), not on Origin or Referer.
 */
int	 html_security_headers(struct evhttp_request *req, const char *issuer,
	    const char *const *form_origins, size_t norigins, const char **errstr);

/* html_security_headers() plus "script-src <html_script_hash()>", for the form_post
 * page alone. form_origins must admit the page's form action. */
int	 html_form_post_headers(struct evhttp_request *req, const char *issuer,
	    const char *const *form_origins, size_t norigins, const char **errstr);

/* The CSP source of the style block: "'sha256-<base64>'" (computed once, on first
 * use); and of the form_post page's script. */
const char *html_style_hash(void);
const char *html_script_hash(void);

#endif
