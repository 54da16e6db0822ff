/* store.c: the worker's asynchronous PostgreSQL connection, and every SQL statement the
 * worker runs, in one table.
 *
 * One connection, one command at a time, a FIFO queue in front of it. The connection is
 * opened with PQconnectStart/PQconnectPoll and driven by libevent, then every statement
 * of the table is prepared and LISTEN is run; queries are sent with PQsendQueryPrepared
 * and their results read when the socket is readable, so the loop never waits for the
 * database. Notifications arrive on the same socket at any time.
 *
 * Failure: a lost connection (PQconsumeInput fails, CONNECTION_BAD, SQLSTATE class 08
 * or an administrator shutdown, class 57P0x) is reconnected at once; the query that was
 * running goes back to the head of the queue to be sent once more. If that connection
 * attempt fails, everything queued fails with STORE_UNAVAILABLE and, until a later
 * attempt (100 ms doubling to 5 s) succeeds, store_exec refuses new queries at once, so
 * /token answers 503 quickly instead of piling up. A query older than
 * STORE_QUERY_TIMEOUT_MS fails the same way; if it was the one on the wire, the
 * connection is taken for dead (a silent network) and replaced.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "log.h"
#include "store.h"
#include "xalloc.h"

#define STORE_CONNECT_TIMEOUT_MS	5000
#define STORE_RETRY_MIN_MS		100
#define STORE_RETRY_MAX_MS		5000
#define STORE_SWEEP_MS			250
#define STORE_MAX_QUEUE			4096

static const struct store_statement {
	const char	*name;
	const char	*sql;
	int		 nparams;
} store_statements[STORE__COUNT] = {
	[STORE_CLIENT_GET] = { "client_get",
	    "SELECT c.id, c.public, c.disabled, array_to_json(c.grants)::text, "
	    "array_to_json(c.scopes)::text, array_to_json(c.default_scopes)::text, "
	    "array_to_json(c.audiences)::text, c.default_audience, "
	    "COALESCE((SELECT json_agg(s.hash ORDER BY s.id)::text FROM client_secrets s "
	    "WHERE s.client_id = c.id AND s.revoked_at IS NULL), '[]') "
	    "FROM clients c WHERE c.id = $1", 1 },
	[STORE_LISTEN_CLIENTS] = { "listen_clients", "LISTEN idp_clients", 0 },
};

enum store_state {
	ST_DOWN,	/* no connection; retry timer pending */
	ST_CONNECTING,	/* PQconnectPoll in progress */
	ST_PREPARING,	/* preparing the statements, then LISTEN */
	ST_UP,
};

struct store_query {
	TAILQ_ENTRY(store_query) entry;
	struct store	*st;
	enum store_stmt	 stmt;
	int		 nparams;
	char		*params[STORE_MAX_PARAMS];
	store_cb	*cb;
	void		*arg;
	uint64_t	 deadline;	/* monotonic ms */
	int		 retried;	/* sent again after a lost connection */
	int		 done;		/* callback called (timeout, cancel): discard */
};
TAILQ_HEAD(store_queue, store_query);

struct store {
	struct event_base	*base;
	char			*conninfo;
	PGconn			*conn;
	enum store_state	 state;
	struct event		*sock_ev;	/* assigned per socket */
	int			 sock_ev_set;
	struct event		*connect_timer;
	struct event		*retry_timer;
	struct event		*sweep_timer;
	struct event		*kick_ev;
	int			 backoff_ms;
	int			 failed;	/* an attempt failed since the loss */
	int			 setup_step;	/* ST_PREPARING: statement being set up */
	int			 setup_busy;	/* a setup command is on the wire */
	struct store_queue	 queue;
	size_t			 nqueued;
	struct store_query	*running;
	PGresult		*result;	/* result of the command on the wire */
	store_notify_cb		*notify_cb;
	store_state_cb		*state_cb;
	void			*cbarg;
};

static void	store_connect(struct store *);
static void	store_lost(struct store *, const char *why);
static void	store_kick(struct store *);
static void	store_sock_cb(evutil_socket_t, short, void *);

