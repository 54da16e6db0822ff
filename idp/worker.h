/* worker.h: idp's worker process, which serves HTTP on the shared listener; below the
 * parent's entry point, what the worker's handlers (h_*.c) share. */
#ifndef IDP_WORKER_H
#define IDP_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>

#include "metrics.h"

struct idp_config;
struct metrics;

/* Run a worker in a child the parent forked, after sodium_init and log_init. Serves
 * HTTP on http_fd (listening, non-blocking, shared by all workers), signs through the
 * signer at signer_path, counts into metrics slot slot. SIGTERM (or SIGINT) drains:
 * accepting stops at once, requests in flight are finished (at most 10 s), then exit(0).
 * SIGHUP is ignored. Fatal errors exit(1) through fatalx. */
void	worker_main(const struct idp_config *conf, int http_fd, const char *signer_path,
	    int slot, struct metrics *metrics) __attribute__((noreturn));

/* ---- inside the worker process ---------------------------------------------------- */

/* Immutable bytes shared by the responses that send them (discovery, JWKS): replies
 * reference them instead of copying, and the last reply sent frees them. */
struct blob {
	int	refs;
	size_t	len;
	char	data[];
};

/* A new blob with one reference, holding a copy of len bytes. */
struct blob	*blob_new(const void *data, size_t len);
struct blob	*blob_ref(struct blob *);
void		 blob_unref(struct blob *);

struct wconn;
struct worker;

/* A request being served: owns everything the request allocates, freed by the reply. */
struct wreq {
	struct worker		*w;
	struct evhttp_request	*req;
	struct wconn		*conn;
	enum metrics_route	 route;
	enum evhttp_cmd_type	 method;
	char			*path;		/* normalised, without query */
	uint64_t		 start_us;	/* monotonic */
	char			 id[32];	/* request id: "<slot>-<counter>" */
	char			*client_id;	/* for the access log, once known */
	const char		*cors_origin;	/* the request's Origin, when allowed */
	char			 addr[64];	/* remote address */
	struct event		*close_ev;	/* EV_CLOSED watch while async */
	int			 gone;		/* the client closed the connection */
	/* Set by a handler that waits for something: called when the client goes
	 * away, it must cancel what it waits for, which ends in its reply. */
	void			(*cancel)(struct wreq *);
	void			*hctx;
};

/* Replies. Each ends the request: r is freed and must not be used afterwards. HEAD
 * requests get the headers (with the body's Content-Length) and no body. */
void	wreq_reply(struct wreq *r, int status, const char *content_type,
	    const void *data, size_t len);
void	wreq_reply_blob(struct wreq *r, int status, const char *content_type,
	    struct blob *b);
/* Compact JSON; steals body. */
void	wreq_reply_json(struct wreq *r, int status, json_t *body);
/* {"error": error[, "error_description": description]}. */
void	wreq_reply_error(struct wreq *r, int status, const char *error,
	    const char *description);
void	wreq_reply_empty(struct wreq *r, int status);

/* Add a response header (before the reply). */
void	 wreq_header(struct wreq *r, const char *name, const char *value);
/* A request header, or NULL. */
const char *wreq_get_header(struct wreq *r, const char *name);
/* 1 if the request's If-None-Match names etag (or "*"). */
int	 wreq_etag_matches(struct wreq *r, const char *etag);
/* Watch for the client closing its connection while the handler waits: then r->cancel
 * is called. Call once, before going asynchronous. */
void	 wreq_async(struct wreq *r, void (*cancel)(struct wreq *));

/* The content type of every JSON reply. */
#define WORKER_CT_JSON	"application/json"

/* A strong ETag (quoted) for len bytes: base64url of the first 128 bits of their
 * SHA-256, written to out (at least 25 bytes). */
void	 worker_etag(const void *data, size_t len, char *out, size_t outlen);

/* Monotonic clock. */
uint64_t worker_now_us(void);
uint64_t worker_now_ms(void);

/* What the handlers read of the worker. */
const struct idp_config	*worker_conf(struct worker *);
struct metrics_slot	*worker_metrics_slot(struct worker *);
struct metrics		*worker_metrics(struct worker *);
struct clients		*worker_clients(struct worker *);
struct signclient	*worker_signer(struct worker *);
struct limiter		*worker_limiter_client(struct worker *);
struct limiter		*worker_limiter_addr(struct worker *);
struct store		*worker_store(struct worker *);
struct hashpool		*worker_hashpool(struct worker *);
struct revocation	*worker_revocation(struct worker *);
struct event_base	*worker_base(struct worker *);
int			 worker_db_up(struct worker *);
int			 worker_signer_up(struct worker *);
/* WWW-Authenticate value for 401 invalid_client: Basic realm="<issuer>". */
const char		*worker_www_authenticate(struct worker *);

/* h_discovery.c: the discovery document, built once. */
void	h_discovery_init(struct worker *, const struct idp_config *);
void	h_discovery(struct wreq *);
/* h_jwks.c: the key set from the signer's IPC_KEYS. */
void	h_jwks_update(const char *payload, size_t len, long default_max_age);
int	h_jwks_loaded(void);
/* The published public JWK with this kid (a new reference), or NULL: for checking
 * id_token_hint (h_logout.c). */
json_t	*h_jwks_find(const char *kid);
/* Append idp_signing_key_age_seconds for the keys of the last IPC_KEYS. */
void	h_jwks_render_metrics(struct evbuffer *out, long long now);
void	h_jwks(struct wreq *);
/* h_token.c */
void	h_token(struct wreq *);
/* The browser side: h_authorize.c, h_login.c, h_consent.c, h_logout.c. */
void	h_authorize(struct wreq *);
void	h_login(struct wreq *);
void	h_consent(struct wreq *);
void	h_logout(struct wreq *);
/* The token side: h_userinfo.c, h_introspect.c, h_revoke.c. */
void	h_userinfo(struct wreq *);
void	h_introspect(struct wreq *);
void	h_revoke(struct wreq *);
/* h_healthz.c, h_readyz.c, h_metrics.c */
void	h_healthz(struct wreq *);
void	h_readyz(struct wreq *);
void	h_metrics(struct wreq *);

#endif
