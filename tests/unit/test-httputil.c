/* test-httputil.c: unit tests for the HTTP helpers: path normalisation, Basic and Bearer
 * credentials, and the replies (JSON, problem+json, OAuth errors, CORS) over a real
 * loopback evhttp server and client in one process. */
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "check.h"
#include "httputil.h"

static void
check_path(const char *in, const char *want)
{
	char *got = http_path_normalize(in);

	CHECK(strcmp(got, want) == 0);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "  path %s -> %s, want %s\n", in, got, want);
	free(got);
}

struct reply {
	int		 status;
	char		 body[512];
	char		 ctype[128];
	char		 cache[64];
	char		 cors[64];
	char		 authn[64];
};

static void
server_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);

	http_set_cors_any(req);
	if (strcmp(uri, "/json") == 0)
		http_reply_json(req, 200, json_pack("{s:s, s:i}", "a", "<b>", "n", 1));
	else if (strcmp(uri, "/problem") == 0)
		http_reply_problem(req, 400, "Invalid 'grant_type' type");
	else if (strcmp(uri, "/oauth") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Basic realm=\"x\"");
		http_reply_oauth_error(req, 401, "invalid_client", "bad secret");
	} else
		http_reply_empty(req, 404);
}

static void
client_cb(struct evhttp_request *req, void *arg)
{
	struct reply *r = arg;
	struct evkeyvalq *h;
	const char *v;
	size_t n;

	if (req == NULL) {
		r->status = -1;
		return;
	}
	h = evhttp_request_get_input_headers(req);
	r->status = evhttp_request_get_response_code(req);
	n = evbuffer_remove(evhttp_request_get_input_buffer(req), r->body,
	    sizeof(r->body) - 1);
	r->body[n > 0 ? n : 0] = '\0';
#define COPY(field, name) \
	if ((v = evhttp_find_header(h, name)) != NULL) \
		snprintf(r->field, sizeof(r->field), "%s", v);
	COPY(ctype, "Content-Type");
	COPY(cache, "Cache-Control");
	COPY(cors, "Access-Control-Allow-Origin");
	COPY(authn, "WWW-Authenticate");
#undef COPY
}

static struct reply
fetch(struct event_base *base, int port, const char *path)
{
	struct evhttp_connection *c = evhttp_connection_base_new(base, NULL, "127.0.0.1",
	    (unsigned short)port);
	struct reply r;
	struct evhttp_request *req;

	memset(&r, 0, sizeof(r));
	req = evhttp_request_new(client_cb, &r);
	evhttp_make_request(c, req, EVHTTP_REQ_GET, path);
	while (r.status == 0)
		event_base_loop(base, EVLOOP_ONCE);
	evhttp_connection_free(c);
	return r;
}

int
main(void)
{
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct reply r;
	char *u, *p, *t;

	/* Paths: query and fragment dropped, dot segments, one trailing slash. */
	check_path("/jwks", "/jwks");
	check_path("/jwks/", "/jwks");
	check_path("/jwks?x=1", "/jwks");
	check_path("/jwks#f", "/jwks");
	check_path("/a/../jwks", "/jwks");
	check_path("/a/%2e%2E/jwks", "/jwks");
	check_path("/./jwks", "/jwks");
	check_path("/jwks//", "/jwks/");
	check_path("/JWKS", "/JWKS");
	check_path("/", "/");
	check_path("", "/");
	check_path("/..", "/");
	check_path("/a/b/..", "/a");
	check_path("http://example.com/token?x", "/token");
	check_path("/%6Awks", "/%6Awks");

	/* Basic: user:pass in base64; the scheme in any case; malformed is -1. */
	CHECK(http_basic_credentials("Basic dXNlcjpwYXNz", &u, &p) == 1);
	CHECK(strcmp(u, "user") == 0 && strcmp(p, "pass") == 0);
	free(u);
	free(p);
	CHECK(http_basic_credentials("bAsIc dTpwOmE=", &u, &p) == 1);	/* "u:p:a" */
	CHECK(strcmp(u, "u") == 0 && strcmp(p, "p:a") == 0);
	free(u);
	free(p);
	CHECK(http_basic_credentials("Basic bm9jb2xvbg==", &u, &p) == -1);	/* "nocolon" */
	CHECK(http_basic_credentials("Basic !!!", &u, &p) == -1);
	CHECK(http_basic_credentials("Bearer abc", &u, &p) == 0);
	CHECK(http_basic_credentials(NULL, &u, &p) == 0);
	CHECK(u == NULL && p == NULL);

	t = http_bearer_token("Bearer abc.def");
	CHECK(t != NULL && strcmp(t, "abc.def") == 0);
	free(t);
	t = http_bearer_token("bearer  xyz ");
	CHECK(t != NULL && strcmp(t, "xyz") == 0);
	free(t);
	CHECK(http_bearer_token("Bearer ") == NULL);
	CHECK(http_bearer_token("Basic abc") == NULL);
	CHECK(http_bearer_token(NULL) == NULL);

	CHECK(strcmp(http_status_reason(404), "Not Found") == 0);
	CHECK(strcmp(http_status_reason(599), "Unknown") == 0);

	/* Replies, through a real server and client on loopback. */
	base = event_base_new();
	http = evhttp_new(base);
	evhttp_set_default_content_type(http, NULL);
	evhttp_set_gencb(http, server_cb, NULL);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	CHECK(bs != NULL);
	if (bs == NULL)
		return CHECK_DONE();
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);

	r = fetch(base, ntohs(sin.sin_port), "/json");
	CHECK(r.status == 200 && strcmp(r.body, "{\"a\":\"<b>\",\"n\":1}") == 0);
	CHECK(strcmp(r.ctype, HTTP_CT_JSON) == 0 && strcmp(r.cors, "*") == 0);

	r = fetch(base, ntohs(sin.sin_port), "/problem");
	CHECK(r.status == 400 && strcmp(r.ctype, HTTP_CT_PROBLEM) == 0);
	CHECK(strcmp(r.body, "{\"type\":\"https://tools.ietf.org/html/rfc9110#section-15.5.1\","
	    "\"title\":\"Bad Request\",\"detail\":\"Invalid 'grant_type' type\"}") == 0);

	r = fetch(base, ntohs(sin.sin_port), "/oauth");
	CHECK(r.status == 401 && strcmp(r.cache, "no-store") == 0);
	CHECK(strcmp(r.body, "{\"error\":\"invalid_client\",\"error_description\":"
	    "\"bad secret\"}") == 0);
	CHECK(strncmp(r.authn, "Basic", 5) == 0);

	r = fetch(base, ntohs(sin.sin_port), "/other");
	CHECK(r.status == 404 && r.body[0] == '\0' && r.ctype[0] == '\0');

	evhttp_free(http);
	event_base_free(base);
	return CHECK_DONE();
}
