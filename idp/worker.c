/* worker.c: a worker process of idp: one libevent loop that serves HTTP on the shared
 * listener, talks to PostgreSQL (store.c) and to the signer (signclient.c), and hands
 * Argon2id to its thread pool (hashpool.c).
 *
 * Requests. One static route table (path, methods, handler); the handlers are in
 * h_<endpoint>.c. Every request gets a struct wreq that owns what the request allocates;
 * every path through a handler ends in one wreq_reply*, which adds the common headers,
 * sends, counts the request into this worker's metrics slot, writes the access-log line
 * and frees the wreq. A handler that waits (for the database, Argon2id or the signer)
 * watches its client's socket for EV_CLOSED meanwhile (wreq_async): a client that goes
 * away cancels the wait, and its request ends as 499 in the log.
 *
 * Connections. libevent 2.1's evhttp leaves gaps that are closed here: header and body
 * sizes are limited (evhttp_set_max_*); a request with two Content-Length headers, or
 * Content-Length with Transfer-Encoding, gets 400 and the connection is closed; and
 * since evhttp's timeouts restart on every byte, a client sending a header byte a
 * second would never be cut off, so each connection has a deadline of ours: a request
 * must have arrived whole within WORKER_REQUEST_DEADLINE_MS of the connection's start
 * or of the previous reply, or the socket is shut down. evhttp has no hook for a new
 * connection, but it asks us for each connection's bufferevent (evhttp_set_bevcb): we
 * record the connection then and, before the loop polls again, give the
 * evhttp_connection it has made since a close callback, which ends the record when evhttp
 * frees it. A sweep timer enforces the deadlines with shutdown(2), which evhttp then
 * sees as an end of file.
 *
 * Draining (SIGTERM): the listener goes at once; idle connections get a short grace
 * (a keep-alive client's next request is still answered, with Connection: close), busy
 * ones finish their request; the worker exits when no connection is left, or after
 * WORKER_DRAIN_MS whatever is left.
 */
#include <sys/queue.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "accesstoken.h"
#include "b64url.h"
#include "clients.h"
#include "hashpool.h"
#include "httputil.h"
#include "idp.h"
#include "log.h"
#include "metrics.h"
#include "revocation.h"
#include "secret.h"
#include "signclient.h"
#include "store.h"
#include "worker.h"
#include "xalloc.h"

#define WORKER_MAX_HEADERS		(16 * 1024)
#define WORKER_MAX_BODY			(16 * 1024)
#define WORKER_IO_TIMEOUT_S		10	/* evhttp's inactivity timeout */
#define WORKER_REQUEST_DEADLINE_MS	15000	/* a whole request, from idle */
#define WORKER_DRAIN_MS			10000
#define WORKER_DRAIN_GRACE_MS		1000	/* idle connections when draining */
#define WORKER_SWEEP_MS			1000
#define WORKER_DRAIN_SWEEP_MS		100
#define WORKER_CONN_BUCKETS		4096	/* power of two */
#define WORKER_ACCEPT_BATCH		4	/* then let other workers accept */
#define WORKER_ACCEPT_PAUSE_MS		2	/* a worker above its share waits */
#define WORKER_ACCEPT_SLACK		2	/* connections above the mean, at most */
#define WORKER_ALOG_FLUSH_MS		100
#define WORKER_ALOG_FLUSH_BYTES		3072	/* below PIPE_BUF: writes stay whole */

/* ---- connections ------------------------------------------------------------- */

struct wconn {
	LIST_ENTRY(wconn)	 chain;
	TAILQ_ENTRY(wconn)	 all;
	TAILQ_ENTRY(wconn)	 fresh;		/* on w->fresh until watched */
	struct worker		*w;
	struct bufferevent	*bev;
	struct wreq		*req;		/* the request being answered */
	uint64_t		 deadline_ms;
	int			 is_fresh;
	int			 shut;
};
LIST_HEAD(wconn_chain, wconn);
TAILQ_HEAD(wconn_list, wconn);

