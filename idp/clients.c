/* clients.c: the client cache, the verified-secret cache and the failure limiter of a
 * worker, and the client policy that picks a token's scope and audience.
 *
 * The verified-secret cache. Checking a client secret against its Argon2id hash costs
 * tens of milliseconds on purpose; doing it on every /token call would cap a worker at a
 * few dozen tokens a second. So each cached client remembers MACs of the secrets that
 * passed the check, MAC = BLAKE2b keyed with 32 random bytes drawn when the process
 * starts: a presented secret whose MAC is there is right, for the cost of one BLAKE2b
 * and a few constant-time compares. The MACs are useless outside this process (the key
 * never leaves it, never reaches disk), and a secret is never stored. A secret found
 * wrong is remembered the same way, so that repeating a wrong secret costs no Argon2id
 * either. Each entry keeps only CLIENTS_MACS of each kind.
 *
 * Coherence. The entry holds the client row and its live secret hashes as loaded; the
 * MACs are only meaningful for that set of hashes. Any change to a client or its secrets
 * fires NOTIFY idp_clients with the client id (sql/001_init.sql), and the entry goes
 * with all its MACs; a reconnection to the database drops every entry, since
 * notifications may have been missed while it was down. A NOTIFY that arrives while an
 * entry loads makes it load again (the row read may predate the change). Entries also
 * expire (CLIENTS_TTL_MS), a safety net should notifications ever be lost otherwise.
 *
 * Concurrency is that of one event loop: loads are coalesced (one query per client id at
 * a time, every request waiting on it), and so are Argon2id runs (one per entry and
 * presented secret).
 */
#include <sys/queue.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "clients.h"
#include "hashpool.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

#define CLIENTS_MACS		4
#define CLIENTS_MAC_BYTES	32
#define CLIENTS_MAX_RELOADS	3

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

static uint64_t
clients_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- a string-keyed table with an age order ------------------------------------- */

struct knode {
	LIST_ENTRY(knode)	 chain;
	TAILQ_ENTRY(knode)	 age;		/* oldest first */
	char			*key;
};
LIST_HEAD(kchain, knode);
TAILQ_HEAD(kage, knode);

struct kmap {
	struct kchain	*buckets;
	size_t		 mask;
	size_t		 n;
	struct kage	 age;
	/* SipHash key: bucket positions cannot be chosen from outside. */
	unsigned char	 hkey[crypto_shorthash_KEYBYTES];
};

static void
kmap_init(struct kmap *m, size_t max_entries)
{
	size_t nb = 64, i;

	while (nb < max_entries && nb < ((size_t)1 << 20))
		nb <<= 1;
	m->buckets = xreallocarray(NULL, nb, sizeof(*m->buckets));
	for (i = 0; i < nb; i++)
		LIST_INIT(&m->buckets[i]);
	m->mask = nb - 1;
	m->n = 0;
	TAILQ_INIT(&m->age);
	randombytes_buf(m->hkey, sizeof(m->hkey));
}

static struct kchain *
kmap_bucket(struct kmap *m, const char *key)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const unsigned char *)key, strlen(key), m->hkey);
	memcpy(&v, h, sizeof(v));
	return &m->buckets[v & m->mask];
}

static struct knode *
kmap_find(struct kmap *m, const char *key)
{
	struct knode *n;

	LIST_FOREACH(n, kmap_bucket(m, key), chain)
		if (strcmp(n->key, key) == 0)
			return n;
	return NULL;
}

static void
kmap_insert(struct kmap *m, struct knode *n, const char *key)
{
	n->key = xstrdup(key);
	LIST_INSERT_HEAD(kmap_bucket(m, key), n, chain);
	TAILQ_INSERT_TAIL(&m->age, n, age);
	m->n++;
}

static void
kmap_remove(struct kmap *m, struct knode *n)
{
	LIST_REMOVE(n, chain);
	TAILQ_REMOVE(&m->age, n, age);
	m->n--;
	free(n->key);
	n->key = NULL;
}

