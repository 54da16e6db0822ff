/* clients.h: a worker's view of the clients table: a cache of clients with their live
 * secret hashes, the verified-secret cache, the failure limiter, and client policy
 * (grants, scopes, audiences). */
#ifndef IDP_CLIENTS_H
#define IDP_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct hashpool;
struct store;

/* A client as the database has it (STORE_CLIENT_GET). */
struct client {
	char	 *id;
	int	  public;
	int	  disabled;
	char	**grants;
	size_t	  ngrants;
	char	**scopes;		/* allowed */
	size_t	  nscopes;
	char	**default_scopes;
	size_t	  ndefault_scopes;
	char	**audiences;		/* allowed */
	size_t	  naudiences;
	char	 *default_audience;	/* NULL when none */
	char	**hashes;		/* live Argon2id secret hashes */
	size_t	  nhashes;
};

/* Build a client from the text values of the columns of STORE_CLIENT_GET (enum
 * store_client_col order; NULL for SQL NULL; arrays as JSON). Returns a new client
 * (client_free) or NULL + *errstr. */
struct client	*client_parse(const char *const *values, size_t nvalues,
		    const char **errstr);
void		 client_free(struct client *);
/* 1 if the client may use grant. */
int		 client_has_grant(const struct client *, const char *grant);

/* The scope of a token: requested (a space-separated list; NULL, empty or only spaces:
 * none) must be a subset of the client's scopes, duplicates dropped, order kept; with none
 * requested, the client's default scopes. Returns 0 and a new string in *out ("" for no
 * scope), or -1 + *errstr (invalid_scope). */
int		 client_scope_select(const struct client *, const char *requested,
		    char **out, const char **errstr);
/* The aud of a token: each of the n requested audiences (resource or audience
 * parameters) must be one the client is allowed (exact match), duplicates dropped; with
 * none requested, the client's default audience, else issuer. Returns a new JSON string
 * (one audience) or array (several), or NULL + *errstr (invalid_target). */
json_t		*client_audience_select(const struct client *, const char *const *requested,
		    size_t n, const char *issuer, const char **errstr);

/*
 * The cache. Entries are reference counted: every struct client_entry handed out must be
 * given back with clients_release. An entry says either "this client" or "no such
 * client"; a NOTIFY (clients_invalidate) or a reconnection (clients_flush) takes entries
 * out, and the next request loads them again.
 */
struct clients;
struct client_entry;
struct clients_wait;
struct clients_verify;

enum clients_status {
	CLIENTS_OK = 0,		/* the entry is there (its client may be absent) */
	CLIENTS_PENDING,	/* a load is on its way: the callback will say */
	CLIENTS_UNAVAILABLE,	/* the database cannot say now */
	CLIENTS_CANCELLED,
};

enum clients_auth {
	CLIENTS_AUTH_OK = 0,	/* the secret is right */
	CLIENTS_AUTH_BAD,	/* the secret is wrong */
	CLIENTS_AUTH_UNKNOWN,	/* not in the verified-secret cache: Argon2id needed */
	CLIENTS_AUTH_CANCELLED,
};

#define CLIENTS_MAX_ENTRIES	10000
#define CLIENTS_TTL_MS		(10 * 60 * 1000)	/* reload now and then, even so */
#define CLIENTS_ABSENT_TTL_MS	(30 * 1000)		/* "no such client" */

/* Called once with CLIENTS_OK and a referenced entry, or CLIENTS_UNAVAILABLE /
 * CLIENTS_CANCELLED and NULL. */
typedef void	clients_get_cb(enum clients_status, struct client_entry *, void *arg);
/* Called once with CLIENTS_AUTH_OK, _BAD or _CANCELLED. */
typedef void	clients_verify_cb(enum clients_auth, void *arg);

/* A cache of at most max_entries clients (oldest unused evicted), loading through st
 * and verifying secrets on hp. */
struct clients	*clients_new(struct store *st, struct hashpool *hp, size_t max_entries);

/* Drop every entry and free the cache. Entries still referenced are freed by their last
 * clients_release; none may be loading or verifying. */
void		 clients_free(struct clients *);