struct worker {
	const struct idp_config	*conf;
	int			 slot;
	struct event_base	*base;
	struct evhttp		*http;
	struct evhttp_bound_socket *bound;
	struct evconnlistener	*listener;
	struct event		*accept_resume;
	int			 accepted;	/* this loop iteration */
	struct event		*fresh_ev;
	struct wconn_list	 fresh;
	struct metrics		*metrics;
	struct metrics_slot	*ms;
	struct store		*store;
	struct signclient	*signer;
	struct hashpool		*hashpool;
	struct clients		*clients;
	struct revocation	*revocation;	/* revoked access tokens */
	struct limiter		*limit_client;
	struct limiter		*limit_addr;
	char			*www_authenticate;
	char			**cors;
	size_t			 ncors;
	int			 early_close;	/* the backend has EV_CLOSED */
	int			 draining;
	uint64_t		 drain_started;
	uint64_t		 drain_deadline;	/* idle connections close */
	uint64_t		 next_id;
	unsigned		 inflight;	/* requests dispatched, not replied */
	struct event		*sweep_ev;
	struct event		*sig_ev;		/* signalfd */
	struct evbuffer		*alog;		/* access-log lines not yet written */
	struct event		*alog_ev;
	int			 alog_on;
	char			 role[32];
	struct wconn_chain	 conn_buckets[WORKER_CONN_BUCKETS];
	struct wconn_list	 conns;
	size_t			 nconns;
};

uint64_t
worker_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
worker_now_ms(void)
{
	return worker_now_us() / 1000;
}

static struct wconn_chain *
wconn_bucket(struct worker *w, const struct bufferevent *bev)
{
	uintptr_t p = (uintptr_t)bev;

	return &w->conn_buckets[(p >> 6 ^ p >> 16) & (WORKER_CONN_BUCKETS - 1)];
}

static struct wconn *
wconn_find(struct worker *w, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct wconn *c;

	if (evcon == NULL || (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	LIST_FOREACH(c, wconn_bucket(w, bev), chain)
		if (c->bev == bev)
			return c;
	return NULL;
}

static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	w->accepted = 0;
	if (!w->draining && w->listener != NULL)
		evconnlistener_enable(w->listener);
}

/*
 * Every worker is woken by a new connection and the first to run takes it; left alone,
 * an idle worker would take a whole burst. So a worker takes at most
 * WORKER_ACCEPT_BATCH per loop iteration, and one that holds more than its share of
 * all workers' connections (a gauge in the shared metrics) stops accepting for
 * WORKER_ACCEPT_PAUSE_MS, leaving the next ones to the others.
 */
static void
worker_accept_pace(struct worker *w)
{
	struct timeval tv = { 0, WORKER_ACCEPT_PAUSE_MS * 1000 };
	long share;

	metrics_connections_set(w->ms, (long)w->nconns);
	if (w->listener == NULL)
		return;
	share = metrics_connections_total(w->metrics) / metrics_nslots(w->metrics);
	if ((long)w->nconns > share + WORKER_ACCEPT_SLACK) {
		evconnlistener_disable(w->listener);
		event_del(w->accept_resume);
		evtimer_add(w->accept_resume, &tv);
	} else if (++w->accepted >= WORKER_ACCEPT_BATCH) {
		evconnlistener_disable(w->listener);
		event_active(w->accept_resume, 0, 0);
	}
}

/* evhttp frees a connection: it calls this first, while the bufferevent is valid. */
static void
wconn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct wconn *c = arg;
	struct worker *w = c->w;

	if (c->req != NULL) {
		/* Not seen so far (evhttp does not read while a request is answered),
		 * but the close watch must not outlive the socket. */
		if (c->req->close_ev != NULL)
			event_del(c->req->close_ev);
		c->req->conn = NULL;
	}
	if (c->is_fresh)
		TAILQ_REMOVE(&w->fresh, c, fresh);
	LIST_REMOVE(c, chain);
	TAILQ_REMOVE(&w->conns, c, all);
	w->nconns--;
	metrics_connections_set(w->ms, (long)w->nconns);
	free(c);
}