static void
kmap_touch(struct kmap *m, struct knode *n)
{
	TAILQ_REMOVE(&m->age, n, age);
	TAILQ_INSERT_TAIL(&m->age, n, age);
}

/* --- clients -------------------------------------------------------------------- */

static void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A JSON array of strings into a new vector; -1 if it is something else. */
static int
strv_from_json(const char *text, char ***out, size_t *n)
{
	json_error_t jerr;
	json_t *a, *e;
	size_t i;

	*out = NULL;
	*n = 0;
	if (text == NULL)
		return 0;
	if ((a = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return -1;
	if (json_is_null(a)) {
		json_decref(a);
		return 0;
	}
	if (!json_is_array(a)) {
		json_decref(a);
		return -1;
	}
	*out = xreallocarray(NULL, json_array_size(a) + 1, sizeof(**out));
	json_array_foreach(a, i, e) {
		if (!json_is_string(e)) {
			strv_free(*out, *n);
			*out = NULL;
			*n = 0;
			json_decref(a);
			return -1;
		}
		(*out)[(*n)++] = xstrdup(json_string_value(e));
	}
	json_decref(a);
	return 0;
}

static int
strv_has(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

struct client *
client_parse(const char *const *values, size_t nvalues, const char **errstr)
{
	struct client *c;

	if (nvalues < STORE_CC_SECRETS + 1 || values[STORE_CC_ID] == NULL) {
		*errstr = "client row has too few columns";
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->id = xstrdup(values[STORE_CC_ID]);
	c->public = values[STORE_CC_PUBLIC] != NULL && values[STORE_CC_PUBLIC][0] == 't';
	c->disabled = values[STORE_CC_DISABLED] != NULL &&
	    values[STORE_CC_DISABLED][0] == 't';
	if (values[STORE_CC_DEFAULT_AUDIENCE] != NULL &&
	    values[STORE_CC_DEFAULT_AUDIENCE][0] != '\0')
		c->default_audience = xstrdup(values[STORE_CC_DEFAULT_AUDIENCE]);
	if (strv_from_json(values[STORE_CC_GRANTS], &c->grants, &c->ngrants) == -1 ||
	    strv_from_json(values[STORE_CC_SCOPES], &c->scopes, &c->nscopes) == -1 ||
	    strv_from_json(values[STORE_CC_DEFAULT_SCOPES], &c->default_scopes,
	    &c->ndefault_scopes) == -1 ||
	    strv_from_json(values[STORE_CC_AUDIENCES], &c->audiences,
	    &c->naudiences) == -1 ||
	    strv_from_json(values[STORE_CC_SECRETS], &c->hashes, &c->nhashes) == -1) {
		client_free(c);
		*errstr = "client row has a malformed array";
		return NULL;
	}
	return c;
}

void
client_free(struct client *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->id);
	strv_free(c->grants, c->ngrants);
	strv_free(c->scopes, c->nscopes);
	strv_free(c->default_scopes, c->ndefault_scopes);
	strv_free(c->audiences, c->naudiences);
	free(c->default_audience);
	for (i = 0; i < c->nhashes; i++)
		sodium_memzero(c->hashes[i], strlen(c->hashes[i]));
	strv_free(c->hashes, c->nhashes);
	free(c);
}

int
client_has_grant(const struct client *c, const char *grant)
{
	return strv_has(c->grants, c->ngrants, grant);
}

/* RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
static int
scope_token_ok(const char *s, size_t n)
{
	size_t i;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch < 0x21 || ch == 0x22 || ch == 0x5c || ch > 0x7e)
			return 0;
	}
	return n > 0;
}

int
client_scope_select(const struct client *c, const char *requested, char **out,
    const char **errstr)
{
	char **picked;
	size_t npicked = 0, cap, len = 0, i, n;
	const char *p;
	char *s, *tok;

	*out = NULL;
	if (requested == NULL || requested[strspn(requested, " ")] == '\0') {
		for (i = 0; i < c->ndefault_scopes; i++)
			len += strlen(c->default_scopes[i]) + 1;
		s = xmalloc(len + 1);
		s[0] = '\0';
		for (i = 0, len = 0; i < c->ndefault_scopes; i++) {
			n = strlen(c->default_scopes[i]);
			if (len > 0)
				s[len++] = ' ';
			memcpy(s + len, c->default_scopes[i], n);
			len += n;
			s[len] = '\0';
		}
		*out = s;
		return 0;
	}
	cap = strlen(requested) / 2 + 1;
	picked = xreallocarray(NULL, cap, sizeof(*picked));
	for (p = requested; *p != '\0'; p += n) {
		p += strspn(p, " ");
		if ((n = strcspn(p, " ")) == 0)
			break;
		if (!scope_token_ok(p, n)) {
			*errstr = "scope is malformed";
			goto fail;
		}
		tok = xstrndup(p, n);
		if (!strv_has(c->scopes, c->nscopes, tok)) {
			free(tok);
			*errstr = "requested scope is not allowed for this client";
			goto fail;
		}
		if (strv_has(picked, npicked, tok)) {
			free(tok);
			continue;
		}
		picked[npicked++] = tok;
		len += n + 1;
	}
	s = xmalloc(len + 1);
	s[0] = '\0';
	for (i = 0, len = 0; i < npicked; i++) {
		n = strlen(picked[i]);
		if (len > 0)
			s[len++] = ' ';
		memcpy(s + len, picked[i], n);
		len += n;
		s[len] = '\0';
	}
	strv_free(picked, npicked);
	*out = s;
	return 0;
fail:
	strv_free(picked, npicked);
	return -1;
}

json_t *
client_audience_select(const struct client *c, const char *const *requested, size_t n,
    const char *issuer, const char **errstr)
{
	json_t *a;
	size_t i, j;
	int dup;

	if (n == 0)
		return json_string(c->default_audience != NULL ? c->default_audience :
		    issuer);
	a = json_array();
	for (i = 0; i < n; i++) {
		if (!strv_has(c->audiences, c->naudiences, requested[i])) {
			json_decref(a);
			*errstr = "requested audience is not allowed for this client";
			return NULL;
		}
		for (dup = 0, j = 0; j < i; j++)
			dup |= strcmp(requested[j], requested[i]) == 0;
		if (!dup)
			json_array_append_new(a, json_string(requested[i]));
	}
	if (json_array_size(a) == 1) {
		json_t *one = json_incref(json_array_get(a, 0));

		json_decref(a);
		return one;
	}
	return a;
}

/* --- the cache ------------------------------------------------------------------ */

struct clients_wait {
	TAILQ_ENTRY(clients_wait) entry;
	struct client_entry	*ce;
	clients_get_cb		*cb;
	void			*arg;
};
TAILQ_HEAD(clients_waitq, clients_wait);

struct clients_verify {
	TAILQ_ENTRY(clients_verify) entry;
	struct clients_vjob	*vj;
	clients_verify_cb	*cb;
	void			*arg;
};
TAILQ_HEAD(clients_verifyq, clients_verify);

/* One Argon2id run for one entry and one presented secret (known by its MAC). */
struct clients_vjob {
	LIST_ENTRY(clients_vjob) entry;
	struct client_entry	*ce;
	unsigned char		 mac[CLIENTS_MAC_BYTES];
	struct clients_verifyq	 waiters;
};
LIST_HEAD(clients_vjobs, clients_vjob);

enum ce_state { CE_LOADING, CE_READY };

struct client_entry {
	struct knode		 node;
	struct clients		*cl;
	enum ce_state		 state;
	struct client		*client;	/* NULL: no such client */
	int			 refs;		/* the table holds one while in it */
	int			 in_table;
	int			 invalidated;	/* a NOTIFY came while loading */
	int			 reloads;
	uint64_t		 expires;
	char			*id;
	struct clients_waitq	 waiters;
	struct clients_vjobs	 vjobs;
	unsigned char		 good[CLIENTS_MACS][CLIENTS_MAC_BYTES];
	unsigned		 ngood, good_next;
	unsigned char		 bad[CLIENTS_MACS][CLIENTS_MAC_BYTES];
	unsigned		 nbad, bad_next;
};

struct clients {
	struct store		*st;
	struct hashpool		*hp;
	size_t			 max_entries;
	struct kmap		 map;
	unsigned char		 mackey[crypto_generichash_KEYBYTES];
};

struct clients *
clients_new(struct store *st, struct hashpool *hp, size_t max_entries)
{
	struct clients *cl = xcalloc(1, sizeof(*cl));

	cl->st = st;
	cl->hp = hp;
	cl->max_entries = max_entries > 0 ? max_entries : 1;
	kmap_init(&cl->map, cl->max_entries);
	randombytes_buf(cl->mackey, sizeof(cl->mackey));
	return cl;
}

size_t
clients_count(const struct clients *cl)
{
	return cl->map.n;
}

static void
ce_free(struct client_entry *ce)
{
	client_free(ce->client);
	sodium_memzero(ce->good, sizeof(ce->good));
	sodium_memzero(ce->bad, sizeof(ce->bad));
	free(ce->id);
	free(ce);
}

void
clients_release(struct client_entry *ce)
{
	if (ce != NULL && --ce->refs == 0)
		ce_free(ce);
}

const struct client *
clients_entry_client(const struct client_entry *ce)
{
	return ce->client;
}

/* Take ce out of the table; it lives on while others hold references. */
static void
ce_unlink(struct client_entry *ce)
{
	if (!ce->in_table)
		return;
	kmap_remove(&ce->cl->map, &ce->node);
	ce->in_table = 0;
	clients_release(ce);
}

void
clients_free(struct clients *cl)
{
	struct knode *n;

	if (cl == NULL)
		return;
	while ((n = TAILQ_FIRST(&cl->map.age)) != NULL)
		ce_unlink(container_of(n, struct client_entry, node));
	free(cl->map.buckets);
	sodium_memzero(cl->mackey, sizeof(cl->mackey));
	free(cl);
}

/* Make room for one more entry: the oldest entries that are not loading go. */
static void
clients_evict(struct clients *cl)
{
	struct knode *n, *next;
	struct client_entry *ce;

	for (n = TAILQ_FIRST(&cl->map.age); n != NULL && cl->map.n >= cl->max_entries;
	    n = next) {
		next = TAILQ_NEXT(n, age);
		ce = container_of(n, struct client_entry, node);
		if (ce->state != CE_LOADING)
			ce_unlink(ce);
	}
}

static void	clients_load_cb(enum store_status, const PGresult *, void *);

static int
ce_load(struct client_entry *ce)
{
	const char *params[1] = { ce->id };

	if (ce->cl->st == NULL)		/* a cache without a database (tests) */
		return -1;
	return store_exec(ce->cl->st, STORE_CLIENT_GET, 1, params, clients_load_cb,
	    ce) != NULL ? 0 : -1;
}

/* Tell every waiter of ce: status s (the entry itself with CLIENTS_OK). */
static void
ce_notify(struct client_entry *ce, enum clients_status s)
{
	struct clients_wait *w;

	ce->refs++;		/* callbacks may release the last other reference */
	while ((w = TAILQ_FIRST(&ce->waiters)) != NULL) {
		TAILQ_REMOVE(&ce->waiters, w, entry);
		if (s == CLIENTS_OK) {
			ce->refs++;
			w->cb(CLIENTS_OK, ce, w->arg);
		} else
			w->cb(s, NULL, w->arg);
		free(w);
	}
	clients_release(ce);
}

static void
clients_load_cb(enum store_status s, const PGresult *res, void *arg)
{
	struct client_entry *ce = arg;
	const char *values[STORE_CC_SECRETS + 1], *errstr;
	struct client *c = NULL;
	int i, nf;

	if (s == STORE_OK && ce->invalidated && ce->reloads < CLIENTS_MAX_RELOADS) {
		ce->invalidated = 0;
		ce->reloads++;
		if (ce_load(ce) == 0)
			return;
		s = STORE_UNAVAILABLE;
	}
	if (s == STORE_OK && PQntuples(res) > 0) {
		nf = PQnfields(res);
		if (nf > STORE_CC_SECRETS + 1)
			nf = STORE_CC_SECRETS + 1;
		for (i = 0; i < nf; i++)
			values[i] = PQgetisnull(res, 0, i) ? NULL : PQgetvalue(res, 0, i);
		if ((c = client_parse(values, (size_t)nf, &errstr)) == NULL) {
			log_warnx("client %s: %s", ce->id, errstr);
			s = STORE_ERROR;
		}
	}
	if (s != STORE_OK) {
		/* Nothing is cached from a failed load. */
		ce->refs++;
		ce_unlink(ce);
		ce_notify(ce, s == STORE_CANCELLED ? CLIENTS_CANCELLED :
		    CLIENTS_UNAVAILABLE);
		clients_release(ce);
		return;
	}
	ce->client = c;
	ce->state = CE_READY;
	ce->expires = clients_now() + (c != NULL ? CLIENTS_TTL_MS : CLIENTS_ABSENT_TTL_MS);
	ce->refs++;
	ce_notify(ce, CLIENTS_OK);
	/* Changed again and again while loading: serve what was read, keep nothing. */
	if (ce->invalidated)
		ce_unlink(ce);
	clients_release(ce);
}

enum clients_status
clients_get(struct clients *cl, const char *id, struct client_entry **out,
    struct clients_wait **wait, clients_get_cb *cb, void *arg)
{
	struct client_entry *ce = NULL;
	struct clients_wait *w;
	struct knode *n;

	*out = NULL;
	*wait = NULL;
	if ((n = kmap_find(&cl->map, id)) != NULL) {
		ce = container_of(n, struct client_entry, node);
		if (ce->state == CE_READY && clients_now() < ce->expires) {
			kmap_touch(&cl->map, n);
			ce->refs++;
			*out = ce;
			return CLIENTS_OK;
		}
		if (ce->state == CE_READY) {
			ce_unlink(ce);		/* expired */
			ce = NULL;
		}
	}
	if (ce == NULL) {
		ce = xcalloc(1, sizeof(*ce));
		ce->cl = cl;
		ce->state = CE_LOADING;
		ce->id = xstrdup(id);
		ce->refs = 1;
		TAILQ_INIT(&ce->waiters);
		LIST_INIT(&ce->vjobs);
		if (ce_load(ce) == -1) {
			ce_free(ce);
			return CLIENTS_UNAVAILABLE;
		}
		clients_evict(cl);
		kmap_insert(&cl->map, &ce->node, id);
		ce->in_table = 1;
	}
	w = xcalloc(1, sizeof(*w));
	w->ce = ce;
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&ce->waiters, w, entry);
	*wait = w;
	return CLIENTS_PENDING;
}

void
clients_get_cancel(struct clients_wait *w)
{
	TAILQ_REMOVE(&w->ce->waiters, w, entry);
	w->cb(CLIENTS_CANCELLED, NULL, w->arg);
	free(w);
}

void
clients_put(struct clients *cl, struct client *c)
{
	struct client_entry *ce;
	struct knode *n;

	if ((n = kmap_find(&cl->map, c->id)) != NULL) {
		ce = container_of(n, struct client_entry, node);
		if (ce->state == CE_LOADING) {
			client_free(c);
			return;
		}
		ce_unlink(ce);
	}
	ce = xcalloc(1, sizeof(*ce));
	ce->cl = cl;
	ce->state = CE_READY;
	ce->id = xstrdup(c->id);
	ce->client = c;
	ce->refs = 1;
	ce->expires = clients_now() + CLIENTS_TTL_MS;
	TAILQ_INIT(&ce->waiters);
	LIST_INIT(&ce->vjobs);
	clients_evict(cl);
	kmap_insert(&cl->map, &ce->node, c->id);
	ce->in_table = 1;
}

void
clients_invalidate(struct clients *cl, const char *id)
{
	struct client_entry *ce;
	struct knode *n;

	if ((n = kmap_find(&cl->map, id)) == NULL)
		return;
	ce = container_of(n, struct client_entry, node);
	if (ce->state == CE_LOADING)
		ce->invalidated = 1;
	else
		ce_unlink(ce);
}

void
clients_flush(struct clients *cl)
{
	struct knode *n, *next;
	struct client_entry *ce;

	for (n = TAILQ_FIRST(&cl->map.age); n != NULL; n = next) {
		next = TAILQ_NEXT(n, age);
		ce = container_of(n, struct client_entry, node);
		if (ce->state == CE_LOADING)
			ce->invalidated = 1;
		else
			ce_unlink(ce);
	}
}

/* --- the verified-secret cache ------------------------------------------------ */

static void
clients_mac(struct clients *cl, const char *secret, size_t len,
    unsigned char mac[CLIENTS_MAC_BYTES])
{
	crypto_generichash(mac, CLIENTS_MAC_BYTES, (const unsigned char *)secret, len,
	    cl->mackey, sizeof(cl->mackey));
}

/* 1 if mac is one of the n MACs in ring; every slot is compared. */
static int
mac_in(const unsigned char ring[][CLIENTS_MAC_BYTES], unsigned n,
    const unsigned char mac[CLIENTS_MAC_BYTES])
{
	unsigned i;
	int found = 0;

	for (i = 0; i < n; i++)
		found |= sodium_memcmp(ring[i], mac, CLIENTS_MAC_BYTES) == 0;
	return found;
}

static void
mac_remember(unsigned char ring[][CLIENTS_MAC_BYTES], unsigned *n, unsigned *next,
    const unsigned char mac[CLIENTS_MAC_BYTES])
{
	memcpy(ring[*next], mac, CLIENTS_MAC_BYTES);
	*next = (*next + 1) % CLIENTS_MACS;
	if (*n < CLIENTS_MACS)
		(*n)++;
}

enum clients_auth
clients_secret_cached(struct clients *cl, struct client_entry *ce, const char *secret,
    size_t len)
{
	unsigned char mac[CLIENTS_MAC_BYTES];
	enum clients_auth r = CLIENTS_AUTH_UNKNOWN;

	if (ce->client == NULL || ce->client->nhashes == 0)
		return CLIENTS_AUTH_BAD;
	clients_mac(cl, secret, len, mac);
	if (mac_in(ce->good, ce->ngood, mac))
		r = CLIENTS_AUTH_OK;
	else if (mac_in(ce->bad, ce->nbad, mac))
		r = CLIENTS_AUTH_BAD;
	sodium_memzero(mac, sizeof(mac));
	return r;
}

static void
clients_vjob_done(int result, void *arg)
{
	struct clients_vjob *vj = arg;
	struct client_entry *ce = vj->ce;
	struct clients_verify *v;
	enum clients_auth r;

	if (result == HASHPOOL_CANCELLED)
		r = CLIENTS_AUTH_CANCELLED;
	else if (result >= 0) {
		r = CLIENTS_AUTH_OK;
		mac_remember(ce->good, &ce->ngood, &ce->good_next, vj->mac);
	} else {
		r = CLIENTS_AUTH_BAD;
		mac_remember(ce->bad, &ce->nbad, &ce->bad_next, vj->mac);
	}
	LIST_REMOVE(vj, entry);
	while ((v = TAILQ_FIRST(&vj->waiters)) != NULL) {
		TAILQ_REMOVE(&vj->waiters, v, entry);
		v->cb(r, v->arg);
		free(v);
	}
	sodium_memzero(vj->mac, sizeof(vj->mac));
	free(vj);
	clients_release(ce);
}

struct clients_verify *
clients_secret_verify(struct clients *cl, struct client_entry *ce, const char *secret,
    size_t len, clients_verify_cb *cb, void *arg)
{
	unsigned char mac[CLIENTS_MAC_BYTES];
	struct clients_vjob *vj;
	struct clients_verify *v;

	clients_mac(cl, secret, len, mac);
	LIST_FOREACH(vj, &ce->vjobs, entry)
		if (sodium_memcmp(vj->mac, mac, sizeof(mac)) == 0)
			break;
	if (vj == NULL) {
		vj = xcalloc(1, sizeof(*vj));
		vj->ce = ce;
		memcpy(vj->mac, mac, sizeof(mac));
		TAILQ_INIT(&vj->waiters);
		if (hashpool_verify(cl->hp, secret, len,
		    (const char *const *)ce->client->hashes, ce->client->nhashes,
		    clients_vjob_done, vj) == NULL) {
			free(vj);
			sodium_memzero(mac, sizeof(mac));
			return NULL;
		}
		ce->refs++;
		LIST_INSERT_HEAD(&ce->vjobs, vj, entry);
	}
	sodium_memzero(mac, sizeof(mac));
	v = xcalloc(1, sizeof(*v));
	v->vj = vj;
	v->cb = cb;
	v->arg = arg;
	TAILQ_INSERT_TAIL(&vj->waiters, v, entry);
	return v;
}

void
clients_verify_cancel(struct clients_verify *v)
{
	/* The Argon2id run goes on: its outcome is still worth remembering. */
	TAILQ_REMOVE(&v->vj->waiters, v, entry);
	v->cb(CLIENTS_AUTH_CANCELLED, v->arg);
	free(v);
}

/* --- the failure limiter ---------------------------------------------------- */

/*
 * Open addressing without a lock: a key's 64-bit keyed hash picks a run of
 * LIMITER_PROBE slots; its slot is the one holding that hash. A new key takes a free or
 * expired slot of its run, else the one whose window started first. Each field is an
 * atomic of its own, so a reader never sees a torn value; two processes that take the
 * same slot at once may lose a count, which a limiter can afford.
 */
#define LIMITER_PROBE	8

struct limit_slot {
	_Atomic uint64_t	hash;		/* 0: free */
	_Atomic uint64_t	start;		/* window start, monotonic ms */
	_Atomic uint32_t	failures;
	uint32_t		pad;
};

struct limiter {
	struct limit_slot	*slots;
	size_t			 mask;
	unsigned char		 key[LIMITER_KEYBYTES];
	int			 own;		/* slots are ours to free */
};

struct limiter *
limiter_new(void *mem, size_t len, const unsigned char key[LIMITER_KEYBYTES])
{
	struct limiter *l = xcalloc(1, sizeof(*l));
	size_t n = 1;

	while (n * 2 * sizeof(struct limit_slot) <= len)
		n *= 2;
	if (n < LIMITER_PROBE)
		fatalx("limiter: %zu bytes are too few", len);
	if (mem == NULL) {
		mem = xcalloc(n, sizeof(struct limit_slot));
		l->own = 1;
	}
	l->slots = mem;
	l->mask = n - 1;
	memcpy(l->key, key, LIMITER_KEYBYTES);
	return l;
}

void
limiter_free(struct limiter *l)
{
	if (l == NULL)
		return;
	if (l->own)
		free(l->slots);
	free(l);
}

size_t
limiter_capacity(const struct limiter *l)
{
	return l->mask + 1;
}

static uint64_t
limiter_hash(const struct limiter *l, const char *key)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const unsigned char *)key, strlen(key), l->key);
	memcpy(&v, h, sizeof(v));
	return v != 0 ? v : 1;
}

