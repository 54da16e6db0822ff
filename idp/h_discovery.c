/* h_discovery.c: GET /.well-known/openid-configuration (and RFC 8414's
 * /.well-known/oauth-authorization-server), the provider metadata (OpenID Connect
 * Discovery 1.0, RFC 8414), serialized once when the worker starts. */
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
	 * member. */
	json_object_set_new(d, "issuer", json_string(conf->issuer));
	u = endpoint(conf, "/token");
	json_object_set_new(d, "token_endpoint", json_string(u));
	free(u);
	u = endpoint(conf, "/jwks");
	json_object_set_new(d, "jwks_uri", json_string(u));
	free(u);
	/* The token side (h_token.c, h_userinfo.c, h_introspect.c, h_revoke.c). The
	 * password grant is listed although only the clients an administrator gives
	 * it may use it; "none" is how public clients authenticate (with PKCE). */
	json_object_set_new(d, "grant_types_supported", json_pack("[ssss]",
	    "authorization_code", "refresh_token", "client_credentials", "password"));
	json_object_set_new(d, "token_endpoint_auth_methods_supported", json_pack("[sss]",
	    "client_secret_basic", "client_secret_post", "none"));
	u = endpoint(conf, "/userinfo");
	json_object_set_new(d, "userinfo_endpoint", json_string(u));
	free(u);
	u = endpoint(conf, "/introspect");
	json_object_set_new(d, "introspection_endpoint", json_string(u));
	free(u);
	json_object_set_new(d, "introspection_endpoint_auth_methods_supported",
	    json_pack("[ss]", "client_secret_basic", "client_secret_post"));
	u = endpoint(conf, "/revoke");
	json_object_set_new(d, "revocation_endpoint", json_string(u));
	free(u);
	json_object_set_new(d, "revocation_endpoint_auth_methods_supported",
	    json_pack("[sss]", "client_secret_basic", "client_secret_post", "none"));
	/* The browser side (h_authorize.c, h_logout.c). */
	u = endpoint(conf, "/authorize");
	json_object_set_new(d, "authorization_endpoint", json_string(u));
	free(u);
	u = endpoint(conf, "/logout");
	json_object_set_new(d, "end_session_endpoint", json_string(u));
	free(u);
	json_object_set_new(d, "response_types_supported", json_pack("[s]", "code"));
	json_object_set_new(d, "response_modes_supported", json_pack("[ss]", "query",
	    "form_post"));
	json_object_set_new(d, "code_challenge_methods_supported",
	    conf->allow_plain_pkce ? json_pack("[ss]", "S256", "plain") :
	    json_pack("[s]", "S256"));
	json_object_set_new(d, "scopes_supported", json_pack("[ssss]", "openid",
	    "profile", "email", "offline_access"));
	json_object_set_new(d, "claims_supported", json_pack("[ssssssssssssss]", "sub",
	    "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "name",
	    "preferred_username", "email", "email_verified", "roles"));
	json_object_set_new(d, "prompt_values_supported", json_pack("[sss]", "none",
	    "login", "consent"));
	json_object_set_new(d, "authorization_response_iss_parameter_supported",
	    json_true());
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
