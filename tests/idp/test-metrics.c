/* test-metrics.c: idp's shared metrics: slots written by several processes, summed and
 * rendered as Prometheus text. */
#include <sys/wait.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "../unit/check.h"
#include "metrics.h"

static char *
render(struct metrics *m)
{
	struct evbuffer *b = evbuffer_new();
	size_t n = evbuffer_get_length(b);
	char *s;

	metrics_render(m, b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

int
main(void)
{
	struct metrics *m;
	struct evbuffer *b;
	size_t len;
	unsigned char *shared, zero[64];
	char *text, esc[64];
	pid_t pid;
	int status;

	if (sodium_init() < 0)
		return 1;
	CHECK(metrics_create(0) == NULL);
	m = metrics_create(2);
	CHECK(m != NULL && metrics_nslots(m) == 2);
	CHECK(metrics_slot(m, 2) == NULL && metrics_slot(m, -1) == NULL);
	shared = metrics_shared(m, &len);
	memset(zero, 0, sizeof(zero));
	CHECK(len == METRICS_SHARED_BYTES && memcmp(shared, zero,
	    METRICS_SHARED_KEYBYTES) != 0 && memcmp(shared + METRICS_SHARED_KEYBYTES,
	    zero, sizeof(zero)) == 0);

	/* Slot 1 is written by another process, as a worker would. */
	if ((pid = fork()) == 0) {
		struct metrics_slot *s1 = metrics_slot(m, 1);

		metrics_request(s1, MR_JWKS, 200, 300);
		metrics_request(s1, MR_JWKS, 200, 3000000);
		metrics_request(s1, MR_TOKEN, 401, 1200);
		metrics_token_issued(s1, MG_CLIENT_CREDENTIALS);
		metrics_auth_failure(s1);
		metrics_connections_set(s1, 7);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	metrics_request(metrics_slot(m, 0), MR_JWKS, 200, 700);
	metrics_request(metrics_slot(m, 0), MR_JWKS, 304, 100);
	metrics_request(metrics_slot(m, 0), MR_NOT_FOUND, 418, 100);
	metrics_token_issued(metrics_slot(m, 0), MG_CLIENT_CREDENTIALS);
	metrics_secret_cache(metrics_slot(m, 0), 1);
	metrics_secret_cache(metrics_slot(m, 0), 0);
	metrics_secret_cache(metrics_slot(m, 0), 1);
	metrics_connections_set(metrics_slot(m, 0), 3);
	CHECK(metrics_connections_total(m) == 10);

	text = render(m);
	CHECK(strstr(text, "# TYPE idp_http_requests_total counter\n") != NULL);
	CHECK(strstr(text, "idp_http_requests_total{route=\"jwks\",status=\"200\"} 3\n"));
	CHECK(strstr(text, "idp_http_requests_total{route=\"jwks\",status=\"304\"} 1\n"));
	CHECK(strstr(text, "idp_http_requests_total{route=\"token\",status=\"401\"} 1\n"));
	CHECK(strstr(text, "idp_http_requests_total{route=\"not_found\",status=\"other\"} 1\n"));
	CHECK(strstr(text, "route=\"healthz\"") == NULL);	/* nothing counted */
	CHECK(strstr(text, "# TYPE idp_http_request_duration_seconds histogram\n"));
	CHECK(strstr(text, "idp_http_request_duration_seconds_bucket{route=\"jwks\","
	    "le=\"0.0005\"} 2\n"));
	CHECK(strstr(text, "idp_http_request_duration_seconds_bucket{route=\"jwks\","
	    "le=\"0.001\"} 3\n"));
	CHECK(strstr(text, "idp_http_request_duration_seconds_bucket{route=\"jwks\","
	    "le=\"2.5\"} 3\n"));
	CHECK(strstr(text, "idp_http_request_duration_seconds_bucket{route=\"jwks\","
	    "le=\"5\"} 4\n"));
	CHECK(strstr(text, "idp_http_request_duration_seconds_bucket{route=\"jwks\","
	    "le=\"+Inf\"} 4\n"));
	CHECK(strstr(text, "idp_http_request_duration_seconds_sum{route=\"jwks\"} "
	    "3.001100\n"));
	CHECK(strstr(text, "idp_http_request_duration_seconds_count{route=\"jwks\"} 4\n"));
	CHECK(strstr(text, "idp_tokens_issued_total{grant=\"client_credentials\"} 2\n"));
	CHECK(strstr(text, "idp_client_auth_failures_total 1\n"));
	CHECK(strstr(text, "idp_secret_cache_hits_total 2\n"));
	CHECK(strstr(text, "idp_secret_cache_misses_total 1\n"));
	CHECK(strstr(text, "idp_http_connections 10\n"));
	free(text);

	b = evbuffer_new();
	metrics_label_value(b, "a\"b\\c\nd");
	len = evbuffer_get_length(b);
	evbuffer_remove(b, esc, len);
	esc[len] = '\0';
	CHECK(strcmp(esc, "a\\\"b\\\\c\\nd") == 0);
	evbuffer_free(b);
	CHECK(strcmp(metrics_route_name(MR_DISCOVERY), "discovery") == 0);
	return CHECK_DONE();
}
