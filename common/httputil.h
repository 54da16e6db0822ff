/* httputil.h: evhttp helpers shared by both servers: replies (JSON, OAuth errors,
 * problem+json, redirects), CORS headers, request framing checks, path normalisation. */
#ifndef IDP_HTTPUTIL_H
#define IDP_HTTPUTIL_H

#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

#define HTTP_CT_JSON		"application/json; charset=utf-8"
#define HTTP_CT_PROBLEM		"application/problem+json; charset=utf-8"
#define HTTP_CT_TEXT		"text/plain; charset=utf-8"
#define HTTP_CT_HTML		"text/html; charset=utf-8"

/* The reason phrase for a status ("Not Found"); "Unknown" for others. */
const char	*http_status_reason(int status);

/* Send body (compact JSON, insertion order) with status and the JSON content type.
 * Steals the reference to body. */
void	http_reply_json(struct evhttp_request *req, int status, json_t *body);
/* Send len bytes with the given content type (NULL = none). */
void	http_reply_raw(struct evhttp_request *req, int status, const char *content_type,
	    const void *data, size_t len);
/* Send no body (Content-Length: 0 unless the status forbids a body, as 204 does). */
void	http_reply_empty(struct evhttp_request *req, int status);
/* 302 (or the given status) to location, empty body. */
void	http_reply_redirect(struct evhttp_request *req, int status, const char *location);
/* RFC 9457 problem+json: {"type": RFC 9110 section for status, "title": reason,
 * "detail": detail}. */
void	http_reply_problem(struct evhttp_request *req, int status, const char *detail);
/* RFC 6749 section 5.2 error: {"error": error[, "error_description": description]},
 * with Cache-Control: no-store and Pragma: no-cache. */
void	http_reply_oauth_error(struct evhttp_request *req, int status, const char *error,
	    const char *description);

/* Cache-Control: no-store and Pragma: no-cache on the response. */
void	http_set_no_store(struct evhttp_request *req);
/* The three permissive CORS headers oauth2-mock-server sends on every response. */
void	http_set_cors_any(struct evhttp_request *req);

/* Reject requests whose framing is ambiguous: more than one Content-Length, or both
 * Content-Length and Transfer-Encoding (request smuggling). 0 if fine, -1 + *errstr. */
int	http_check_framing(struct evhttp_request *req, const char **errstr);
/* The request body as one contiguous buffer owned by the request (NOT NUL-terminated);
 * *len gets its length. NULL with *len 0 for an empty body. */
const char *http_body(struct evhttp_request *req, size_t *len);
/* 1 if the request's Content-Type contains needle (case-insensitive), else 0. */
int	http_content_type_has(struct evhttp_request *req, const char *needle);

/* Parse "Basic base64(user:pass)" (scheme case-insensitive). Returns 1 and new strings
 * in *user and *pass (caller frees) when well-formed, 0 when the header is absent or not
 * Basic, -1 when it is Basic but malformed. The strings are not URL-decoded. */
int	http_basic_credentials(const char *authorization, char **user, char **pass);
/* The Bearer token of an Authorization header (scheme case-insensitive) as a new
 * string, or NULL. */
char	*http_bearer_token(const char *authorization);

/* The path of a request target: query and fragment dropped, "." and ".." segments
 * resolved (also their %2e forms), then one trailing '/' removed unless the path is
 * "/". Percent-escapes and case are kept. Returns a new string. */
char	*http_path_normalize(const char *uri);

#endif
