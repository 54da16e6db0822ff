/* store.h: a worker's asynchronous PostgreSQL connection: prepared statements run one
 * at a time from a FIFO queue, results delivered to callbacks, LISTEN notifications. */
#ifndef IDP_STORE_H
#define IDP_STORE_H

#include <libpq-fe.h>

struct event_base;

/* Every statement the worker runs; their SQL is in one table in store.c. */
enum store_stmt {
	STORE_CLIENT_GET = 0,	/* $1 client id: the client and its live secret hashes */
	STORE_LISTEN_CLIENTS,	/* LISTEN idp_clients (run at every connect) */
	STORE__COUNT
};

/* Columns of STORE_CLIENT_GET, in order. Arrays come as JSON text. */
enum store_client_col {
	STORE_CC_ID = 0, STORE_CC_PUBLIC, STORE_CC_DISABLED, STORE_CC_GRANTS,
	STORE_CC_SCOPES, STORE_CC_DEFAULT_SCOPES, STORE_CC_AUDIENCES,
	STORE_CC_DEFAULT_AUDIENCE, STORE_CC_SECRETS,
};

#define STORE_MAX_PARAMS	4
#define STORE_QUERY_TIMEOUT_MS	5000	/* a query older than this fails (503) */

enum store_status {
	STORE_OK = 0,		/* res is PGRES_TUPLES_OK or PGRES_COMMAND_OK */
	STORE_ERROR,		/* the statement failed: res holds the error */
	STORE_UNAVAILABLE,	/* no database within the time bound: res is NULL */
	STORE_CANCELLED,	/* store_cancel() was called: res is NULL */
};

/* The callback of a query, called exactly once. res is borrowed: store.c clears it
 * after the callback returns. */
typedef void	store_cb(enum store_status, const PGresult *res, void *arg);
/* Called with each notification (channel, payload) on channels the store listens on. */
typedef void	store_notify_cb(const char *channel, const char *payload, void *arg);
/* Called with up = 1 after every (re)connection is ready (statements prepared and LISTEN
 * done: notifications may have been missed before it), and with up = 0 when it is lost. */
typedef void	store_state_cb(int up, void *arg);

struct store;
struct store_query;

/* Start connecting to conninfo (a libpq conninfo string or URI) on base. The
 * connection is made and kept up in the background: on loss it reconnects with back-off
 * (100 ms doubling to 5 s). Returns a new store (never NULL). */
struct store	*store_new(struct event_base *base, const char *conninfo,
		    store_notify_cb *notify_cb, store_state_cb *state_cb, void *arg);
/* Close the connection; every query still queued gets STORE_CANCELLED first. */
void		 store_free(struct store *);
/* 1 when the connection is up and its statements are prepared. */
int		 store_up(const struct store *);

/* Queue statement stmt with nparams text parameters (copied). Returns a handle for
 * store_cancel, valid until the callback has been called; or NULL without calling cb
 * when the database is known to be unreachable (a connection attempt has failed since
 * it was lost) or the queue is full, so the caller can answer 503 at once. A query
 * whose connection is lost is sent again, once, after reconnecting; one that takes
 * longer than STORE_QUERY_TIMEOUT_MS gets STORE_UNAVAILABLE. */
struct store_query *store_exec(struct store *, enum store_stmt stmt, int nparams,
		    const char *const *params, store_cb *cb, void *arg);
/* Cancel a query: its callback is called at once with STORE_CANCELLED and never again
 * (a result that still arrives is discarded). */
void		 store_cancel(struct store_query *);

/* The statement's name, for messages. */
const char	*store_stmt_name(enum store_stmt);

#endif
