/* h_healthz.c: GET /healthz: 200 while the worker's loop answers (liveness). */
#include "worker.h"

void
h_healthz(struct wreq *r)
{
	static const char body[] = "{\"status\":\"ok\"}";

	wreq_reply(r, 200, WORKER_CT_JSON, body, sizeof(body) - 1);
}
