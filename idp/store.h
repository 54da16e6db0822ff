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
	/* ---- the browser side: h_authorize.c, h_login.c, h_consent.c, h_logout.c,
	 * session.c, users.c. Hashes travel as lower-case hex, times as epoch
	 * seconds; '' stands for "none" where a parameter is optional. ---- */
	STORE_BR_CLIENT_GET,	/* $1 client id: the client as the browser flow needs it */
	STORE_BR_SESSION_GET,	/* $1 session hash, $2 idle ttl s, $3 client id or '':
				 * user_id, auth_time, username, consented scopes
				 * (JSON or NULL), or no row; touches last_seen_at */
	STORE_BR_SESSION_NEW,	/* $1 new hash, $2 user id, $3 absolute ttl s, $4 old
				 * hash or '', $5 client id, $6 login, $7 address:
				 * auth_time, consented scopes (JSON or NULL) */
	STORE_BR_SESSION_END,	/* $1 session hash: ends it, revokes its refresh
				 * families: sessions ended, families revoked */
	STORE_BR_AUTHZ_NEW,	/* $1 request id hash, $2 browser hash, $3 client id,
				 * $4 params JSON, $5 ttl s */
	STORE_BR_AUTHZ_GET,	/* $1 request id hash, $2 browser hash: client_id,
				 * params JSON, created_at; or no row */
	STORE_BR_CONSENT_SAVE,	/* $1 user id, $2 client id, $3 scopes (space-separated) */
	STORE_BR_CODE_NEW,	/* $1 code hash, $2 client id, $3 user id, $4 session
				 * hash, $5 redirect_uri, $6 scope, $7 nonce, $8
				 * code_challenge, $9 method, $10 auth_time, $11 ttl s,
				 * $12 request id hash to delete (or '') */
	STORE_BR_USER_LOGIN,	/* $1 login, $2 address, $3 window s: one row: id,
				 * username, password_hash, disabled (NULLs: no such
				 * user), then failures and seconds left for the
				 * account, the address+account pair, the address */
	STORE_BR_LOGIN_FAILED,	/* $1 login, $2 address, $3 window s: count a failure */
	/* ---- the token side: h_token.c (authorization_code, refresh_token, password),
	 * h_userinfo.c, h_introspect.c, h_revoke.c, revocation.c. Same conventions:
	 * hashes (SHA-256 of the token or code's ASCII) as lower-case hex, times as
	 * epoch seconds, '' for "none". A statement that returns a user gives the
	 * STORE_UC_* columns first. ---- */
	STORE_TK_CODE_REDEEM,	/* $1 code hash, $2 client id, $3 access jti, $4 access
				 * exp, $5 family id or '': consumes the client's live
				 * code, records the access token and family to be
				 * issued from it, starts the family: STORE_UC_*,
				 * STORE_CR_*; or no row */
	STORE_TK_CODE_REPLAY,	/* $1 code hash: if the code was used, revokes its family
				 * and its access tokens: codes (0 or 1), families,
				 * jtis revoked */
	STORE_TK_REFRESH_FIRST,	/* $1 token hash, $2 family id, $3 client id, $4 user id,
				 * $5 scope, $6 auth_time, $7 ttl s: the family's first
				 * token, if the family is live (1 row, else 0) */
	STORE_TK_FAMILY_START,	/* $1 family id, $2 client id, $3 user id, $4 token
				 * hash, $5 scope, $6 auth_time, $7 ttl s, $8 access
				 * jti, $9 access exp: a new family and its first token */
	STORE_TK_REFRESH_GET,	/* $1 token hash: STORE_UC_*, STORE_RG_*; or no row */
	STORE_TK_REFRESH_ROTATE,/* $1 token hash, $2 successor hash, $3 successor_enc
				 * (hex), $4 ttl s, $5 access jti, $6 access exp: marks
				 * the live token used and inserts its successor (1
				 * row, else 0: it was not live any more) */
	STORE_TK_FAMILY_REVOKE,	/* $1 family id, $2 reason: families, jtis revoked */
	STORE_TK_REFRESH_REVOKE,/* $1 token hash, $2 client id, $3 reason: revokes the
				 * family of the client's token: families, jtis */
	STORE_TK_USER_GET,	/* $1 user id: STORE_UC_*; or no row */
	STORE_TK_JTI_REVOKE,	/* $1 jti, $2 client id, $3 exp */
	STORE_TK_JTI_GET,	/* $1 jti: its exp if revoked; or no row */
	STORE_TK_JTI_LOAD,	/* every revoked jti not yet expired: jti, exp */
	STORE_LISTEN_REVOCATIONS, /* LISTEN idp_revocations (run at every connect) */
	STORE__COUNT
};

/* The token side's columns. A user (users row): */
enum store_user_col {
	STORE_UC_ID = 0, STORE_UC_USERNAME, STORE_UC_NAME, STORE_UC_EMAIL,
	STORE_UC_EMAIL_VERIFIED, STORE_UC_ROLES /* JSON */, STORE_UC_DISABLED,
	STORE_UC__COUNT
};
/* STORE_TK_CODE_REDEEM, after the user: */
enum store_code_col {
	STORE_CR_REDIRECT_URI = STORE_UC__COUNT, STORE_CR_SCOPE, STORE_CR_NONCE,
	STORE_CR_CHALLENGE, STORE_CR_METHOD, STORE_CR_AUTH_TIME,
};
/* STORE_TK_REFRESH_GET, after the user: LIVE is 't' when neither expired nor
 * revoked (token or family); USED_AGE is seconds since used_at (fractional). */
enum store_refresh_col {
	STORE_RG_FAMILY = STORE_UC__COUNT, STORE_RG_CLIENT, STORE_RG_SCOPE,
	STORE_RG_AUTH_TIME, STORE_RG_LIVE, STORE_RG_USED, STORE_RG_USED_AGE,
	STORE_RG_SUCCESSOR_ENC, STORE_RG_CREATED, STORE_RG_EXPIRES,
};

/* Columns of STORE_CLIENT_GET, in order. Arrays come as JSON text. */
enum store_client_col {
	STORE_CC_ID = 0, STORE_CC_PUBLIC, STORE_CC_DISABLED, STORE_CC_GRANTS,
	STORE_CC_SCOPES, STORE_CC_DEFAULT_SCOPES, STORE_CC_AUDIENCES,
	STORE_CC_DEFAULT_AUDIENCE, STORE_CC_SECRETS,
};

#define STORE_MAX_PARAMS	12
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
