/* revocation.c: the in-memory set of revoked access-token ids of a worker.
 *
 * JWT access tokens are checked without the database (h_introspect.c, h_userinfo.c):
 * the signature says the token is ours and unaltered, this set says whether it was
 * revoked before its expiry. Every revocation is a row in revoked_jtis (jti, expires_at
 * = the token's exp); the row's INSERT trigger NOTIFYs idp_revocations with the jti,
 * which each worker's store hands to revocation_notify, so every worker of every
 * instance learns of it within a round trip. The notification carries only the jti,
 * so the entry is first kept for the longest a token can live and its own expiry is
 * then read from the row.
 *
 * Notifications are lost while the connection is down. So on every (re)connection the
 * whole table (rows not yet expired) is loaded again; until that load is back, the set
 * says it is not synced and callers that must be sure ask the database for the one
 * jti. Entries leave the set once their token has expired, by a sweep every minute.
 *
 * The table is a chained hash keyed with SipHash under a random key (jti values come
 * from outside, so bucket positions must not be choosable), doubled when it fills.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "log.h"
#include "revocation.h"
#include "store.h"
#include "xalloc.h"

#define REVOCATION_SWEEP_S	60
#define REVOCATION_MIN_BUCKETS	256

struct rv_entry {
	struct rv_entry	*next;
	long long	 exp;
	char		 jti[];
};

struct revocation {
	struct event_base	*base;
	struct store		*st;
	long			 max_ttl;
	struct rv_entry		**buckets;
	size_t			 nbuckets;	/* power of two */
	size_t			 n;
	unsigned char		 key[crypto_shorthash_KEYBYTES];
	struct event		*sweep_ev;
	unsigned		 gen;		/* bumped by every unsync */
	int			 synced;
	int			 loaded;
	struct store_query	*load;		/* in flight */
};

/* A load of the table, for the connection generation gen. */
struct rv_load {
	struct revocation	*rv;
	unsigned		 gen;
};

static size_t
rv_index(const struct revocation *rv, const char *jti)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const unsigned char *)jti, strlen(jti), rv->key);
	memcpy(&v, h, sizeof(v));
	return (size_t)v & (rv->nbuckets - 1);
}

static struct rv_entry *
rv_find(const struct revocation *rv, const char *jti)
{
	struct rv_entry *e;

	for (e = rv->buckets[rv_index(rv, jti)]; e != NULL; e = e->next)
		if (strcmp(e->jti, jti) == 0)
			return e;
	return NULL;
}

static void
rv_grow(struct revocation *rv)
{
	struct rv_entry **old = rv->buckets, *e, *next;
	size_t oldn = rv->nbuckets, i, k;

	rv->nbuckets = oldn * 2;
	rv->buckets = xcalloc(rv->nbuckets, sizeof(*rv->buckets));
	for (i = 0; i < oldn; i++)
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			k = rv_index(rv, e->jti);
			e->next = rv->buckets[k];
			rv->buckets[k] = e;
		}
	free(old);
}

/* Set jti's expiry to exp: with later, only if that is later than the current one. */
static void
rv_set(struct revocation *rv, const char *jti, long long exp, int later)
{
	struct rv_entry *e;
	size_t len = strlen(jti), k;

	if (len == 0 || len > REVOCATION_MAX_JTI)
		return;
	if ((e = rv_find(rv, jti)) != NULL) {
		if (!later || exp > e->exp)
			e->exp = exp;
		return;
	}
	if (rv->n >= rv->nbuckets)
		rv_grow(rv);
	e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->jti, jti, len + 1);
	e->exp = exp;
	k = rv_index(rv, jti);
	e->next = rv->buckets[k];
	rv->buckets[k] = e;
	rv->n++;
}

void
revocation_add(struct revocation *rv, const char *jti, long long exp)
{
	rv_set(rv, jti, exp, 1);
}

int
revocation_has(const struct revocation *rv, const char *jti, long long now)
{
	const struct rv_entry *e;

	if (strlen(jti) > REVOCATION_MAX_JTI)
		return 0;
	return (e = rv_find(rv, jti)) != NULL && e->exp >= now;
}

size_t
revocation_count(const struct revocation *rv)
{
	return rv->n;
}

static void
rv_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct revocation *rv = arg;
	struct rv_entry **pp, *e;
	long long now = (long long)time(NULL);
	size_t i;

	for (i = 0; i < rv->nbuckets; i++)
		for (pp = &rv->buckets[i]; (e = *pp) != NULL; ) {
			if (e->exp < now) {
				*pp = e->next;
				free(e);
				rv->n--;
			} else
				pp = &e->next;
		}
}

struct revocation *
revocation_new(struct event_base *base, struct store *st, long max_ttl)
{
	struct timeval tv = { REVOCATION_SWEEP_S, 0 };
	struct revocation *rv = xcalloc(1, sizeof(*rv));

	rv->base = base;
	rv->st = st;
	rv->max_ttl = max_ttl;
	rv->nbuckets = REVOCATION_MIN_BUCKETS;
	rv->buckets = xcalloc(rv->nbuckets, sizeof(*rv->buckets));
	randombytes_buf(rv->key, sizeof(rv->key));
	if (base != NULL) {
		if ((rv->sweep_ev = event_new(base, -1, EV_PERSIST, rv_sweep_cb,
		    rv)) == NULL)
			fatalx("revocation: event_new");
		event_add(rv->sweep_ev, &tv);
	}
	return rv;
}