static uint64_t
store_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *
store_stmt_name(enum store_stmt s)
{
	if ((unsigned)s >= STORE__COUNT)
		return "?";
	return store_statements[s].name;
}

/* The first line of a libpq message (they end in a newline and may span several). */
static const char *
store_oneline(char *buf, size_t len, const char *m)
{
	snprintf(buf, len, "%s", m != NULL && *m != '\0' ? m : "unknown error");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static const char *
store_errmsg(struct store *st, char *buf, size_t len)
{
	return store_oneline(buf, len, st->conn != NULL ? PQerrorMessage(st->conn) : NULL);
}

/* Watch the connection's socket for what (EV_READ and/or EV_WRITE). */
static void
store_watch(struct store *st, short what)
{
	int fd = PQsocket(st->conn);

	if (st->sock_ev_set) {
		event_del(st->sock_ev);
		st->sock_ev_set = 0;
	}
	if (fd < 0)
		return;
	event_assign(st->sock_ev, st->base, fd, what | EV_PERSIST, store_sock_cb, st);
	event_add(st->sock_ev, NULL);
	st->sock_ev_set = 1;
}

static void
store_query_free(struct store_query *q)
{
	int i;

	for (i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q);
}

/* Call q's callback unless it has been called already. */
static void
store_deliver(struct store_query *q, enum store_status s, const PGresult *res)
{
	if (q->done)
		return;
	q->done = 1;
	q->cb(s, res, q->arg);
}

/* Fail every queued query with STORE_UNAVAILABLE. */
static void
store_fail_queue(struct store *st)
{
	struct store_query *q;

	while ((q = TAILQ_FIRST(&st->queue)) != NULL) {
		TAILQ_REMOVE(&st->queue, q, entry);
		st->nqueued--;
		store_deliver(q, STORE_UNAVAILABLE, NULL);
		store_query_free(q);
	}
}

static void
store_close(struct store *st)
{
	if (st->sock_ev_set) {
		event_del(st->sock_ev);
		st->sock_ev_set = 0;
	}
	evtimer_del(st->connect_timer);
	if (st->result != NULL) {
		PQclear(st->result);
		st->result = NULL;
	}
	if (st->conn != NULL) {
		PQfinish(st->conn);
		st->conn = NULL;
	}
	st->setup_busy = 0;
}

static void
store_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	store_connect(arg);
}

/* A connection attempt failed: give up on the queue and try again later. */
static void
store_attempt_failed(struct store *st, const char *why)
{
	struct timeval tv;

	if (!st->failed || log_get_level() >= LOG_LVL_DEBUG)
		log_warnx("database: cannot connect: %s; retrying", why);
	store_close(st);
	st->state = ST_DOWN;
	st->failed = 1;
	store_fail_queue(st);
	tv.tv_sec = st->backoff_ms / 1000;
	tv.tv_usec = (st->backoff_ms % 1000) * 1000;
	evtimer_add(st->retry_timer, &tv);
	st->backoff_ms *= 2;
	if (st->backoff_ms > STORE_RETRY_MAX_MS)
		st->backoff_ms = STORE_RETRY_MAX_MS;
}

static void
store_connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	store_attempt_failed(arg, "connection attempt timed out");
}

/* Send the next setup command: PQsendPrepare of each statement but LISTEN, which is
 * prepared and then executed. Returns 0, or -1 after handling a lost connection. */
static int
store_setup_next(struct store *st)
{
	const struct store_statement *s;
	char buf[256];
	int r;

	/* Steps 0 .. STORE__COUNT-1 prepare; step STORE__COUNT runs LISTEN. */
	if (st->setup_step < STORE__COUNT) {
		s = &store_statements[st->setup_step];
		r = PQsendPrepare(st->conn, s->name, s->sql, s->nparams, NULL);
	} else
		r = PQsendQueryPrepared(st->conn,
		    store_statements[STORE_LISTEN_CLIENTS].name, 0, NULL, NULL, NULL, 0);
	if (r == 0) {
		store_lost(st, store_errmsg(st, buf, sizeof(buf)));
		return -1;
	}
	st->setup_busy = 1;
	if ((r = PQflush(st->conn)) == -1) {
		store_lost(st, store_errmsg(st, buf, sizeof(buf)));
		return -1;
	}
	store_watch(st, r == 1 ? EV_READ | EV_WRITE : EV_READ);
	return 0;
}

