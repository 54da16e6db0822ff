/* session.h: the browser's two cookies (the session cookie of a signed-in user and
 * the browser cookie that anchors CSRF tokens and pending authorization requests), CSRF
 * tokens, and the random values and hashes of the browser flow. */
#ifndef IDP_SESSION_H
#define IDP_SESSION_H

#include <stddef.h>

struct idp_config;
struct wreq;

/* A random value (cookie, request id, code): 32 bytes in base64url, 43 characters. */
#define SESSION_TOKEN_BYTES	32
#define SESSION_TOKEN_LEN	43
#define SESSION_TOKEN_SIZE	(SESSION_TOKEN_LEN + 1)
/* SHA-256 as lower-case hex, NUL-terminated: how hashes go to the database. */
#define SESSION_HASH_SIZE	65

enum session_cookie {
	SESSION_COOKIE_SESSION,		/* a signed-in user's session */
	SESSION_COOKIE_BROWSER,		/* this browser, signed in or not */
};

/* The cookie's name: with an https issuer "__Host-idp_session" / "__Host-idp_browser"
 * (the prefix makes browsers refuse it unless Secure, Path=/ and host-only, so no
 * sibling host can plant one), else "idp_session" / "idp_browser". */
const char	*session_cookie_name(const struct idp_config *, enum session_cookie);

/* The value of the request's cookie as a new string (caller frees) when it is a
 * well-formed token (SESSION_TOKEN_LEN base64url characters); else NULL. The first
 * occurrence counts. */
char		*session_cookie_get(struct wreq *r, enum session_cookie which);

/* Add a Set-Cookie header: value with HttpOnly; SameSite=Lax; Path=/ (and Secure with
 * an https issuer) and no expiry (it lasts as long as the browser session; the
 * server enforces lifetimes). value NULL clears the cookie (Max-Age=0). */
void		 session_cookie_set(struct wreq *r, enum session_cookie which,
		    const char *value);

/* The browser cookie of the request; when it has none, a new one, which is also set
 * on the response. Returns a new string (caller frees). */
char		*session_browser(struct wreq *r);

/* A new random token into out. */
void		 session_token_new(char out[SESSION_TOKEN_SIZE]);

/* SHA-256 of the string s (its bytes, without the NUL) as lower-case hex. */
void		 session_hash_hex(const char *s, char out[SESSION_HASH_SIZE]);

/*
 * CSRF. A form's csrf_token is derived from the browser cookie: base64url of
 * SHA-256("idp csrf v1:" || cookie). A page can show it without showing the cookie
 * (HttpOnly), and a site that cannot read the cookie cannot make it. The check is in
 * constant time.
 */
void		 session_csrf_token(const char *browser, char out[SESSION_TOKEN_SIZE]);
/* 1 if token is browser's CSRF token; 0 otherwise (either may be NULL). */
int		 session_csrf_check(const char *browser, const char *token);

/* The peer address of r into r->addr (the dispatcher fills it for /token only). */
void		 session_peer_addr(struct wreq *r);

#endif
