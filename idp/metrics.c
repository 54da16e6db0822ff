/* metrics.c: per-worker counters in one shared mapping, rendered as Prometheus text.
 *
 * The parent maps the region before it forks; each worker writes only its own slot, with
 * relaxed atomic adds (a draining worker and its replacement may share a slot for a
 * while, and the reader is another process), and /metrics in any worker sums every slot.
 * A replacement worker gets the dead worker's slot, so counters only ever grow. Nothing
 * here takes a lock or allocates on the request path. The same mapping carries a
 * second area for other state the workers share (metrics_shared). */
#include <sys/mman.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "metrics.h"

/* Status codes with their own series; anything else is "other". */
static const int metrics_statuses[] = {
	200, 204, 304, 400, 401, 404, 405, 413, 415, 429, 499, 500, 503,
};
#define MS_COUNT	(sizeof(metrics_statuses) / sizeof(metrics_statuses[0]))
#define MS_OTHER	MS_COUNT

/* Histogram upper bounds, in microseconds (0.0005 s .. 5 s), then +Inf. */
static const uint64_t metrics_buckets_us[] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};
static const char *metrics_buckets_le[] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
	"0.5", "1", "2.5", "5",
};
#define MB_COUNT	(sizeof(metrics_buckets_us) / sizeof(metrics_buckets_us[0]))

static const char *metrics_route_names[MR__COUNT] = {
	[MR_DISCOVERY] = "discovery",
	[MR_JWKS] = "jwks",
	[MR_TOKEN] = "token",
	[MR_HEALTHZ] = "healthz",
	[MR_READYZ] = "readyz",
	[MR_METRICS] = "metrics",
	[MR_AUTHORIZE] = "authorize",
	[MR_LOGIN] = "login",
	[MR_CONSENT] = "consent",
	[MR_LOGOUT] = "logout",
	[MR_USERINFO] = "userinfo",
	[MR_INTROSPECT] = "introspect",
	[MR_REVOKE] = "revoke",
	[MR_NOT_FOUND] = "not_found",
};

static const char *metrics_grant_names[MG__COUNT] = {
	[MG_CLIENT_CREDENTIALS] = "client_credentials",
	[MG_AUTHORIZATION_CODE] = "authorization_code",
	[MG_REFRESH_TOKEN] = "refresh_token",
	[MG_PASSWORD] = "password",
};

struct metrics_slot {
	_Atomic uint64_t	requests[MR__COUNT][MS_COUNT + 1];
	_Atomic uint64_t	latency_buckets[MR__COUNT][MB_COUNT + 1];	/* not cumulative */
	_Atomic uint64_t	latency_sum_us[MR__COUNT];
	_Atomic uint64_t	tokens[MG__COUNT];
	_Atomic uint64_t	auth_failures;
	_Atomic uint64_t	cache_hits;
	_Atomic uint64_t	cache_misses;
	_Atomic long		connections;	/* a gauge */
} __attribute__((aligned(64)));		/* no false sharing between workers */

struct metrics {
	int			nslots;
	unsigned char		*shared;	/* METRICS_SHARED_BYTES after the slots */
	struct metrics_slot	slots[];
};

struct metrics *
metrics_create(int nslots)
{
	struct metrics *m;
	size_t len;
	void *p;

	if (nslots < 1)
		return NULL;
	len = offsetof(struct metrics, slots) + (size_t)nslots * sizeof(struct metrics_slot);
	len = (len + 4095) & ~(size_t)4095;
	p = mmap(NULL, len + METRICS_SHARED_BYTES, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	m = p;		/* mmap's pages are zero, which is every counter's start */
	m->nslots = nslots;
	m->shared = (unsigned char *)p + len;
	randombytes_buf(m->shared, METRICS_SHARED_KEYBYTES);
	return m;
}

struct metrics_slot *
metrics_slot(struct metrics *m, int slot)
{
	if (m == NULL || slot < 0 || slot >= m->nslots)
		return NULL;
	return &m->slots[slot];
}

void *
metrics_shared(struct metrics *m, size_t *len)
{
	*len = METRICS_SHARED_BYTES;
	return m->shared;
}

int
metrics_nslots(const struct metrics *m)
{
	return m->nslots;
}

const char *
metrics_route_name(enum metrics_route r)
{
	if ((unsigned)r >= MR__COUNT)
		return "other";
	return metrics_route_names[r];
}

static void
metrics_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t
metrics_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void
metrics_request(struct metrics_slot *s, enum metrics_route r, int status,
    uint64_t latency_us)
{
	size_t i, si = MS_OTHER;

	if (s == NULL || (unsigned)r >= MR__COUNT)
		return;
	for (i = 0; i < MS_COUNT; i++) {
		if (metrics_statuses[i] == status) {
			si = i;
			break;
		}
	}
	metrics_add(&s->requests[r][si], 1);
	for (i = 0; i < MB_COUNT; i++)
		if (latency_us <= metrics_buckets_us[i])
			break;
	metrics_add(&s->latency_buckets[r][i], 1);
	metrics_add(&s->latency_sum_us[r], latency_us);
}

void
metrics_token_issued(struct metrics_slot *s, enum metrics_grant g)
{
	if (s != NULL && (unsigned)g < MG__COUNT)
		metrics_add(&s->tokens[g], 1);
}

void
metrics_auth_failure(struct metrics_slot *s)
{
	if (s != NULL)
		metrics_add(&s->auth_failures, 1);
}

void
metrics_connections_set(struct metrics_slot *s, long n)
{
	if (s != NULL)
		atomic_store_explicit(&s->connections, n, memory_order_relaxed);
}

long
metrics_connections_total(const struct metrics *m)
{
	long n = 0;
	int s;

	for (s = 0; s < m->nslots; s++)
		n += atomic_load_explicit(&m->slots[s].connections, memory_order_relaxed);
	return n;
}

void
metrics_secret_cache(struct metrics_slot *s, int hit)
{
	if (s != NULL)
		metrics_add(hit ? &s->cache_hits : &s->cache_misses, 1);
}

void
metrics_label_value(struct evbuffer *out, const char *v)
{
	const char *p;

	for (p = v; *p != '\0'; p++) {
		if (*p == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*p == '"')
			evbuffer_add(out, "\\\"", 2);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, p, 1);
	}
}