/* New connections get their close callback, now that evhttp has made them. */
static void
wconn_fresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	struct wconn *c;
	void *evcon;

	while ((c = TAILQ_FIRST(&w->fresh)) != NULL) {
		TAILQ_REMOVE(&w->fresh, c, fresh);
		c->is_fresh = 0;
		/* evhttp's callbacks on a connection's bufferevent take the
		 * evhttp_connection as their argument. */
		bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, &evcon);
		if (evcon == NULL)
			fatalx("a connection without evhttp_connection");
		evhttp_connection_set_closecb(evcon, wconn_closed_cb, c);
	}
}

/*
 * evhttp asks for the bufferevent of each new connection, its one hook for them. The
 * evhttp_connection is made just after, with nothing read yet; the fresh event, run
 * before the loop polls again, gives it the close callback that ends our record of it.
 */
static struct bufferevent *
worker_bevcb(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct bufferevent *bev;
	struct wconn *c;

	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new");
	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->bev = bev;
	c->deadline_ms = worker_now_ms() + WORKER_REQUEST_DEADLINE_MS;
	if (w->draining)
		c->deadline_ms = w->drain_deadline;
	LIST_INSERT_HEAD(wconn_bucket(w, bev), c, chain);
	TAILQ_INSERT_TAIL(&w->conns, c, all);
	w->nconns++;
	c->is_fresh = 1;
	TAILQ_INSERT_TAIL(&w->fresh, c, fresh);
	event_active(w->fresh_ev, 0, 0);
	worker_accept_pace(w);
	return bev;
}

/* Cut a connection off; evhttp sees the end of file and frees it. */
static void
wconn_shutdown(struct wconn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (!c->shut && fd >= 0)
		shutdown(fd, SHUT_RDWR);
	c->shut = 1;
}

static void __attribute__((noreturn))
worker_exit(struct worker *w, int status)
{
	exit(status);
}

static void
worker_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct wconn *c;
	uint64_t now = worker_now_ms();

	TAILQ_FOREACH(c, &w->conns, all)
		if (c->req == NULL && now >= c->deadline_ms)
			wconn_shutdown(c);
	if (w->draining) {
		if (w->nconns == 0 && w->inflight == 0) {
			log_debug("drained");
			worker_exit(w, 0);
		}
		if (now >= w->drain_started + WORKER_DRAIN_MS) {
			log_warnx("drain: giving up on %u requests and %zu connections",
			    w->inflight, w->nconns);
			worker_exit(w, 0);
		}
	}
}

static void
worker_drain(struct worker *w)
{
	struct timeval tv = { 0, WORKER_DRAIN_SWEEP_MS * 1000 };
	struct wconn *c;

	if (w->draining)
		return;
	w->draining = 1;
	w->drain_started = worker_now_ms();
	w->drain_deadline = w->drain_started + WORKER_DRAIN_GRACE_MS;
	if (w->bound != NULL) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
		w->listener = NULL;
	}
	TAILQ_FOREACH(c, &w->conns, all)
		if (c->deadline_ms > w->drain_deadline)
			c->deadline_ms = w->drain_deadline;
	log_info("draining: %u requests in flight, %zu connections", w->inflight,
	    w->nconns);
	event_del(w->sweep_ev);
	event_add(w->sweep_ev, &tv);
}

static void
worker_signal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signalfd_siginfo si;
	int drain = 0;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		drain |= si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT;
	if (drain)
		worker_drain(arg);
}

/* ---- the access log --------------------------------------------------------- */

/*
 * One line per request, the same shape as log.c's lines, but gathered and written
 * every WORKER_ALOG_FLUSH_MS (or WORKER_ALOG_FLUSH_BYTES) instead of one write(2) per
 * request, which would cost a third of a JWKS request. Each write holds whole lines and
 * stays under PIPE_BUF, so lines from several processes never interleave. A line may
 * thus follow, by up to the flush interval, a diagnostic that was logged after it.
 */
static struct worker	*alog_worker;	/* for atexit */

static void
worker_alog_flush(struct worker *w)
{
	size_t len, n;
	const char *p, *nl;
	ssize_t wr;

	while ((len = evbuffer_get_length(w->alog)) > 0) {
		n = len > 4000 ? 4000 : len;
		p = (const char *)evbuffer_pullup(w->alog, (ev_ssize_t)n);
		if (n < len && (nl = memrchr(p, '\n', n)) != NULL)
			n = (size_t)(nl - p) + 1;
		do
			wr = write(STDERR_FILENO, p, n);
		while (wr == -1 && errno == EINTR);
		/* A log that cannot be written is dropped, never waited for. */
		evbuffer_drain(w->alog, n);
	}
}