static void
store_connected(struct store *st)
{
	/* connect_timer keeps running: the set-up must finish in time too. */
	PQsetnonblocking(st->conn, 1);
	st->state = ST_PREPARING;
	st->setup_step = 0;
	store_setup_next(st);
}

static void
store_poll(struct store *st)
{
	char buf[256];

	switch (PQconnectPoll(st->conn)) {
	case PGRES_POLLING_READING:
		store_watch(st, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		store_watch(st, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		store_connected(st);
		break;
	case PGRES_POLLING_FAILED:
	default:
		store_attempt_failed(st, store_errmsg(st, buf, sizeof(buf)));
		break;
	}
}

static void
store_connect(struct store *st)
{
	struct timeval tv = { STORE_CONNECT_TIMEOUT_MS / 1000,
	    (STORE_CONNECT_TIMEOUT_MS % 1000) * 1000 };
	char buf[256];

	/* XXX libpq resolves a host name inside PQconnectPoll with a blocking
	 * getaddrinfo; use a Unix socket, an IP address or hostaddr= to avoid it. */
	st->state = ST_CONNECTING;
	if ((st->conn = PQconnectStart(st->conninfo)) == NULL)
		fatalx("database: out of memory");
	if (PQstatus(st->conn) == CONNECTION_BAD) {
		store_attempt_failed(st, store_errmsg(st, buf, sizeof(buf)));
		return;
	}
	evtimer_add(st->connect_timer, &tv);
	/* As the libpq manual says: start as if PQconnectPoll had said WRITING. */
	store_watch(st, EV_WRITE);
}

/* 1 if res says the connection is gone: class 08, or 57P01..57P03 (shutdown). */
static int
store_result_is_lost(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (PQresultStatus(res) != PGRES_FATAL_ERROR)
		return 0;
	if (state == NULL)	/* libpq's own errors: the connection broke */
		return 1;
	return strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0;
}

static void
store_lost(struct store *st, const char *why)
{
	struct store_query *q;
	int was_up = st->state == ST_UP;

	log_warnx("database: connection lost: %s; reconnecting", why);
	if ((q = st->running) != NULL) {
		st->running = NULL;
		if (!q->done && !q->retried) {
			q->retried = 1;
			TAILQ_INSERT_HEAD(&st->queue, q, entry);
			st->nqueued++;
		} else {
			store_deliver(q, STORE_UNAVAILABLE, NULL);
			store_query_free(q);
		}
	}
	store_close(st);
	st->state = ST_DOWN;
	st->failed = 0;
	st->backoff_ms = STORE_RETRY_MIN_MS;
	if (was_up && st->state_cb != NULL)
		st->state_cb(0, st->cbarg);
	store_connect(st);
}

/* The command on the wire has finished with st->result (NULL if it gave none). */
static void
store_complete(struct store *st)
{
	PGresult *res = st->result;
	struct store_query *q;
	enum store_status s;
	char buf[256];

	st->result = NULL;
	if (res != NULL && store_result_is_lost(res)) {
		store_oneline(buf, sizeof(buf), PQresultErrorMessage(res));
		PQclear(res);
		store_lost(st, buf);
		return;
	}
	if (st->state == ST_PREPARING) {
		ExecStatusType rs = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

		st->setup_busy = 0;
		if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
			char msg[200];

			snprintf(buf, sizeof(buf), "setting up %s: %s",
			    st->setup_step < STORE__COUNT ?
			    store_statements[st->setup_step].name : "LISTEN",
			    store_oneline(msg, sizeof(msg), res != NULL ?
			    PQresultErrorMessage(res) : "no result"));
			PQclear(res);
			/* A missing table (migrations not applied) is retried like an
			 * unreachable server: /readyz says so and /token answers 503. */
			store_attempt_failed(st, buf);
			return;
		}
		PQclear(res);
		if (++st->setup_step <= STORE__COUNT) {
			store_setup_next(st);
			return;
		}
		evtimer_del(st->connect_timer);
		st->state = ST_UP;
		st->failed = 0;
		st->backoff_ms = STORE_RETRY_MIN_MS;
		log_info("database: connected");
		if (st->state_cb != NULL)
			st->state_cb(1, st->cbarg);
		store_kick(st);
		return;
	}
	if ((q = st->running) != NULL) {
		st->running = NULL;
		if (res == NULL)
			s = STORE_ERROR;
		else if (PQresultStatus(res) == PGRES_TUPLES_OK ||
		    PQresultStatus(res) == PGRES_COMMAND_OK)
			s = STORE_OK;
		else {
			s = STORE_ERROR;
			log_warnx("database: %s: %s", store_statements[q->stmt].name,
			    store_oneline(buf, sizeof(buf), PQresultErrorMessage(res)));
		}
		store_deliver(q, s, res);
		store_query_free(q);
	}
	PQclear(res);
	store_kick(st);
}

static void
store_read(struct store *st)
{
	PGnotify *n;
	PGresult *res;
	char buf[256];

	if (!PQconsumeInput(st->conn)) {
		store_lost(st, store_errmsg(st, buf, sizeof(buf)));
		return;
	}
	while ((n = PQnotifies(st->conn)) != NULL) {
		if (st->notify_cb != NULL)
			st->notify_cb(n->relname, n->extra, st->cbarg);
		PQfreemem(n);
	}
	while ((st->running != NULL || st->setup_busy) && !PQisBusy(st->conn)) {
		if ((res = PQgetResult(st->conn)) == NULL) {
			store_complete(st);
			return;		/* the next command, if any, is on its way */
		}
		if (st->result != NULL)
			PQclear(st->result);
		st->result = res;
	}
	if (PQstatus(st->conn) == CONNECTION_BAD)
		store_lost(st, store_errmsg(st, buf, sizeof(buf)));
}

static void
store_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	char buf[256];
	int r;

	if (st->state == ST_CONNECTING) {
		store_poll(st);
		return;
	}
	if (what & EV_WRITE) {
		if ((r = PQflush(st->conn)) == -1) {
			store_lost(st, store_errmsg(st, buf, sizeof(buf)));
			return;
		}
		if (r == 0)
			store_watch(st, EV_READ);
	}
	if (what & EV_READ)
		store_read(st);
}

