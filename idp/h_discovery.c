/* h_discovery.c: GET /.well-known/openid-configuration, the provider metadata (OpenID
 * Connect Discovery 1.0, RFC 8414), serialized once when the worker starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "idp.h"
#include "log.h"
#include "worker.h"
#include "xalloc.h"

/* The metadata changes only with the configuration, and the parent rolls the workers
 * when it does. */
#define DISCOVERY_CACHE_CONTROL	"public, max-age=300"

static struct blob	*discovery_doc;
static char		 discovery_etag[48];

static char *
endpoint(const struct idp_config *conf, const char *path)
{
	return xasprintf("%s%s", conf->issuer, path);
}

void
h_discovery_init(struct worker *w, const struct idp_config *conf)
{
	json_t *d = json_object();
	char *s, *u;

	/* Only what is implemented: a relying party must be able to trust every
	 * member. The authorization endpoint (and with it response types other than
	 * none) comes later; the list stays empty until then. */
	json_object_set_new(d, "issuer", json_string(conf->issuer));
	u = endpoint(conf, "/token");
	json_object_set_new(d, "token_endpoint", json_string(u));
	free(u);
	u = endpoint(conf, "/jwks");
	json_object_set_new(d, "jwks_uri", json_string(u));
	free(u);
	json_object_set_new(d, "grant_types_supported", json_pack("[s]",
	    "client_credentials"));
	json_object_set_new(d, "token_endpoint_auth_methods_supported", json_pack("[ss]",
	    "client_secret_basic", "client_secret_post"));
	json_object_set_new(d, "response_types_supported", json_array());
	json_object_set_new(d, "subject_types_supported", json_pack("[s]", "public"));
	json_object_set_new(d, "id_token_signing_alg_values_supported",
	    json_pack("[s]", conf->signing_alg));
	if ((s = json_dumps(d, JSON_COMPACT)) == NULL)
		fatalx("discovery: json_dumps");
	json_decref(d);
	blob_unref(discovery_doc);
	discovery_doc = blob_new(s, strlen(s));
	worker_etag(s, strlen(s), discovery_etag, sizeof(discovery_etag));
	free(s);
}

void
h_discovery(struct wreq *r)
{
	wreq_header(r, "Cache-Control", DISCOVERY_CACHE_CONTROL);
	wreq_header(r, "ETag", discovery_etag);
	if (wreq_etag_matches(r, discovery_etag)) {
		wreq_reply_empty(r, 304);
		return;
	}
	wreq_reply_blob(r, 200, WORKER_CT_JSON, discovery_doc);
}