static void
worker_alog_atexit(void)
{
	if (alog_worker != NULL && alog_worker->alog != NULL)
		worker_alog_flush(alog_worker);
}

static void
worker_alog_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_alog_flush(arg);
}

static void __attribute__((format(printf, 2, 3)))
worker_alog(struct worker *w, const char *fmt, ...)
{
	struct timeval tv = { 0, WORKER_ALOG_FLUSH_MS * 1000 };
	char line[512];
	va_list ap;
	size_t i;

	if (!w->alog_on)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (i = 0; line[i] != '\0'; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	evbuffer_add_printf(w->alog, "%s: info: %s\n", w->role, line);
	if (evbuffer_get_length(w->alog) >= WORKER_ALOG_FLUSH_BYTES)
		worker_alog_flush(w);
	else if (!evtimer_pending(w->alog_ev, NULL))
		evtimer_add(w->alog_ev, &tv);
}

/* ---- blobs ------------------------------------------------------------------- */

struct blob *
blob_new(const void *data, size_t len)
{
	struct blob *b = xmalloc(sizeof(*b) + len + 1);

	b->refs = 1;
	b->len = len;
	memcpy(b->data, data, len);
	b->data[len] = '\0';
	return b;
}

struct blob *
blob_ref(struct blob *b)
{
	b->refs++;
	return b;
}

void
blob_unref(struct blob *b)
{
	if (b != NULL && --b->refs == 0)
		free(b);
}

static void
blob_evbuffer_cleanup(const void *data, size_t len, void *arg)
{
	blob_unref(arg);
}

/* ---- replies ----------------------------------------------------------------- */

static const char *
method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "?";
}

