/* httputil.c: evhttp reply helpers, CORS, framing checks and path normalisation. */
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "b64url.h"
#include "httputil.h"
#include "xalloc.h"

static const struct {
	int		 status;
	const char	*reason;
	const char	*section;	/* RFC 9110 section, for problem+json "type" */
} http_statuses[] = {
	{ 200, "OK", NULL },
	{ 204, "No Content", NULL },
	{ 302, "Found", NULL },
	{ 304, "Not Modified", NULL },
	{ 400, "Bad Request", "15.5.1" },
	{ 401, "Unauthorized", "15.5.2" },
	{ 403, "Forbidden", "15.5.4" },
	{ 404, "Not Found", "15.5.5" },
	{ 405, "Method Not Allowed", "15.5.6" },
	{ 409, "Conflict", "15.5.10" },
	{ 413, "Content Too Large", "15.5.14" },
	{ 415, "Unsupported Media Type", "15.5.16" },
	{ 429, "Too Many Requests", NULL },
	{ 500, "Internal Server Error", "15.6.1" },
	{ 502, "Bad Gateway", "15.6.3" },
	{ 503, "Service Unavailable", "15.6.4" },
};

const char *
http_status_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(http_statuses) / sizeof(http_statuses[0]); i++)
		if (http_statuses[i].status == status)
			return http_statuses[i].reason;
	return "Unknown";
}

void
http_reply_raw(struct evhttp_request *req, int status, const char *content_type,
    const void *data, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (content_type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", content_type);
	if (len > 0)
		evbuffer_add(buf, data, len);
	evhttp_send_reply(req, status, http_status_reason(status), buf);
	evbuffer_free(buf);
}

void
http_reply_json(struct evhttp_request *req, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);

	http_reply_raw(req, status, HTTP_CT_JSON, s, s != NULL ? strlen(s) : 0);
	free(s);
	json_decref(body);
}

void
http_reply_empty(struct evhttp_request *req, int status)
{
	http_reply_raw(req, status, NULL, NULL, 0);
}

void
http_reply_redirect(struct evhttp_request *req, int status, const char *location)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", location);
	http_reply_empty(req, status);
}

void
http_reply_problem(struct evhttp_request *req, int status, const char *detail)
{
	const char *section = "15.5.1";
	json_t *body;
	char *type, *s;
	size_t i;

	for (i = 0; i < sizeof(http_statuses) / sizeof(http_statuses[0]); i++)
		if (http_statuses[i].status == status && http_statuses[i].section)
			section = http_statuses[i].section;
	type = xasprintf("https://tools.ietf.org/html/rfc9110#section-%s", section);
	body = json_pack("{s:s, s:s, s:s}", "type", type, "title",
	    http_status_reason(status), "detail", detail);
	s = json_dumps(body, JSON_COMPACT);
	http_reply_raw(req, status, HTTP_CT_PROBLEM, s, strlen(s));
	free(s);
	free(type);
	json_decref(body);
}

void
http_set_no_store(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (evhttp_find_header(h, "Cache-Control") == NULL)
		evhttp_add_header(h, "Cache-Control", "no-store");
	if (evhttp_find_header(h, "Pragma") == NULL)
		evhttp_add_header(h, "Pragma", "no-cache");
}

void
http_reply_oauth_error(struct evhttp_request *req, int status, const char *error,
    const char *description)
{
	json_t *body = json_object();

	json_object_set_new(body, "error", json_string(error));
	if (description != NULL)
		json_object_set_new(body, "error_description", json_string(description));
	http_set_no_store(req);
	http_reply_json(req, status, body);
}

void
http_set_cors_any(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
	evhttp_add_header(h, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
	evhttp_add_header(h, "Access-Control-Allow-Headers", "Content-Type, Authorization");
}

int
http_check_framing(struct evhttp_request *req, const char **errstr)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	int ncl = 0, nte = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, "Content-Length") == 0)
			ncl++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0)
			nte++;
	}
	if (ncl > 1) {
		*errstr = "more than one Content-Length header";
		return -1;
	}
	if (ncl > 0 && nte > 0) {
		*errstr = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	return 0;
}