/* Send the next queued query if the connection is free. */
static void
store_kick(struct store *st)
{
	const struct store_statement *s;
	struct store_query *q;
	char buf[256];
	int r;

	if (st->state != ST_UP || st->running != NULL)
		return;
	while ((q = TAILQ_FIRST(&st->queue)) != NULL && q->done) {
		TAILQ_REMOVE(&st->queue, q, entry);
		st->nqueued--;
		store_query_free(q);
	}
	if (q == NULL)
		return;
	TAILQ_REMOVE(&st->queue, q, entry);
	st->nqueued--;
	st->running = q;
	s = &store_statements[q->stmt];
	if (!PQsendQueryPrepared(st->conn, s->name, q->nparams,
	    (const char *const *)q->params, NULL, NULL, 0)) {
		store_lost(st, store_errmsg(st, buf, sizeof(buf)));
		return;
	}
	if ((r = PQflush(st->conn)) == -1) {
		store_lost(st, store_errmsg(st, buf, sizeof(buf)));
		return;
	}
	if (r == 1)
		store_watch(st, EV_READ | EV_WRITE);
}

static void
store_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	store_kick(arg);
}

static void
store_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct store_query *q, *next;
	uint64_t now = store_now();

	for (q = TAILQ_FIRST(&st->queue); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (q->done || now >= q->deadline) {
			TAILQ_REMOVE(&st->queue, q, entry);
			st->nqueued--;
			store_deliver(q, STORE_UNAVAILABLE, NULL);
			store_query_free(q);
		}
	}
	if ((q = st->running) != NULL && now >= q->deadline) {
		store_deliver(q, STORE_UNAVAILABLE, NULL);
		/* No answer in time: take the connection for dead. */
		store_lost(st, "query timed out");
	}
}