/* Find client id. CLIENTS_OK: *out is a referenced entry, at once. CLIENTS_PENDING:
 * *wait is a handle for clients_get_cancel and cb will be called. CLIENTS_UNAVAILABLE:
 * nothing to wait for (the database is down). */
enum clients_status clients_get(struct clients *, const char *id, struct client_entry **out,
		    struct clients_wait **wait, clients_get_cb *cb, void *arg);
/* Stop waiting: cb is called at once with CLIENTS_CANCELLED, never again. */
void		 clients_get_cancel(struct clients_wait *);
void		 clients_release(struct client_entry *);
/* The entry's client, or NULL when there is no such client. */
const struct client *clients_entry_client(const struct client_entry *);

/* Put client c (taken over) in the cache as if loaded, replacing an entry for the same
 * id that is not loading. For tests. */
void		 clients_put(struct clients *, struct client *c);
/* A change to client id (NOTIFY idp_clients): its entry goes. */
void		 clients_invalidate(struct clients *, const char *id);
/* Every entry goes (after a reconnection, when notifications may have been lost). */
void		 clients_flush(struct clients *);
/* Entries in the table. */
size_t		 clients_count(const struct clients *);

/* The verified-secret cache: OK if this secret was verified for this entry before, BAD
 * if it was found wrong before or the client has no live secret, else UNKNOWN.
 * Costs one keyed BLAKE2b and constant-time compares. */
enum clients_auth clients_secret_cached(struct clients *, struct client_entry *,
		    const char *secret, size_t len);
/* Verify secret with Argon2id on the hash pool against the entry's live hashes and
 * remember the outcome. Concurrent checks of the same secret share one run. Returns a
 * handle for clients_verify_cancel, or NULL (cb not called) when the hash queue is
 * full. */
struct clients_verify *clients_secret_verify(struct clients *, struct client_entry *,
		    const char *secret, size_t len, clients_verify_cb *cb, void *arg);
/* Stop waiting: cb is called at once with CLIENTS_AUTH_CANCELLED, never again. */
void		 clients_verify_cancel(struct clients_verify *);

/*
 * The failure limiter: per key (a client id, a remote address), failures counted in a
 * fixed window of LIMITER_WINDOW_MS from the first one. From LIMITER_DELAY_AFTER
 * failures on, each attempt waits LIMITER_DELAY_BASE_MS doubling per further failure, at
 * most LIMITER_DELAY_MAX_MS; from LIMITER_BLOCK_AFTER on, attempts are refused (429)
 * until the window ends. The table is a fixed array (the oldest entries make room), and
 * it can live in memory shared by every worker, so that the limits hold for the whole
 * server, not per worker. It is approximate by design: lock-free updates from several
 * processes may now and then lose a count.
 */
#define LIMITER_WINDOW_MS	60000
#define LIMITER_DELAY_AFTER	5
#define LIMITER_BLOCK_AFTER	20
#define LIMITER_DELAY_BASE_MS	100
#define LIMITER_DELAY_MAX_MS	2000
#define LIMITER_KEYBYTES	16

enum limiter_verdict {
	LIMIT_OK = 0,
	LIMIT_DELAY,		/* wait *delay_ms first */
	LIMIT_BLOCK,		/* refuse; *retry_after_s until the window ends */
};

struct limiter;

/* A limiter over len bytes of zeroed memory at mem (shared between processes when the
 * memory is), keys hashed with key; or, with mem NULL, over private memory of len
 * bytes. Returns a new handle (limiter_free frees the handle, and private memory). */
struct limiter	*limiter_new(void *mem, size_t len, const unsigned char key[LIMITER_KEYBYTES]);
void		 limiter_free(struct limiter *);
/* Entries the table can hold. */
size_t		 limiter_capacity(const struct limiter *);
enum limiter_verdict limiter_check(struct limiter *, const char *key, uint64_t now_ms,
		    uint64_t *delay_ms, uint64_t *retry_after_s);
void		 limiter_failure(struct limiter *, const char *key, uint64_t now_ms);
/* Forget key (a client that proved its secret). Not for addresses: their failures
 * stay until the window ends. */
void		 limiter_forget(struct limiter *, const char *key);
/* Keys whose window is open at now_ms. */
size_t		 limiter_count(const struct limiter *, uint64_t now_ms);

#endif