static struct limit_slot *
limiter_slot(const struct limiter *l, uint64_t h, size_t i)
{
	return &l->slots[(h + i) & l->mask];
}

/* The slot of hash h, or NULL. */
static struct limit_slot *
limiter_find(const struct limiter *l, uint64_t h)
{
	struct limit_slot *s;
	size_t i;

	for (i = 0; i < LIMITER_PROBE; i++) {
		s = limiter_slot(l, h, i);
		if (atomic_load_explicit(&s->hash, memory_order_acquire) == h)
			return s;
	}
	return NULL;
}

static int
limiter_expired(struct limit_slot *s, uint64_t now)
{
	uint64_t start = atomic_load_explicit(&s->start, memory_order_relaxed);

	return now - start >= LIMITER_WINDOW_MS && now >= start;
}

enum limiter_verdict
limiter_check(struct limiter *l, const char *key, uint64_t now, uint64_t *delay_ms,
    uint64_t *retry_after_s)
{
	struct limit_slot *s;
	uint64_t start;
	uint32_t f, shift;

	*delay_ms = 0;
	*retry_after_s = 0;
	if ((s = limiter_find(l, limiter_hash(l, key))) == NULL || limiter_expired(s, now))
		return LIMIT_OK;
	start = atomic_load_explicit(&s->start, memory_order_relaxed);
	f = atomic_load_explicit(&s->failures, memory_order_relaxed);
	if (f < LIMITER_DELAY_AFTER)
		return LIMIT_OK;
	if (f >= LIMITER_BLOCK_AFTER) {
		*retry_after_s = start + LIMITER_WINDOW_MS > now ?
		    (start + LIMITER_WINDOW_MS - now + 999) / 1000 : 1;
		return LIMIT_BLOCK;
	}
	shift = f - LIMITER_DELAY_AFTER;
	*delay_ms = shift >= 16 ? LIMITER_DELAY_MAX_MS :
	    (uint64_t)LIMITER_DELAY_BASE_MS << shift;
	if (*delay_ms > LIMITER_DELAY_MAX_MS)
		*delay_ms = LIMITER_DELAY_MAX_MS;
	return LIMIT_DELAY;
}

