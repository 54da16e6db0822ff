/* h_readyz.c: GET /readyz: 200 when the database connection is up and the signing keys
 * are loaded (the signer connected), else 503 saying which is missing. */
#include <jansson.h>

#include "worker.h"

void
h_readyz(struct wreq *r)
{
	int db = worker_db_up(r->w), keys = h_jwks_loaded() && worker_signer_up(r->w);

	wreq_reply_json(r, db && keys ? 200 : 503, json_pack("{s:s, s:b, s:b}",
	    "status", db && keys ? "ok" : "unavailable", "database", db, "keys", keys));
}