void
wreq_header(struct wreq *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

const char *
wreq_get_header(struct wreq *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

static void
wreq_free(struct wreq *r)
{
	if (r->close_ev != NULL)
		event_free(r->close_ev);
	free(r->path);
	free(r->client_id);
	free(r);
}

/* Send status with body (NULL: none) of bodylen bytes and end the request. */
static void
wreq_finish(struct wreq *r, int status, struct evbuffer *body, size_t bodylen)
{
	struct worker *w = r->w;
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	uint64_t lat;
	char len[32];

	evhttp_add_header(h, "X-Request-Id", r->id);
	if (r->cors_origin != NULL) {
		evhttp_add_header(h, "Access-Control-Allow-Origin", r->cors_origin);
		evhttp_add_header(h, "Vary", "Origin");
	}
	if (w->draining)
		evhttp_add_header(h, "Connection", "close");
	if (r->method == EVHTTP_REQ_HEAD && status != 204 && status != 304) {
		/* evhttp would send a HEAD body: say how long it is, and send none. */
		snprintf(len, sizeof(len), "%zu", bodylen);
		evhttp_add_header(h, "Content-Length", len);
		body = NULL;
	}
	if (r->gone)
		status = 499;	/* not that anyone reads it */
	evhttp_send_reply(r->req, status, http_status_reason(status), body);

	lat = worker_now_us() - r->start_us;
	metrics_request(w->ms, r->route, status, lat);
	worker_alog(w, "%s %s %s %d client=%s %llu.%03llums", r->id, method_name(r->method),
	    r->path, status, r->client_id != NULL ? r->client_id : "-",
	    (unsigned long long)(lat / 1000), (unsigned long long)(lat % 1000));
	if (r->conn != NULL) {
		r->conn->req = NULL;
		/* Draining, the reply says Connection: close and evhttp closes once it
		 * is written; the deadline is for a client that does not read it. */
		r->conn->deadline_ms = worker_now_ms() + (w->draining ?
		    WORKER_DRAIN_GRACE_MS : WORKER_REQUEST_DEADLINE_MS);
	}
	w->inflight--;
	wreq_free(r);
}

void
wreq_reply(struct wreq *r, int status, const char *content_type, const void *data,
    size_t len)
{
	struct evbuffer *b = NULL;

	if (content_type != NULL)
		wreq_header(r, "Content-Type", content_type);
	if (len > 0) {
		b = evbuffer_new();
		evbuffer_add(b, data, len);
	}
	wreq_finish(r, status, b, len);
	if (b != NULL)
		evbuffer_free(b);
}

void
wreq_reply_blob(struct wreq *r, int status, const char *content_type, struct blob *bl)
{
	struct evbuffer *b = evbuffer_new();

	if (content_type != NULL)
		wreq_header(r, "Content-Type", content_type);
	evbuffer_add_reference(b, bl->data, bl->len, blob_evbuffer_cleanup, blob_ref(bl));
	wreq_finish(r, status, b, bl->len);
	evbuffer_free(b);
}

void
wreq_reply_json(struct wreq *r, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);

	if (s == NULL)
		fatalx("json_dumps: out of memory");
	wreq_reply(r, status, WORKER_CT_JSON, s, strlen(s));
	free(s);
	json_decref(body);
}

void
wreq_reply_error(struct wreq *r, int status, const char *error, const char *description)
{
	json_t *body = json_object();

	json_object_set_new(body, "error", json_string(error));
	if (description != NULL)
		json_object_set_new(body, "error_description", json_string(description));
	wreq_reply_json(r, status, body);
}

void
wreq_reply_empty(struct wreq *r, int status)
{
	wreq_finish(r, status, NULL, 0);
}

void
worker_etag(const void *data, size_t len, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	char *b;

	if (!EVP_Q_digest(NULL, "SHA256", NULL, data, len, md, &mdlen))
		fatalx("SHA-256 unavailable");
	b = b64url_encode(md, 16);
	snprintf(out, outlen, "\"%s\"", b);
	free(b);
}

int
wreq_etag_matches(struct wreq *r, const char *etag)
{
	const char *inm = wreq_get_header(r, "If-None-Match"), *p, *q;
	size_t elen = strlen(etag), n;

	if (inm == NULL)
		return 0;
	for (p = inm; *p != '\0'; p = q) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		q = p + strcspn(p, ",");
		n = (size_t)(q - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 1 && *p == '*')
			return 1;
		if (n > 2 && strncmp(p, "W/", 2) == 0) {	/* weak comparison */
			p += 2;
			n -= 2;
		}
		if (n == elen && memcmp(p, etag, n) == 0)
			return 1;
	}
	return 0;
}

static void
wreq_close_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wreq *r = arg;

	r->gone = 1;
	if (r->cancel != NULL)
		r->cancel(r);	/* which ends in the reply that frees r */
}

void
wreq_async(struct wreq *r, void (*cancel)(struct wreq *))
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	evutil_socket_t fd;

	r->cancel = cancel;
	if (!r->w->early_close || r->close_ev != NULL ||
	    (evcon = evhttp_request_get_connection(r->req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (fd = bufferevent_getfd(bev)) < 0)
		return;
	if ((r->close_ev = event_new(r->w->base, fd, EV_CLOSED, wreq_close_cb, r)) != NULL)
		event_add(r->close_ev, NULL);
}

/* ---- routing ----------------------------------------------------------------- */

#define M_GET	(EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define M_POST	EVHTTP_REQ_POST

static const struct route {
	const char		*path;
	enum metrics_route	 route;
	int			 methods;
	int			 cors;		/* CORS for cors_origins */
	int			 no_store;	/* Cache-Control: no-store on all replies */
	void			(*handler)(struct wreq *);
} routes[] = {
	{ "/.well-known/openid-configuration", MR_DISCOVERY, M_GET, 1, 0, h_discovery },
	/* RFC 8414's name for the same metadata (OAuth 2.0 clients look there). */
	{ "/.well-known/oauth-authorization-server", MR_DISCOVERY, M_GET, 1, 0,
	    h_discovery },
	{ "/jwks", MR_JWKS, M_GET, 1, 0, h_jwks },
	{ "/.well-known/jwks.json", MR_JWKS, M_GET, 1, 0, h_jwks },
	{ "/.well-known/openid-configuration/jwks", MR_JWKS, M_GET, 1, 0, h_jwks },
	{ "/token", MR_TOKEN, M_POST, 1, 1, h_token },
	/* The browser side: never CORS; the pages set their own headers. */
	{ "/authorize", MR_AUTHORIZE, M_GET | M_POST, 0, 1, h_authorize },
	{ "/login", MR_LOGIN, M_POST, 0, 1, h_login },
	{ "/consent", MR_CONSENT, M_POST, 0, 1, h_consent },
	{ "/logout", MR_LOGOUT, M_GET | M_POST, 0, 1, h_logout },
	/* The token side. */
	{ "/userinfo", MR_USERINFO, M_GET | M_POST, 1, 1, h_userinfo },
	{ "/introspect", MR_INTROSPECT, M_POST, 1, 1, h_introspect },
	{ "/revoke", MR_REVOKE, M_POST, 1, 1, h_revoke },
	{ "/healthz", MR_HEALTHZ, M_GET, 0, 1, h_healthz },
	{ "/readyz", MR_READYZ, M_GET, 0, 1, h_readyz },
	{ "/metrics", MR_METRICS, M_GET, 0, 1, h_metrics },
};

static const struct route *
route_find(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, path) == 0)
			return &routes[i];
	return NULL;
}

