/* signclient.h: a worker's connection to the signer: pipelined signing requests over one
 * Unix socket, the key set the signer pushes, reconnection when the signer restarts. */
#ifndef IDP_SIGNCLIENT_H
#define IDP_SIGNCLIENT_H

#include <stddef.h>

struct event_base;
struct signclient;
struct sign_req;

#define SIGN_TIMEOUT_MS		5000	/* a request without a reply by then fails */
#define SIGN_MAX_PENDING	65536	/* requests waiting for a reply, at most */

enum sign_status {
	SIGN_OK = 0,		/* jws holds the compact JWS */
	SIGN_ERROR,		/* the signer refused (jws holds its short message) */
	SIGN_UNAVAILABLE,	/* no reply within SIGN_TIMEOUT_MS */
	SIGN_CANCELLED,		/* signclient_cancel() was called */
};

/* The result of a request, called exactly once; jws (len bytes, NUL-terminated) is
 * borrowed for the duration of the call, NULL unless SIGN_OK or SIGN_ERROR. */
typedef void	signclient_cb(enum sign_status, const char *jws, size_t len, void *arg);
/* An IPC_KEYS payload (JSON, len bytes, NUL-terminated), borrowed for the call. */
typedef void	signclient_keys_cb(const char *payload, size_t len, void *arg);
/* Called with up = 1 when the signer is ready on a connection (its first IPC_KEYS has
 * come) and up = 0 when that connection drops. */
typedef void	signclient_state_cb(int up, void *arg);

/* Connect to the signer's socket at path on base, and stay connected: when the
 * connection drops or cannot be made, try again after 50 ms, doubling to 2 s. Returns a
 * new client (never NULL). */
struct signclient *signclient_new(struct event_base *base, const char *path,
		    signclient_keys_cb *keys_cb, signclient_state_cb *state_cb, void *arg);
/* 1 while connected to a signer that has sent its keys. */
int		 signclient_up(const struct signclient *);

/* Ask for claims (compact JSON, len bytes) to be signed as a JWS with header typ.
 * Requests are written out together once per loop iteration, and only to a signer
 * that has sent its keys; those in flight when the connection drops are sent again
 * after reconnecting. Returns the request, valid until
 * its callback has been called (never from inside this function), or NULL without
 * calling cb when SIGN_MAX_PENDING requests are waiting already. */
struct sign_req	*signclient_sign(struct signclient *, const char *typ, const char *claims,
		    size_t len, signclient_cb *cb, void *arg);
/* Cancel a request: its callback is called at once with SIGN_CANCELLED and never
 * again; a reply that still arrives is ignored. */
void		 signclient_cancel(struct sign_req *);

#endif
