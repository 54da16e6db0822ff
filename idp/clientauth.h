/* clientauth.h: the request side of the endpoints that authenticate OAuth clients
 * (/token, /introspect, /revoke): their form bodies, client authentication by
 * client_secret_basic, client_secret_post or (public clients) none, and the request
 * that /introspect and /revoke share. */
#ifndef IDP_CLIENTAUTH_H
#define IDP_CLIENTAUTH_H

#include <stdint.h>

#include <jansson.h>

#include "form.h"

struct wreq;
struct worker;
struct client;
struct client_entry;
struct clientauth;
struct store_query;

#define CLIENTAUTH_MAX_PARAMS	32
#define CLIENTAUTH_MAX_CLIENT_ID	128
#define CLIENTAUTH_MAX_SECRET	256

/* Read r's body into f: the media type must be application/x-www-form-urlencoded, at
 * most CLIENTAUTH_MAX_PARAMS parameters, none repeated (RFC 6749 section 3.2) but
 * those named in repeatable (NULL-terminated, may be NULL). Returns 0 (f to be freed
 * with form_free), or -1 + a static *errstr for invalid_request (f freed). */
int		 clientauth_form(struct wreq *r, struct form *f,
		    const char *const *repeatable, const char **errstr);
/* A parameter of f, NULL when absent or empty (RFC 6749 section 3.1). */
const char	*clientauth_param(const struct form *f, const char *name);
/* Zero every value of f (secrets, tokens, passwords) and free it. */
void		 clientauth_form_free(struct form *f);

/* Accept "none" (client_id alone) from a client registered as public (RFC 6749
 * section 2.1; PKCE then protects its codes). */
#define CLIENTAUTH_ALLOW_PUBLIC	0x1

enum clientauth_status {
	CLIENTAUTH_OK = 0,
	CLIENTAUTH_INVALID,		/* 401 invalid_client (counted as a failure) */
	CLIENTAUTH_BAD_REQUEST,		/* 400 invalid_request */
	CLIENTAUTH_LIMITED,		/* 429: too many failures (retry_after) */
	CLIENTAUTH_UNAVAILABLE,		/* 503: database or hash pool */
	CLIENTAUTH_CANCELLED,		/* the HTTP client went away */
};

struct clientauth_result {
	enum clientauth_status	 status;
	/* CLIENTAUTH_OK: the client, and a reference to its cache entry that the
	 * callback takes over (clients_release). NULL otherwise. */
	const struct client	*client;
	struct client_entry	*ce;
	int			 none;		/* authenticated by client_id alone */
	const char		*description;	/* static; for error_description */
	uint64_t		 retry_after;	/* CLIENTAUTH_LIMITED: seconds */
};

/* Called exactly once, never from inside clientauth_start; res is borrowed for the
 * call. */
typedef void	clientauth_cb(const struct clientauth_result *res, void *arg);

/* Authenticate the client of r from its Authorization header or from f (borrowed until
 * the callback): the client cache, the verified-secret cache, then (the failure
 * limiter permitting) Argon2id on the hash pool. Failures count against the client id
 * and the remote address. Sets r->client_id once the client is known. Returns a handle
 * for clientauth_cancel, valid until cb has been called. */
struct clientauth *clientauth_start(struct wreq *r, const struct form *f, unsigned flags,
		    clientauth_cb *cb, void *arg);
/* The HTTP client went away: cb gets CLIENTAUTH_CANCELLED, at once or, while Argon2id
 * runs (a failure must still be counted, or closing the connection would evade the
 * limiter), when it ends. */
void		 clientauth_cancel(struct clientauth *);

/* End r with the reply of a failed result (RFC 6749 section 5.2: 401 invalid_client
 * with WWW-Authenticate, 400, 429 or 503 with Retry-After, 499 when cancelled). */
void		 clientauth_reply(struct wreq *r, const struct clientauth_result *res);

/* ---- /introspect and /revoke --------------------------------------------------- */

struct clientauth_tokreq;

/* What an endpoint does with the one token of its request (RFC 7662, RFC 7009) once the
 * client is authenticated: access for a JWS, refresh for what has a refresh token's
 * shape, other for anything else. Each ends t in exactly one reply. */
struct clientauth_tokops {
	unsigned	 flags;		/* for clientauth_start */
	void		(*access)(struct clientauth_tokreq *t);
	void		(*refresh)(struct clientauth_tokreq *t);
	void		(*other)(struct clientauth_tokreq *t);
};

/* Such a request, r->hctx while it lives. The endpoint's functions use the fields. */
struct clientauth_tokreq {
	struct wreq			*r;
	struct worker			*w;
	struct form			 form;
	const char			*token;		/* owned by form */
	struct clientauth		*auth;
	struct client_entry		*ce;
	const struct client		*c;		/* authenticated; owned by ce */
	json_t				*claims;	/* an access token's, or NULL */
	struct store_query		*q;		/* the endpoint waits for it */
	const struct clientauth_tokops	*ops;
};

/* Serve r, a POST with a token parameter: 400 invalid_request for a bad form or no
 * token, clientauth_reply when client authentication fails, else one of ops. */
void		 clientauth_tokreq_start(struct wreq *r,
		    const struct clientauth_tokops *ops);
/* Free t (its form zeroed, its client released, its claims) and return its request,
 * for the reply that must follow. */
struct wreq	*clientauth_tokreq_end(struct clientauth_tokreq *t);
/* End t with 503 temporarily_unavailable and Retry-After. */
void		 clientauth_tokreq_unavailable(struct clientauth_tokreq *t,
		    const char *description);

#endif
