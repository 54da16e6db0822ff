/* h_metrics.c: GET /metrics: every worker's counters (summed from the shared slots) and
 * the signing keys' ages, in the Prometheus text format 0.0.4. */
#include <time.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "worker.h"

#define METRICS_CT	"text/plain; version=0.0.4; charset=utf-8"

void
h_metrics(struct wreq *r)
{
	struct evbuffer *b = evbuffer_new();

	metrics_render(worker_metrics(r->w), b);
	h_jwks_render_metrics(b, (long long)time(NULL));
	wreq_reply(r, 200, METRICS_CT, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}