static const char *
cors_allowed(struct worker *w, const char *origin)
{
	size_t i;

	if (origin == NULL)
		return NULL;
	for (i = 0; i < w->ncors; i++)
		if (strcmp(w->cors[i], origin) == 0)
			return w->cors[i];
	return NULL;
}

static void
route_allow(const struct route *rt, struct worker *w, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", rt->methods == M_POST ? "POST" :
	    rt->methods == M_GET ? "GET, HEAD" : "GET, HEAD, POST",
	    rt->cors && w->ncors > 0 ? ", OPTIONS" : "");
}

static void
worker_dispatch(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const struct route *rt;
	struct wreq *r;
	const char *errstr, *origin;
	char allow[64];

	r = xcalloc(1, sizeof(*r));
	r->w = w;
	r->req = req;
	r->start_us = worker_now_us();
	r->method = evhttp_request_get_command(req);
	r->path = http_path_normalize(evhttp_request_get_uri(req));
	if (strlen(r->path) > 200)
		strcpy(r->path + 197, "...");
	snprintf(r->id, sizeof(r->id), "%d-%llx", w->slot,
	    (unsigned long long)++w->next_id);
	w->inflight++;
	if ((r->conn = wconn_find(w, req)) != NULL)
		r->conn->req = r;
	rt = route_find(r->path);
	r->route = rt != NULL ? rt->route : MR_NOT_FOUND;
	if (rt != NULL && rt->no_store)
		http_set_no_store(req);

	if (http_check_framing(req, &errstr) == -1) {
		log_info("%s: rejected: %s", r->id, errstr);
		wreq_header(r, "Connection", "close");
		wreq_reply_error(r, 400, "invalid_request", errstr);
		return;
	}
	if (rt == NULL) {
		wreq_reply_error(r, 404, "not_found", NULL);
		return;
	}
	origin = wreq_get_header(r, "Origin");
	if (rt->cors)
		r->cors_origin = cors_allowed(w, origin);
	if (r->method == EVHTTP_REQ_OPTIONS && rt->cors && w->ncors > 0) {
		route_allow(rt, w, allow, sizeof(allow));
		wreq_header(r, "Allow", allow);
		if (r->cors_origin != NULL) {
			wreq_header(r, "Access-Control-Allow-Methods", allow);
			wreq_header(r, "Access-Control-Allow-Headers",
			    "Authorization, Content-Type, If-None-Match");
			wreq_header(r, "Access-Control-Max-Age", "600");
		}
		wreq_reply_empty(r, 204);
		return;
	}
	if ((r->method & rt->methods) == 0) {
		route_allow(rt, w, allow, sizeof(allow));
		wreq_header(r, "Allow", allow);
		wreq_reply_error(r, 405, "method_not_allowed", NULL);
		return;
	}
	if (rt->route == MR_TOKEN) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(req);
		char *host = NULL;
		ev_uint16_t port;

		if (evcon != NULL)
			evhttp_connection_get_peer(evcon, &host, &port);
		snprintf(r->addr, sizeof(r->addr), "%s", host != NULL ? host : "-");
	}
	rt->handler(r);
}