const char *
http_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);

	*len = evbuffer_get_length(in);
	if (*len == 0)
		return NULL;
	return (const char *)evbuffer_pullup(in, -1);
}

int
http_content_type_has(struct evhttp_request *req, const char *needle)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");

	return ct != NULL && strcasestr(ct, needle) != NULL;
}

int
http_basic_credentials(const char *authorization, char **user, char **pass)
{
	const char *p;
	unsigned char *dec;
	size_t len;
	char *colon;

	*user = *pass = NULL;
	if (authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0)
		return 0;
	for (p = authorization + 6; *p == ' '; p++)
		;
	len = strlen(p);
	while (len > 0 && p[len - 1] == ' ')
		len--;
	/* Standard base64 with padding, as RFC 7617 says; tolerate the URL-safe form too. */
	if ((dec = b64url_decode_lenient(p, len, &len)) == NULL)
		return -1;
	if (memchr(dec, '\0', len) != NULL ||
	    (colon = strchr((char *)dec, ':')) == NULL) {
		free(dec);
		return -1;
	}
	*user = xstrndup((char *)dec, (size_t)(colon - (char *)dec));
	*pass = xstrdup(colon + 1);
	free(dec);
	return 1;
}

char *
http_bearer_token(const char *authorization)
{
	const char *p;
	size_t len;

	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return NULL;
	for (p = authorization + 7; *p == ' '; p++)
		;
	len = strlen(p);
	while (len > 0 && p[len - 1] == ' ')
		len--;
	if (len == 0)
		return NULL;
	return xstrndup(p, len);
}

/* 1 if the segment [s, s+n) is "." or "%2e" (any case), 2 for "..", its forms, else 0. */
static int
path_dot_segment(const char *s, size_t n)
{
	size_t dots = 0, i = 0;

	while (i < n) {
		if (s[i] == '.')
			i++;
		else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' &&
		    (s[i + 2] == 'e' || s[i + 2] == 'E'))
			i += 3;
		else
			return 0;
		if (++dots > 2)
			return 0;
	}
	return (int)dots;
}

char *
http_path_normalize(const char *uri)
{
	const char *p = uri, *end, *seg;
	const char **segs;
	size_t *lens, nseg = 0, len, n, i, o = 0;
	char *out;
	int dots;

	/* An absolute-form target ("http://host/path"): keep only its path. */
	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		p = strstr(p, "//") + 2;
		p += strcspn(p, "/?#");
	}
	len = strcspn(p, "?#");
	end = p + len;
	if (p < end && *p == '/')
		p++;
	segs = xreallocarray(NULL, len + 2, sizeof(*segs));
	lens = xreallocarray(NULL, len + 2, sizeof(*lens));
	/* Split on '/', resolving dot segments as the WHATWG URL parser does: a final
	 * "." or ".." leaves an empty last segment (a trailing slash). */
	for (;;) {
		seg = p;
		n = 0;
		while (seg + n < end && seg[n] != '/')
			n++;
		p = seg + n;
		dots = path_dot_segment(seg, n);
		if (dots == 2 && nseg > 0)
			nseg--;
		if (dots != 0) {
			if (p >= end) {
				segs[nseg] = "";
				lens[nseg++] = 0;
			}
		} else {
			segs[nseg] = seg;
			lens[nseg++] = n;
		}
		if (p >= end)
			break;
		p++;	/* the '/' */
	}
	out = xmalloc(len + 2);
	for (i = 0; i < nseg; i++) {
		out[o++] = '/';
		memcpy(out + o, segs[i], lens[i]);
		o += lens[i];
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	if (o > 1 && out[o - 1] == '/')
		out[o - 1] = '\0';
	free(segs);
	free(lens);
	return out;
}
