/* users.c: signing a user in: one query finds the user and the throttle's counts, the
 * throttle may make the attempt wait or refuse it, Argon2id runs on the hash pool, and
 * a failure is counted before the answer goes out (users.h has the policy).
 *
 * Equal cost for every wrong answer: an unknown login is checked against a dummy hash
 * of the same cost as idpctl's (libsodium's interactive limits), a disabled user's
 * password is checked like any other, and the caller shows one message for both
 * mistakes. Only a right password reveals that the account is disabled.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "hashpool.h"
#include "log.h"
#include "store.h"
#include "users.h"
#include "worker.h"
#include "xalloc.h"

/* Argon2id of 32 random bytes nobody kept, with crypto_pwhash_OPSLIMIT_INTERACTIVE and
 * crypto_pwhash_MEMLIMIT_INTERACTIVE, the costs idpctl hashes passwords with. */
static const char users_dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$vg2HRaXYhFHHYsrm4Kd4Kg$"
    "E3OVpxm/nY4MJ6XCkwP9QSdnxNUYyM3CaB+Gfhd5EtI";

struct users_login {
	struct worker		*w;
	char			*login;
	char			*password;
	size_t			 pwlen;
	char			 addr[64];
	users_login_cb		*cb;
	void			*arg;
	/* What it waits for, one at a time. */
	enum { U_START, U_LOOKUP, U_DELAY, U_HASH, U_COUNT } state;
	struct store_query	*q;
	struct event		*delay;
	struct hash_job		*job;
	/* The user, when there is one. */
	char			*user_id;
	char			*username;
	char			*hash;
	int			 disabled;
};

static void
users_free(struct users_login *u)
{
	if (u->password != NULL) {
		sodium_memzero(u->password, u->pwlen);
		free(u->password);
	}
	if (u->hash != NULL) {
		sodium_memzero(u->hash, strlen(u->hash));
		free(u->hash);
	}
	if (u->delay != NULL)
		event_free(u->delay);
	free(u->login);
	free(u->user_id);
	free(u->username);
	free(u);
}

static void
users_finish(struct users_login *u, enum users_result res, long retry_after)
{
	struct users_outcome o;

	memset(&o, 0, sizeof(o));
	o.result = res;
	o.retry_after = retry_after;
	if (res == USERS_OK) {
		o.user_id = u->user_id;
		o.username = u->username;
	}
	u->cb(&o, u->arg);
	users_free(u);
}

/* The delay for f failures when waiting starts at from. */
static uint64_t
users_delay(long f, long from)
{
	long shift;
	uint64_t d;

	if (f < from)
		return 0;
	shift = f - from;
	d = shift >= 16 ? USERS_DELAY_MAX_MS : (uint64_t)USERS_DELAY_BASE_MS << shift;
	return d > USERS_DELAY_MAX_MS ? USERS_DELAY_MAX_MS : d;
}

static void
users_failed_cb(enum store_status s, const PGresult *res, void *arg)
{
	struct users_login *u = arg;

	u->q = NULL;
	if (s != STORE_OK)
		log_warnx("login: a failed login could not be counted");
	users_finish(u, USERS_BAD, 0);
}

static void
users_hashed(int result, void *arg)
{
	struct users_login *u = arg;
	const char *params[3];
	char window[16];

	u->job = NULL;
	if (result == HASHPOOL_CANCELLED) {
		users_finish(u, USERS_CANCELLED, 0);
		return;
	}
	if (result == 0 && u->user_id != NULL) {
		users_finish(u, u->disabled ? USERS_DISABLED : USERS_OK, 0);
		return;
	}
	snprintf(window, sizeof(window), "%d", USERS_WINDOW_S);
	params[0] = u->login;
	params[1] = u->addr;
	params[2] = window;
	u->state = U_COUNT;
	if ((u->q = store_exec(worker_store(u->w), STORE_BR_LOGIN_FAILED, 3, params,
	    users_failed_cb, u)) == NULL) {
		log_warnx("login: a failed login could not be counted");
		users_finish(u, USERS_BAD, 0);
	}
}

static void
users_verify(struct users_login *u)
{
	const char *hashes[1];

	hashes[0] = u->hash != NULL ? u->hash : users_dummy_hash;
	u->state = U_HASH;
	u->job = hashpool_verify(worker_hashpool(u->w), u->password, u->pwlen, hashes, 1,
	    users_hashed, u);
	if (u->job == NULL)
		users_finish(u, USERS_UNAVAILABLE, 0);
}