/* ---- the parts the handlers read ------------------------------------------------ */

const struct idp_config *worker_conf(struct worker *w) { return w->conf; }
struct metrics_slot *worker_metrics_slot(struct worker *w) { return w->ms; }
struct metrics *worker_metrics(struct worker *w) { return w->metrics; }
struct clients *worker_clients(struct worker *w) { return w->clients; }
struct signclient *worker_signer(struct worker *w) { return w->signer; }
struct limiter *worker_limiter_client(struct worker *w) { return w->limit_client; }
struct limiter *worker_limiter_addr(struct worker *w) { return w->limit_addr; }
struct store *worker_store(struct worker *w) { return w->store; }
struct hashpool *worker_hashpool(struct worker *w) { return w->hashpool; }
struct revocation *worker_revocation(struct worker *w) { return w->revocation; }
struct event_base *worker_base(struct worker *w) { return w->base; }
int worker_db_up(struct worker *w) { return store_up(w->store); }
int worker_signer_up(struct worker *w) { return signclient_up(w->signer); }
const char *worker_www_authenticate(struct worker *w) { return w->www_authenticate; }

/* ---- the database and the signer ------------------------------------------------ */

static void
worker_notify_cb(const char *channel, const char *payload, void *arg)
{
	struct worker *w = arg;

	if (strcmp(channel, "idp_clients") == 0 && payload != NULL) {
		log_debug("client %s changed", payload);
		clients_invalidate(w->clients, payload);
	} else if (strcmp(channel, "idp_revocations") == 0 && payload != NULL)
		revocation_notify(w->revocation, payload);
}

static void
worker_db_state_cb(int up, void *arg)
{
	struct worker *w = arg;

	/* Notifications may have been missed while the connection was down. */
	if (up) {
		clients_flush(w->clients);
		revocation_sync(w->revocation);
	} else
		revocation_unsync(w->revocation);
}

static void
worker_keys_cb(const char *payload, size_t len, void *arg)
{
	struct worker *w = arg;

	h_jwks_update(payload, len, w->conf->jwks_max_age);
	accesstoken_keys_update(payload, len);
}

/* ---- start ------------------------------------------------------------------- */

static void
worker_cors_init(struct worker *w, const char *list)
{
	const char *p;
	size_t n;

	for (p = list != NULL ? list : ""; *p != '\0'; p += n) {
		p += strspn(p, " \t,");
		if ((n = strcspn(p, " \t,")) == 0)
			break;
		w->cors = xreallocarray(w->cors, w->ncors + 1, sizeof(*w->cors));
		w->cors[w->ncors++] = xstrndup(p, n);
	}
}

void
worker_main(const struct idp_config *conf, int http_fd, const char *signer_path, int slot,
    struct metrics *metrics)
{
	struct timeval sweep = { WORKER_SWEEP_MS / 1000, (WORKER_SWEEP_MS % 1000) * 1000 };
	struct event_config *cfg;
	struct worker *w;
	struct sigaction sa;
	sigset_t mask;
	size_t i, shmlen;
	int sigfd;
	void *shm;
	char *realm;

	w = xcalloc(1, sizeof(*w));
	w->conf = conf;
	w->slot = slot;
	snprintf(w->role, sizeof(w->role), "worker %d", slot);
	w->alog_on = log_get_level() >= LOG_LVL_INFO;
	alog_worker = w;
	atexit(worker_alog_atexit);
	w->metrics = metrics;
	if ((w->ms = metrics_slot(metrics, slot)) == NULL)
		fatalx("no metrics slot %d", slot);
	TAILQ_INIT(&w->conns);
	TAILQ_INIT(&w->fresh);
	for (i = 0; i < WORKER_CONN_BUCKETS; i++)
		LIST_INIT(&w->conn_buckets[i]);

