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
 * /token answers 503 quickly instead of piling up. A refused query also brings the
 * next attempt forward when the last one is STORE_RETRY_DEMAND_MS old: while requests
 * come, the service is back within that time of the database, not after the back-off. A query older than
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
#define STORE_RETRY_DEMAND_MS		250
#define STORE_SWEEP_MS			250
#define STORE_MAX_QUEUE			4096

/* The token side's helpers: a user's STORE_UC_* columns (users u), and the CTE "j" that
 * puts the unexpired access tokens of the families revoked in CTE "f" into
 * revoked_jtis (those issued with the family's refresh tokens and with its code). */
#define STORE_SQL_USER_COLS \
	"u.id, u.username, u.name, u.email, u.email_verified, " \
	"array_to_json(u.roles)::text, u.disabled"
#define STORE_SQL_FAMILY_JTIS \
	"j AS (INSERT INTO revoked_jtis (jti, client_id, expires_at) " \
	"SELECT * FROM (SELECT t.access_jti, t.client_id, t.access_expires_at " \
	"FROM refresh_tokens t WHERE t.family_id IN (SELECT id FROM f) " \
	"AND t.access_jti IS NOT NULL AND t.access_expires_at > now() UNION " \
	"SELECT a.access_jti, a.client_id, a.access_expires_at FROM auth_codes a " \
	"WHERE a.family_id IN (SELECT id FROM f) AND a.access_jti IS NOT NULL " \
	"AND a.access_expires_at > now()) x ON CONFLICT DO NOTHING RETURNING 1) "

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

	/* ---- the browser side (store.h says what each takes and gives) ---- */
	[STORE_BR_CLIENT_GET] = { "br_client_get",
	    "SELECT id, name, public, disabled, first_party, allow_plain_pkce, "
	    "array_to_json(grants)::text, array_to_json(scopes)::text, "
	    "array_to_json(redirect_uris)::text, "
	    "array_to_json(post_logout_redirect_uris)::text "
	    "FROM clients WHERE id = $1", 1 },
	[STORE_BR_SESSION_GET] = { "br_session_get",
	    "WITH s AS (UPDATE sessions SET last_seen_at = now() "
	    "WHERE id_hash = decode($1, 'hex') AND ended_at IS NULL "
	    "AND absolute_expires_at > now() "
	    "AND last_seen_at > now() - $2::integer * interval '1 second' "
	    "RETURNING user_id, auth_time) "
	    "SELECT s.user_id, floor(extract(epoch FROM s.auth_time))::bigint, u.username, "
	    "(SELECT array_to_json(c.scopes)::text FROM consents c "
	    "WHERE c.user_id = s.user_id AND c.client_id = $3) "
	    "FROM s JOIN users u ON u.id = s.user_id WHERE NOT u.disabled", 3 },
	[STORE_BR_SESSION_NEW] = { "br_session_new",
	    "WITH e AS (UPDATE sessions SET ended_at = now() "
	    "WHERE id_hash = decode($4, 'hex') AND ended_at IS NULL RETURNING id_hash), "
	    "n AS (INSERT INTO sessions (id_hash, user_id, auth_time, "
	    "absolute_expires_at) VALUES (decode($1, 'hex'), $2, now(), "
	    "now() + $3::integer * interval '1 second') RETURNING auth_time), "
	    "f AS (UPDATE refresh_families SET session_id_hash = decode($1, 'hex') "
	    "WHERE session_id_hash IN (SELECT id_hash FROM e) AND user_id = $2 "
	    "AND revoked_at IS NULL), "
	    "d AS (DELETE FROM login_failures WHERE key_hash = "
	    "sha256(convert_to('pair:' || $7 || ':' || lower($6), 'UTF8'))) "
	    "SELECT floor(extract(epoch FROM n.auth_time))::bigint, "
	    "(SELECT array_to_json(c.scopes)::text FROM consents c "
	    "WHERE c.user_id = $2 AND c.client_id = $5) FROM n", 7 },
	[STORE_BR_SESSION_END] = { "br_session_end",
	    "WITH s AS (UPDATE sessions SET ended_at = now() "
	    "WHERE id_hash = decode($1, 'hex') AND ended_at IS NULL RETURNING 1), "
	    "f AS (UPDATE refresh_families SET revoked_at = now(), "
	    "revoke_reason = 'logout' WHERE session_id_hash = decode($1, 'hex') "
	    "AND revoked_at IS NULL RETURNING id), "
	    /* The families' live access tokens go too (every worker learns by NOTIFY). */
	    STORE_SQL_FAMILY_JTIS
	    "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM f)", 1 },
	[STORE_BR_AUTHZ_NEW] = { "br_authz_new",
	    "WITH gc AS (DELETE FROM authorization_requests WHERE id_hash IN "
	    "(SELECT id_hash FROM authorization_requests WHERE expires_at < now() "
	    "LIMIT 16)) "
	    "INSERT INTO authorization_requests (id_hash, browser_hash, client_id, "
	    "params, expires_at) VALUES (decode($1, 'hex'), decode($2, 'hex'), $3, "
	    "$4::jsonb, now() + $5::integer * interval '1 second')", 5 },
	[STORE_BR_AUTHZ_GET] = { "br_authz_get",
	    "SELECT client_id, params::text, extract(epoch FROM created_at)::bigint "
	    "FROM authorization_requests WHERE id_hash = decode($1, 'hex') "
	    "AND browser_hash = decode($2, 'hex') AND expires_at > now()", 2 },
	[STORE_BR_CONSENT_SAVE] = { "br_consent_save",
	    "INSERT INTO consents (user_id, client_id, scopes) "
	    "VALUES ($1, $2, ARRAY(SELECT DISTINCT x FROM "
	    "unnest(string_to_array($3, ' ')) AS t(x) ORDER BY x)) "
	    "ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = "
	    "ARRAY(SELECT DISTINCT x FROM unnest(consents.scopes || EXCLUDED.scopes) "
	    "AS t(x) ORDER BY x), granted_at = now()", 3 },
	[STORE_BR_CODE_NEW] = { "br_code_new",
	    "WITH d AS (DELETE FROM authorization_requests "
	    "WHERE id_hash = decode($12, 'hex')) "
	    "INSERT INTO auth_codes (code_hash, client_id, user_id, session_id_hash, "
	    "redirect_uri, scope, nonce, code_challenge, code_challenge_method, "
	    "auth_time, expires_at) VALUES (decode($1, 'hex'), $2, $3, "
	    "decode(NULLIF($4, ''), 'hex'), $5, $6, NULLIF($7, ''), NULLIF($8, ''), "
	    "NULLIF($9, ''), to_timestamp($10::bigint), "
	    "now() + $11::integer * interval '1 second')", 12 },
	[STORE_BR_USER_LOGIN] = { "br_user_login",
	    "WITH k(kind, h) AS (VALUES "
	    "('acct', sha256(convert_to('acct:' || lower($1), 'UTF8'))), "
	    "('pair', sha256(convert_to('pair:' || $2 || ':' || lower($1), 'UTF8'))), "
	    "('addr', sha256(convert_to('addr:' || $2, 'UTF8')))), "
	    "f AS (SELECT k.kind, l.failures, ceil(extract(epoch FROM l.window_start + "
	    "$3::integer * interval '1 second' - now()))::bigint AS left_s "
	    "FROM k JOIN login_failures l ON l.key_hash = k.h "
	    "WHERE l.window_start > now() - $3::integer * interval '1 second') "
	    "SELECT u.id, u.username, u.password_hash, u.disabled, "
	    "(SELECT failures FROM f WHERE kind = 'acct'), "
	    "(SELECT left_s FROM f WHERE kind = 'acct'), "
	    "(SELECT failures FROM f WHERE kind = 'pair'), "
	    "(SELECT left_s FROM f WHERE kind = 'pair'), "
	    "(SELECT failures FROM f WHERE kind = 'addr'), "
	    "(SELECT left_s FROM f WHERE kind = 'addr') "
	    "FROM (SELECT 1) AS one LEFT JOIN users u ON "
	    "(position('@' in $1) = 0 AND lower(u.username) = lower($1)) OR "
	    "(position('@' in $1) > 0 AND lower(u.email) = lower($1))", 3 },
	[STORE_BR_LOGIN_FAILED] = { "br_login_failed",
	    "WITH k(h) AS (VALUES "
	    "(sha256(convert_to('acct:' || lower($1), 'UTF8'))), "
	    "(sha256(convert_to('pair:' || $2 || ':' || lower($1), 'UTF8'))), "
	    "(sha256(convert_to('addr:' || $2, 'UTF8')))), "
	    "gc AS (DELETE FROM login_failures WHERE key_hash IN (SELECT key_hash "
	    "FROM login_failures WHERE window_start < now() - $3::integer * "
	    "interval '1 second' AND key_hash NOT IN (SELECT h FROM k) LIMIT 16)) "
	    "INSERT INTO login_failures (key_hash, window_start, failures) "
	    "SELECT h, now(), 1 FROM k ON CONFLICT (key_hash) DO UPDATE SET "
	    "failures = CASE WHEN login_failures.window_start > now() - "
	    "$3::integer * interval '1 second' THEN login_failures.failures + 1 "
	    "ELSE 1 END, "
	    "window_start = CASE WHEN login_failures.window_start > now() - "
	    "$3::integer * interval '1 second' THEN login_failures.window_start "
	    "ELSE now() END", 3 },

	/* ---- the token side (store.h says what each takes and gives) ---- */
	[STORE_TK_CODE_REDEEM] = { "tk_code_redeem",
	    "WITH a AS (UPDATE auth_codes SET used_at = now(), access_jti = $3, "
	    "access_expires_at = to_timestamp($4::bigint), family_id = NULLIF($5, '') "
	    "WHERE code_hash = decode($1, 'hex') AND client_id = $2 "
	    "AND used_at IS NULL AND expires_at > now() "
	    "RETURNING user_id, session_id_hash, redirect_uri, scope, nonce, "
	    "code_challenge, code_challenge_method, auth_time), "
	    "f AS (INSERT INTO refresh_families (id, client_id, user_id, "
	    "session_id_hash) SELECT $5, $2, user_id, session_id_hash FROM a "
	    "WHERE $5 <> '') "
	    "SELECT " STORE_SQL_USER_COLS ", a.redirect_uri, a.scope, a.nonce, "
	    "a.code_challenge, a.code_challenge_method, "
	    "floor(extract(epoch FROM a.auth_time))::bigint "
	    "FROM a JOIN users u ON u.id = a.user_id", 5 },
	[STORE_TK_CODE_REPLAY] = { "tk_code_replay",
	    "WITH c AS (SELECT family_id, access_jti, access_expires_at, client_id "
	    "FROM auth_codes WHERE code_hash = decode($1, 'hex') "
	    "AND used_at IS NOT NULL), "
	    "f AS (UPDATE refresh_families SET revoked_at = now(), "
	    "revoke_reason = 'code_replay' WHERE id IN (SELECT family_id FROM c) "
	    "AND revoked_at IS NULL RETURNING id), "
	    "j AS (INSERT INTO revoked_jtis (jti, client_id, expires_at) "
	    "SELECT * FROM (SELECT access_jti, client_id, access_expires_at FROM c "
	    "WHERE access_jti IS NOT NULL AND access_expires_at > now() UNION "
	    "SELECT t.access_jti, t.client_id, t.access_expires_at "
	    "FROM refresh_tokens t WHERE t.family_id IN (SELECT family_id FROM c) "
	    "AND t.access_jti IS NOT NULL AND t.access_expires_at > now()) x "
	    "ON CONFLICT DO NOTHING RETURNING 1) "
	    "SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM f), "
	    "(SELECT count(*) FROM j)", 1 },
	[STORE_TK_REFRESH_FIRST] = { "tk_refresh_first",
	    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, "
	    "scope, auth_time, expires_at) SELECT decode($1, 'hex'), $2, $3, $4, $5, "
	    "to_timestamp($6::bigint), now() + $7::bigint * interval '1 second' "
	    "WHERE EXISTS (SELECT 1 FROM refresh_families WHERE id = $2 "
	    "AND revoked_at IS NULL)", 7 },
	[STORE_TK_FAMILY_START] = { "tk_family_start",
	    "WITH f AS (INSERT INTO refresh_families (id, client_id, user_id) "
	    "VALUES ($1, $2, $3) RETURNING id) "
	    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, "
	    "scope, auth_time, expires_at, access_jti, access_expires_at) "
	    "SELECT decode($4, 'hex'), f.id, $2, $3, $5, to_timestamp($6::bigint), "
	    "now() + $7::bigint * interval '1 second', $8, to_timestamp($9::bigint) "
	    "FROM f", 9 },
	[STORE_TK_REFRESH_GET] = { "tk_refresh_get",
	    "SELECT " STORE_SQL_USER_COLS ", t.family_id, t.client_id, t.scope, "
	    "floor(extract(epoch FROM t.auth_time))::bigint, "
	    "t.expires_at > now() AND t.revoked_at IS NULL AND f.revoked_at IS NULL, "
	    "t.used_at IS NOT NULL, "
	    "COALESCE(extract(epoch FROM now() - t.used_at), 0)::float8, "
	    "encode(t.successor_enc, 'hex'), "
	    "floor(extract(epoch FROM t.created_at))::bigint, "
	    "floor(extract(epoch FROM t.expires_at))::bigint "
	    "FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id "
	    "JOIN users u ON u.id = t.user_id WHERE t.token_hash = decode($1, 'hex')", 1 },
	[STORE_TK_REFRESH_ROTATE] = { "tk_refresh_rotate",
	    "WITH o AS (UPDATE refresh_tokens t SET used_at = now(), "
	    "successor_hash = decode($2, 'hex'), successor_enc = decode($3, 'hex') "
	    "WHERE t.token_hash = decode($1, 'hex') AND t.used_at IS NULL "
	    "AND t.revoked_at IS NULL AND t.expires_at > now() "
	    "AND EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = t.family_id "
	    "AND f.revoked_at IS NULL) "
	    "RETURNING t.family_id, t.client_id, t.user_id, t.scope, t.auth_time) "
	    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, "
	    "scope, auth_time, expires_at, access_jti, access_expires_at) "
	    "SELECT decode($2, 'hex'), family_id, client_id, user_id, scope, "
	    "auth_time, now() + $4::bigint * interval '1 second', $5, "
	    "to_timestamp($6::bigint) FROM o", 6 },
	[STORE_TK_FAMILY_REVOKE] = { "tk_family_revoke",
	    "WITH f AS (UPDATE refresh_families SET revoked_at = now(), "
	    "revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id), "
	    STORE_SQL_FAMILY_JTIS
	    "SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM j)", 2 },
	[STORE_TK_REFRESH_REVOKE] = { "tk_refresh_revoke",
	    "WITH f AS (UPDATE refresh_families SET revoked_at = now(), "
	    "revoke_reason = $3 WHERE id = (SELECT family_id FROM refresh_tokens "
	    "WHERE token_hash = decode($1, 'hex') AND client_id = $2) "
	    "AND revoked_at IS NULL RETURNING id), "
	    STORE_SQL_FAMILY_JTIS
	    "SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM j)", 3 },
	[STORE_TK_USER_GET] = { "tk_user_get",
	    "SELECT " STORE_SQL_USER_COLS " FROM users u WHERE u.id = $1", 1 },
	[STORE_TK_JTI_REVOKE] = { "tk_jti_revoke",
	    "INSERT INTO revoked_jtis (jti, client_id, expires_at) "
	    "VALUES ($1, NULLIF($2, ''), to_timestamp($3::bigint)) "
	    "ON CONFLICT DO NOTHING", 3 },
	[STORE_TK_JTI_GET] = { "tk_jti_get",
	    "SELECT floor(extract(epoch FROM expires_at))::bigint FROM revoked_jtis "
	    "WHERE jti = $1", 1 },
	[STORE_TK_JTI_LOAD] = { "tk_jti_load",
	    "SELECT jti, floor(extract(epoch FROM expires_at))::bigint FROM revoked_jtis "
	    "WHERE expires_at > now()", 0 },
	[STORE_LISTEN_REVOCATIONS] = { "listen_revocations", "LISTEN idp_revocations",
	    0 },
};