static void
users_delay_done(evutil_socket_t fd, short what, void *arg)
{
	users_verify(arg);
}

/* Column c of row 0 as a number; 0 for NULL. */
static long
users_num(const PGresult *res, int c)
{
	if (PQgetisnull(res, 0, c))
		return 0;
	return strtol(PQgetvalue(res, 0, c), NULL, 10);
}

static void
users_found(enum store_status s, const PGresult *res, void *arg)
{
	struct users_login *u = arg;
	long acct, acct_left, pair, pair_left, addr, addr_left, retry = 0;
	uint64_t delay, d;
	struct timeval tv;

	u->q = NULL;
	if (s == STORE_CANCELLED) {
		users_finish(u, USERS_CANCELLED, 0);
		return;
	}
	if (s != STORE_OK || PQntuples(res) != 1 || PQnfields(res) != 10) {
		users_finish(u, USERS_UNAVAILABLE, 0);
		return;
	}
	if (!PQgetisnull(res, 0, 0)) {
		u->user_id = xstrdup(PQgetvalue(res, 0, 0));
		u->username = xstrdup(PQgetvalue(res, 0, 1));
		u->hash = xstrdup(PQgetvalue(res, 0, 2));
		u->disabled = PQgetvalue(res, 0, 3)[0] == 't';
	}
	acct = users_num(res, 4);
	acct_left = users_num(res, 5);
	pair = users_num(res, 6);
	pair_left = users_num(res, 7);
	addr = users_num(res, 8);
	addr_left = users_num(res, 9);

	if (pair >= USERS_PAIR_BLOCK)
		retry = pair_left;
	if (addr >= USERS_ADDR_BLOCK && addr_left > retry)
		retry = addr_left;
	if (acct >= USERS_ACCT_BLOCK && pair > 0 && acct_left > retry)
		retry = acct_left;
	if (retry > 0) {
		users_finish(u, USERS_THROTTLED, retry);
		return;
	}
	delay = users_delay(pair, USERS_PAIR_DELAY);
	if ((d = users_delay(addr, USERS_ADDR_DELAY)) > delay)
		delay = d;
	if ((d = users_delay(acct, USERS_ACCT_DELAY)) > delay)
		delay = d;
	if (delay == 0) {
		users_verify(u);
		return;
	}
	if ((u->delay = evtimer_new(worker_base(u->w), users_delay_done, u)) == NULL)
		fatalx("users: evtimer_new");
	u->state = U_DELAY;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(u->delay, &tv);
}

static void
users_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct users_login *u = arg;
	const char *params[3];
	char window[16];

	event_free(u->delay);
	u->delay = NULL;
	snprintf(window, sizeof(window), "%d", USERS_WINDOW_S);
	params[0] = u->login;
	params[1] = u->addr;
	params[2] = window;
	u->state = U_LOOKUP;
	if ((u->q = store_exec(worker_store(u->w), STORE_BR_USER_LOGIN, 3, params,
	    users_found, u)) == NULL)
		users_finish(u, USERS_UNAVAILABLE, 0);
}

struct users_login *
users_login(struct worker *w, const char *login, const char *password, const char *addr,
    users_login_cb *cb, void *arg)
{
	struct users_login *u = xcalloc(1, sizeof(*u));

	u->w = w;
	u->login = xstrdup(login);
	u->pwlen = strlen(password);
	u->password = xstrdup(password);
	snprintf(u->addr, sizeof(u->addr), "%s", addr);
	u->cb = cb;
	u->arg = arg;
	/* Started from the loop, so that cb never runs before the caller has the
	 * handle, even when the database is known to be down. */
	if ((u->delay = event_new(worker_base(w), -1, 0, users_start_cb, u)) == NULL)
		fatalx("users: event_new");
	event_active(u->delay, 0, 0);
	return u;
}

void
users_login_cancel(struct users_login *u)
{
	switch (u->state) {
	case U_START:
	case U_DELAY:
		event_del(u->delay);
		users_finish(u, USERS_CANCELLED, 0);
		break;
	case U_LOOKUP:
		store_cancel(u->q);	/* users_found: USERS_CANCELLED */
		break;
	case U_HASH:
	case U_COUNT:
		break;		/* runs to its end: the failure must count */
	}
}