	/* Signals: SIGTERM and SIGINT drain, read from a signalfd by the loop (libevent's
	 * own signal events would clash with the parent's loop, which this process
	 * inherited); SIGHUP is the parent's business. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	if ((sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");

	/* Only this thread touches the loop (the hash pool hands back through a pipe),
	 * so no locking. The changelist folds evhttp's many enable/disable calls per
	 * request into one epoll_ctl (a fifth less CPU per JWKS request); it is safe as
	 * no descriptor here is dup()ed and every event on a socket is deleted before
	 * the socket is closed (a number reused within one iteration turns into an
	 * EPOLL_CTL_MOD that libevent retries as ADD). */
	if ((cfg = event_config_new()) == NULL)
		fatalx("event_config_new");
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	if ((w->base = event_base_new_with_config(cfg)) == NULL)
		fatalx("event_base_new");
	event_config_free(cfg);
	log_libevent();
	w->early_close = (event_base_get_features(w->base) & EV_FEATURE_EARLY_CLOSE) != 0;

	if ((w->http = evhttp_new(w->base)) == NULL)
		fatalx("evhttp_new");
	evhttp_set_max_headers_size(w->http, WORKER_MAX_HEADERS);
	evhttp_set_max_body_size(w->http, WORKER_MAX_BODY);
	evhttp_set_timeout(w->http, WORKER_IO_TIMEOUT_S);
	/* Every method reaches the dispatcher, which answers 405 in JSON itself. */
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(w->http, NULL);
	evhttp_set_gencb(w->http, worker_dispatch, w);
	evhttp_set_bevcb(w->http, worker_bevcb, w);
	if ((w->bound = evhttp_accept_socket_with_handle(w->http, http_fd)) == NULL)
		fatalx("cannot accept on the listening socket");
	w->listener = evhttp_bound_socket_get_listener(w->bound);
	w->accept_resume = evtimer_new(w->base, accept_resume_cb, w);
	metrics_connections_set(w->ms, 0);
	w->fresh_ev = event_new(w->base, -1, 0, wconn_fresh_cb, w);
	if (w->accept_resume == NULL || w->fresh_ev == NULL)
		fatalx("event_new");

	w->sig_ev = event_new(w->base, sigfd, EV_READ | EV_PERSIST, worker_signal_cb, w);
	w->sweep_ev = event_new(w->base, -1, EV_PERSIST, worker_sweep_cb, w);
	w->alog = evbuffer_new();
	w->alog_ev = evtimer_new(w->base, worker_alog_cb, w);
	if (w->sig_ev == NULL || w->sweep_ev == NULL || w->alog == NULL ||
	    w->alog_ev == NULL)
		fatalx("cannot create the worker's events");
	event_add(w->sig_ev, NULL);
	event_add(w->sweep_ev, &sweep);

	worker_cors_init(w, conf->cors_origins);
	realm = xstrdup(conf->issuer);
	for (i = 0; realm[i] != '\0'; i++)
		if (realm[i] == '"' || realm[i] == '\\')
			realm[i] = '_';
	w->www_authenticate = xasprintf("Basic realm=\"%s\"", realm);
	free(realm);
	h_discovery_init(w, conf);

	w->hashpool = hashpool_new(w->base, (int)conf->argon2_threads,
	    (int)conf->argon2_queue);
	w->store = store_new(w->base, conf->database, worker_notify_cb, worker_db_state_cb,
	    w);
	w->clients = clients_new(w->store, w->hashpool, CLIENTS_MAX_ENTRIES);
	/* A revoked jti learnt by NOTIFY is kept, until its row says when its token
	 * expires, for the longest any access token can live (conf.c's bound). */
	w->revocation = revocation_new(w->base, w->store, 86400);
	/* The limiter's tables are shared by every worker: the limits are the server's. */
	shm = metrics_shared(metrics, &shmlen);
	shmlen = (shmlen - METRICS_SHARED_KEYBYTES) / 2;
	w->limit_client = limiter_new((unsigned char *)shm + METRICS_SHARED_KEYBYTES,
	    shmlen, shm);
	w->limit_addr = limiter_new((unsigned char *)shm + METRICS_SHARED_KEYBYTES + shmlen,
	    shmlen, shm);
	w->signer = signclient_new(w->base, signer_path, worker_keys_cb, NULL, w);

	log_debug("serving");
	event_base_dispatch(w->base);
	worker_exit(w, 0);
}