struct store *
store_new(struct event_base *base, const char *conninfo, store_notify_cb *notify_cb,
    store_state_cb *state_cb, void *arg)
{
	struct timeval tv = { 0, STORE_SWEEP_MS * 1000 };
	struct store *st = xcalloc(1, sizeof(*st));

	st->base = base;
	st->conninfo = xstrdup(conninfo);
	st->notify_cb = notify_cb;
	st->state_cb = state_cb;
	st->cbarg = arg;
	st->backoff_ms = STORE_RETRY_MIN_MS;
	TAILQ_INIT(&st->queue);
	st->connect_timer = evtimer_new(base, store_connect_timeout_cb, st);
	st->retry_timer = evtimer_new(base, store_retry_cb, st);
	st->sweep_timer = event_new(base, -1, EV_PERSIST, store_sweep_cb, st);
	st->kick_ev = event_new(base, -1, 0, store_kick_cb, st);
	st->sock_ev = event_new(base, -1, 0, store_sock_cb, st);
	if (st->sock_ev == NULL || st->connect_timer == NULL || st->retry_timer == NULL ||
	    st->sweep_timer == NULL || st->kick_ev == NULL)
		fatalx("store: cannot create timers");
	event_add(st->sweep_timer, &tv);
	store_connect(st);
	return st;
}

void
store_free(struct store *st)
{
	struct store_query *q;

	if (st == NULL)
		return;
	if ((q = st->running) != NULL) {
		st->running = NULL;
		store_deliver(q, STORE_CANCELLED, NULL);
		store_query_free(q);
	}
	while ((q = TAILQ_FIRST(&st->queue)) != NULL) {
		TAILQ_REMOVE(&st->queue, q, entry);
		store_deliver(q, STORE_CANCELLED, NULL);
		store_query_free(q);
	}
	store_close(st);
	event_free(st->connect_timer);
	event_free(st->retry_timer);
	event_free(st->sweep_timer);
	event_free(st->kick_ev);
	event_free(st->sock_ev);
	free(st->conninfo);
	free(st);
}

int
store_up(const struct store *st)
{
	return st->state == ST_UP;
}

struct store_query *
store_exec(struct store *st, enum store_stmt stmt, int nparams, const char *const *params,
    store_cb *cb, void *arg)
{
	struct store_query *q;
	int i;

	if ((unsigned)stmt >= STORE__COUNT || nparams != store_statements[stmt].nparams ||
	    nparams > STORE_MAX_PARAMS)
		fatalx("store_exec: %s takes %d parameters, not %d", store_stmt_name(stmt),
		    (unsigned)stmt < STORE__COUNT ? store_statements[stmt].nparams : 0,
		    nparams);
	if (st->failed || st->nqueued >= STORE_MAX_QUEUE)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->st = st;
	q->stmt = stmt;
	q->nparams = nparams;
	for (i = 0; i < nparams; i++)
		q->params[i] = xstrdup(params[i]);
	q->cb = cb;
	q->arg = arg;
	q->deadline = store_now() + STORE_QUERY_TIMEOUT_MS;
	TAILQ_INSERT_TAIL(&st->queue, q, entry);
	st->nqueued++;
	/* Sent from the loop, never from here: the callback must not run before the
	 * caller has the handle. */
	if (st->state == ST_UP && st->running == NULL)
		event_active(st->kick_ev, 0, 0);
	return q;
}

void
store_cancel(struct store_query *q)
{
	/* Still queued or on the wire: the entry is reclaimed by the queue or by
	 * the arrival of its result. */
	store_deliver(q, STORE_CANCELLED, NULL);
}