/* Seconds with microsecond precision, as the text format wants them. */
static void
metrics_add_seconds(struct evbuffer *out, uint64_t us)
{
	evbuffer_add_printf(out, "%llu.%06llu", (unsigned long long)(us / 1000000),
	    (unsigned long long)(us % 1000000));
}

void
metrics_render(const struct metrics *m, struct evbuffer *out)
{
	uint64_t sum, cum, n, total;
	size_t r, i, g;
	int s;

	evbuffer_add_printf(out,
	    "# HELP idp_http_requests_total HTTP requests answered, by route and status.\n"
	    "# TYPE idp_http_requests_total counter\n");
	for (r = 0; r < MR__COUNT; r++) {
		for (i = 0; i <= MS_COUNT; i++) {
			for (sum = 0, s = 0; s < m->nslots; s++)
				sum += metrics_get(&m->slots[s].requests[r][i]);
			if (sum == 0)
				continue;
			if (i < MS_COUNT)
				evbuffer_add_printf(out, "idp_http_requests_total{route=\"%s\","
				    "status=\"%d\"} %llu\n", metrics_route_names[r],
				    metrics_statuses[i], (unsigned long long)sum);
			else
				evbuffer_add_printf(out, "idp_http_requests_total{route=\"%s\","
				    "status=\"other\"} %llu\n", metrics_route_names[r],
				    (unsigned long long)sum);
		}
	}

	evbuffer_add_printf(out,
	    "# HELP idp_http_request_duration_seconds Time from a request's dispatch to "
	    "its reply.\n"
	    "# TYPE idp_http_request_duration_seconds histogram\n");
	for (r = 0; r < MR__COUNT; r++) {
		for (total = 0, i = 0; i <= MB_COUNT; i++)
			for (s = 0; s < m->nslots; s++)
				total += metrics_get(&m->slots[s].latency_buckets[r][i]);
		if (total == 0)
			continue;
		for (cum = 0, i = 0; i <= MB_COUNT; i++) {
			for (n = 0, s = 0; s < m->nslots; s++)
				n += metrics_get(&m->slots[s].latency_buckets[r][i]);
			cum += n;
			evbuffer_add_printf(out, "idp_http_request_duration_seconds_bucket"
			    "{route=\"%s\",le=\"%s\"} %llu\n", metrics_route_names[r],
			    i < MB_COUNT ? metrics_buckets_le[i] : "+Inf",
			    (unsigned long long)cum);
		}
		for (sum = 0, s = 0; s < m->nslots; s++)
			sum += metrics_get(&m->slots[s].latency_sum_us[r]);
		evbuffer_add_printf(out, "idp_http_request_duration_seconds_sum{route=\"%s\"} ",
		    metrics_route_names[r]);
		metrics_add_seconds(out, sum);
		evbuffer_add_printf(out, "\nidp_http_request_duration_seconds_count"
		    "{route=\"%s\"} %llu\n", metrics_route_names[r], (unsigned long long)cum);
	}

	evbuffer_add_printf(out,
	    "# HELP idp_tokens_issued_total Tokens issued, by grant.\n"
	    "# TYPE idp_tokens_issued_total counter\n");
	for (g = 0; g < MG__COUNT; g++) {
		for (sum = 0, s = 0; s < m->nslots; s++)
			sum += metrics_get(&m->slots[s].tokens[g]);
		evbuffer_add_printf(out, "idp_tokens_issued_total{grant=\"%s\"} %llu\n",
		    metrics_grant_names[g], (unsigned long long)sum);
	}

	for (sum = 0, s = 0; s < m->nslots; s++)
		sum += metrics_get(&m->slots[s].auth_failures);
	evbuffer_add_printf(out,
	    "# HELP idp_client_auth_failures_total Failed client authentications.\n"
	    "# TYPE idp_client_auth_failures_total counter\n"
	    "idp_client_auth_failures_total %llu\n", (unsigned long long)sum);

	evbuffer_add_printf(out,
	    "# HELP idp_http_connections Open HTTP connections.\n"
	    "# TYPE idp_http_connections gauge\n"
	    "idp_http_connections %ld\n", metrics_connections_total(m));

	for (sum = 0, s = 0; s < m->nslots; s++)
		sum += metrics_get(&m->slots[s].cache_hits);
	evbuffer_add_printf(out,
	    "# HELP idp_secret_cache_hits_total Client secrets accepted from the "
	    "verified-secret cache, without Argon2id.\n"
	    "# TYPE idp_secret_cache_hits_total counter\n"
	    "idp_secret_cache_hits_total %llu\n", (unsigned long long)sum);
	for (sum = 0, s = 0; s < m->nslots; s++)
		sum += metrics_get(&m->slots[s].cache_misses);
	evbuffer_add_printf(out,
	    "# HELP idp_secret_cache_misses_total Client secrets that needed an Argon2id "
	    "verification.\n"
	    "# TYPE idp_secret_cache_misses_total counter\n"
	    "idp_secret_cache_misses_total %llu\n", (unsigned long long)sum);
}