void
limiter_failure(struct limiter *l, const char *key, uint64_t now)
{
	struct limit_slot *s, *victim = NULL;
	uint64_t h = limiter_hash(l, key), start, oldest = UINT64_MAX;
	size_t i;

	if ((s = limiter_find(l, h)) != NULL) {
		if (!limiter_expired(s, now)) {
			atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
			return;
		}
		/* A new window for the same key. */
		atomic_store_explicit(&s->start, now, memory_order_relaxed);
		atomic_store_explicit(&s->failures, 1, memory_order_relaxed);
		return;
	}
	for (i = 0; i < LIMITER_PROBE; i++) {
		s = limiter_slot(l, h, i);
		if (atomic_load_explicit(&s->hash, memory_order_relaxed) == 0 ||
		    limiter_expired(s, now)) {
			victim = s;
			break;
		}
		start = atomic_load_explicit(&s->start, memory_order_relaxed);
		if (start < oldest) {
			oldest = start;
			victim = s;
		}
	}
	atomic_store_explicit(&victim->start, now, memory_order_relaxed);
	atomic_store_explicit(&victim->failures, 1, memory_order_relaxed);
	atomic_store_explicit(&victim->hash, h, memory_order_release);
}

void
limiter_forget(struct limiter *l, const char *key)
{
	struct limit_slot *s;

	if ((s = limiter_find(l, limiter_hash(l, key))) != NULL)
		atomic_store_explicit(&s->hash, 0, memory_order_release);
}

size_t
limiter_count(const struct limiter *l, uint64_t now)
{
	size_t i, n = 0;

	for (i = 0; i <= l->mask; i++)
		if (atomic_load_explicit(&l->slots[i].hash, memory_order_relaxed) != 0 &&
		    !limiter_expired(&l->slots[i], now))
			n++;
	return n;
}