void
revocation_free(struct revocation *rv)
{
	struct rv_entry *e, *next;
	size_t i;

	if (rv == NULL)
		return;
	if (rv->load != NULL)
		store_cancel(rv->load);
	for (i = 0; i < rv->nbuckets; i++)
		for (e = rv->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(rv->buckets);
	if (rv->sweep_ev != NULL)
		event_free(rv->sweep_ev);
	free(rv);
}

static void
rv_load_cb(enum store_status s, const PGresult *res, void *arg)
{
	struct rv_load *l = arg;
	struct revocation *rv = l->rv;
	int i, n;

	if (s == STORE_CANCELLED) {
		free(l);
		return;
	}
	rv->load = NULL;
	if (s != STORE_OK) {
		log_warnx("revocations: cannot load the revoked token ids");
		free(l);
		return;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		rv_set(rv, PQgetvalue(res, i, 0), strtoll(PQgetvalue(res, i, 1), NULL, 10),
		    1);
	if (l->gen == rv->gen) {
		rv->synced = 1;
		rv->loaded = 1;
	}
	log_debug("revocations: %d revoked token ids loaded, %zu in the set", n, rv->n);
	free(l);
}

void
revocation_sync(struct revocation *rv)
{
	struct rv_load *l;

	if (rv->st == NULL)
		return;
	if (rv->load != NULL) {
		store_cancel(rv->load);
		rv->load = NULL;
	}
	rv->synced = 0;
	l = xcalloc(1, sizeof(*l));
	l->rv = rv;
	l->gen = ++rv->gen;
	if ((rv->load = store_exec(rv->st, STORE_TK_JTI_LOAD, 0, NULL, rv_load_cb,
	    l)) == NULL) {
		log_warnx("revocations: cannot queue the load");
		free(l);
	}
}

void
revocation_unsync(struct revocation *rv)
{
	rv->gen++;
	rv->synced = 0;
}

int
revocation_synced(const struct revocation *rv)
{
	return rv->synced;
}

int
revocation_loaded(const struct revocation *rv)
{
	return rv->loaded;
}

/* The expiry of a notified jti, read from its row. */
struct rv_exp {
	struct revocation	*rv;
	char			 jti[];
};

static void
rv_exp_cb(enum store_status s, const PGresult *res, void *arg)
{
	struct rv_exp *x = arg;

	if (s == STORE_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		rv_set(x->rv, x->jti, strtoll(PQgetvalue(res, 0, 0), NULL, 10), 0);
	free(x);
}

void
revocation_notify(struct revocation *rv, const char *jti)
{
	const char *params[1];
	struct rv_exp *x;
	size_t len;

	if (jti == NULL || (len = strlen(jti)) == 0 || len > REVOCATION_MAX_JTI)
		return;
	rv_set(rv, jti, (long long)time(NULL) + rv->max_ttl, 1);
	if (rv->st == NULL)
		return;
	/* XXX one query per revocation and worker: fine for revocations, which are
	 * rare; batch them should they ever come by the thousand. */
	x = xmalloc(sizeof(*x) + len + 1);
	x->rv = rv;
	memcpy(x->jti, jti, len + 1);
	params[0] = x->jti;
	if (store_exec(rv->st, STORE_TK_JTI_GET, 1, params, rv_exp_cb, x) == NULL)
		free(x);
}

/* A check the set could not answer alone. */
struct rv_check {
	struct revocation	*rv;
	revocation_cb		*cb;
	void			*arg;
	long long		 now;
	char			 jti[];
};

/* What the set says when the database cannot. */
static enum revocation_answer
rv_fallback(const struct revocation *rv, const char *jti, long long now)
{
	if (!rv->loaded)
		return REVOCATION_UNKNOWN;
	return revocation_has(rv, jti, now) ? REVOCATION_YES : REVOCATION_NO;
}

static void
rv_check_cb(enum store_status s, const PGresult *res, void *arg)
{
	struct rv_check *c = arg;
	enum revocation_answer a;

	switch (s) {
	case STORE_OK:
		a = PQntuples(res) > 0 ? REVOCATION_YES : REVOCATION_NO;
		/* The set may have it from a notification the query raced. */
		if (a == REVOCATION_NO && revocation_has(c->rv, c->jti, c->now))
			a = REVOCATION_YES;
		break;
	case STORE_CANCELLED:
		a = REVOCATION_CANCELLED;
		break;
	default:
		a = rv_fallback(c->rv, c->jti, c->now);
		break;
	}
	c->cb(a, c->arg);
	free(c);
}

enum revocation_answer
revocation_check(struct revocation *rv, const char *jti, long long now,
    revocation_cb *cb, void *arg, struct store_query **q)
{
	const char *params[1];
	struct rv_check *c;
	size_t len = strlen(jti);

	*q = NULL;
	if (rv->synced || len > REVOCATION_MAX_JTI)
		return revocation_has(rv, jti, now) ? REVOCATION_YES : REVOCATION_NO;
	if (rv->st == NULL)
		return rv_fallback(rv, jti, now);
	c = xmalloc(sizeof(*c) + len + 1);
	c->rv = rv;
	c->cb = cb;
	c->arg = arg;
	c->now = now;
	memcpy(c->jti, jti, len + 1);
	params[0] = c->jti;
	if ((*q = store_exec(rv->st, STORE_TK_JTI_GET, 1, params, rv_check_cb,
	    c)) == NULL) {
		free(c);
		return rv_fallback(rv, jti, now);
	}
	return REVOCATION_PENDING;
}
