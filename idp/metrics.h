/* metrics.h: idp's Prometheus counters, one slot per worker in memory shared by all
 * processes, summed when /metrics is rendered. */
#ifndef IDP_METRICS_H
#define IDP_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Route labels: the route names, never raw paths, so label values stay bounded. */
enum metrics_route {
	MR_DISCOVERY = 0,
	MR_JWKS,
	MR_TOKEN,
	MR_HEALTHZ,
	MR_READYZ,
	MR_METRICS,
	MR_AUTHORIZE,
	MR_LOGIN,
	MR_CONSENT,
	MR_LOGOUT,
	MR_USERINFO,
	MR_INTROSPECT,
	MR_REVOKE,
	MR_NOT_FOUND,
	MR__COUNT
};

/* Grant labels of idp_tokens_issued_total. */
enum metrics_grant {
	MG_CLIENT_CREDENTIALS = 0,
	MG_AUTHORIZATION_CODE,
	MG_REFRESH_TOKEN,
	MG_PASSWORD,
	MG__COUNT
};

struct metrics;
struct metrics_slot;

/* Map one region (MAP_SHARED | MAP_ANONYMOUS) with nslots zeroed slots; called by the
 * parent before it forks, so every process sees the same memory. Never freed. NULL if
 * nslots < 1 or mmap fails. */
struct metrics		*metrics_create(int nslots);
/* Besides the counters, the mapping holds METRICS_SHARED_BYTES for other state every
 * worker shares (the failure limiter's tables, clients.c): zero at creation, except its
 * first METRICS_SHARED_KEYBYTES bytes, which are random (a hash key). */
#define METRICS_SHARED_BYTES	(1024 * 1024)
#define METRICS_SHARED_KEYBYTES	16
void			*metrics_shared(struct metrics *, size_t *len);
/* The slot a worker writes (0 .. nslots-1); NULL for an index out of range. */
struct metrics_slot	*metrics_slot(struct metrics *, int slot);
int			 metrics_nslots(const struct metrics *);

/* Counting, with relaxed atomics, into the caller's own slot. latency_us is the time
 * from the request's dispatch to its reply. Status codes outside the known set are
 * counted under "other". */
void	metrics_request(struct metrics_slot *, enum metrics_route, int status,
	    uint64_t latency_us);
void	metrics_token_issued(struct metrics_slot *, enum metrics_grant);
void	metrics_auth_failure(struct metrics_slot *);
/* The slot's open HTTP connections (a gauge the worker sets), and the sum over all
 * slots, which workers use to share connections out evenly. */
void	metrics_connections_set(struct metrics_slot *, long n);
long	metrics_connections_total(const struct metrics *);
void	metrics_secret_cache(struct metrics_slot *, int hit);

/* The name of a route label ("discovery", "jwks", "token", ...). */
const char	*metrics_route_name(enum metrics_route);

/* Append the Prometheus text format (0.0.4) of every counter, summed over all slots,
 * to out. Series that are still zero are left out, except the totals without labels. */
void	metrics_render(const struct metrics *, struct evbuffer *out);
/* Append a label value escaped for the text format (backslash, quote, newline). */
void	metrics_label_value(struct evbuffer *out, const char *value);

#endif