/* The LISTEN statements, run after every statement is prepared on each connection. */
static const enum store_stmt store_listens[] = {
	STORE_LISTEN_CLIENTS,
	STORE_LISTEN_REVOCATIONS,
};
#define STORE_NLISTENS	(sizeof(store_listens) / sizeof(store_listens[0]))

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
	uint64_t		 attempt_ms;	/* when the last attempt started */
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

/* A query was refused while the database is away: make the next attempt now if the
 * last one is old enough. From the loop (the retry timer), never from here, so that
 * no callback runs inside store_exec. The back-off goes on growing for the times
 * nobody asks. */
static void
store_retry_soon(struct store *st)
{
	struct timeval now = { 0, 0 };

	if (st->state != ST_DOWN || store_now() - st->attempt_ms < STORE_RETRY_DEMAND_MS)
		return;
	evtimer_del(st->retry_timer);
	evtimer_add(st->retry_timer, &now);
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

	/* Steps 0 .. STORE__COUNT-1 prepare; the steps after them run each LISTEN of
	 * store_listens. */
	if (st->setup_step < STORE__COUNT) {
		s = &store_statements[st->setup_step];
		r = PQsendPrepare(st->conn, s->name, s->sql, s->nparams, NULL);
	} else
		r = PQsendQueryPrepared(st->conn, store_statements[store_listens[
		    st->setup_step - STORE__COUNT]].name, 0, NULL, NULL, NULL, 0);
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
	st->attempt_ms = store_now();
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
			    store_statements[st->setup_step < STORE__COUNT ?
			    st->setup_step : (int)store_listens[st->setup_step -
			    STORE__COUNT]].name,
			    store_oneline(msg, sizeof(msg), res != NULL ?
			    PQresultErrorMessage(res) : "no result"));
			PQclear(res);
			/* A missing table (migrations not applied) is retried like an
			 * unreachable server: /readyz says so and /token answers 503. */
			store_attempt_failed(st, buf);
			return;
		}
		PQclear(res);
		if (++st->setup_step < STORE__COUNT + (int)STORE_NLISTENS) {
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
	if (st->failed) {
		store_retry_soon(st);
		return NULL;
	}
	if (st->nqueued >= STORE_MAX_QUEUE)
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
