/* revocation.h: a worker's in-memory set of revoked access-token ids (jti), kept in
 * step with the revoked_jtis table through LISTEN idp_revocations. */
#ifndef IDP_REVOCATION_H
#define IDP_REVOCATION_H

#include <stddef.h>

struct event_base;
struct store;
struct revocation;

/* Longest jti the set (and revoked_jtis) holds; longer ones are never ours. */
#define REVOCATION_MAX_JTI	256

/* A new, empty set that loads from st (revocation_sync) and sweeps expired entries
 * once a minute on base. max_ttl is the longest a token can live (seconds): the time a
 * jti learnt from a notification is kept until its own expiry has been read. */
struct revocation *revocation_new(struct event_base *base, struct store *st, long max_ttl);
void		 revocation_free(struct revocation *);

/* The database connection is up (again): load every revoked jti that has not expired,
 * since notifications may have been missed. Until that load is done the set is not
 * synced. */
void		 revocation_sync(struct revocation *);
/* The connection is lost: the set stops being synced. */
void		 revocation_unsync(struct revocation *);
/* 1 when the set is complete: loaded since the connection came up, and kept in step
 * by notifications since. Otherwise a caller that must be sure asks the database
 * (STORE_TK_JTI_GET). */
int		 revocation_synced(const struct revocation *);
/* 1 when the set has been loaded at least once (so it is complete but for what was
 * revoked while the connection was down). */
int		 revocation_loaded(const struct revocation *);

/* NOTIFY idp_revocations with payload jti: the jti is revoked at once; its expiry is
 * read from the database afterwards (until then it is kept for max_ttl). */
void		 revocation_notify(struct revocation *, const char *jti);
/* Add jti, revoked until exp (epoch seconds); an entry already there keeps the later
 * expiry. */
void		 revocation_add(struct revocation *, const char *jti, long long exp);
/* 1 if jti is in the set (and not yet expired at now, epoch seconds). */
int		 revocation_has(const struct revocation *, const char *jti, long long now);
/* Whether jti is revoked, for callers that must be sure. */
enum revocation_answer {
	REVOCATION_NO = 0,
	REVOCATION_YES,
	REVOCATION_PENDING,	/* asking the database: the callback will say */
	REVOCATION_UNKNOWN,	/* nobody can say now (no database, never loaded) */
	REVOCATION_CANCELLED,	/* only to the callback, after store_cancel */
};
typedef void	revocation_cb(enum revocation_answer, void *arg);
struct store_query;

/* Is jti (of a token that expires at exp) revoked? When the set is synced it answers
 * at once (NO or YES; cb is not called). Otherwise the database is asked and
 * REVOCATION_PENDING returned: *q is the query (store_cancel makes cb get
 * REVOCATION_CANCELLED), and cb gets NO or YES, or, when the database fails, the set's
 * answer if it was ever loaded and REVOCATION_UNKNOWN if not. Without a database at
 * all, the same fallback comes at once. */
enum revocation_answer revocation_check(struct revocation *, const char *jti,
		    long long now, revocation_cb *cb, void *arg, struct store_query **q);
/* Entries in the set. */
size_t		 revocation_count(const struct revocation *);

#endif
