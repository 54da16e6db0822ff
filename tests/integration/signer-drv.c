/* signer-drv.c: drives idp's signer process as the workers do, against a real
 * PostgreSQL, and checks what it sends: key sets, signatures, and the rotation promises.
 *
 * usage: signer-drv MODE CONFIG [ARGS]
 *   rotate CONFIG SECONDS INSTANCES MIN_KIDS MIN_DELETED
 *	INSTANCES signers share the database, two connections each; sign all along and
 *	check every token, the publish-before-sign and stay-after-sign windows, that all
 *	connections see the same succession of active keys, and a clean SIGTERM.
 *   requests CONFIG	a normal rotation request (waits for the publish window), then
 *			an emergency one (withdraws the active key at once)
 *   nodb CONFIG	the database is unreachable: no keys, signing refused, SIGHUP and
 *			SIGINT ignored, clean stop
 *   outage CONFIG SECONDS  sign all along while the test stops and starts PostgreSQL
 *   peercred CONFIG	a connection from another uid is refused (when run as root)
 *   run CONFIG SECONDS	start a signer, report how it exits (or that it still runs)
 * Exit status 0 when every check passed; checks print "FAIL ..." on stderr.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "idp.h"
#include "ipc.h"
#include "jwk.h"
#include "jws.h"
#include "log.h"
#include "secret.h"
#include "signer.h"
#include "xalloc.h"

#define MAX_KIDS	64
#define MAX_SEQ		32
#define MAX_CONNS	8
#define SLACK		0.3	/* seconds of scheduling noise allowed in checks */

struct kidinfo {
	char		 kid[64];
	EVP_PKEY	*pkey;
	enum jws_alg	 alg;
	int		 initial;	/* in the first IPC_KEYS: published before we came */
	double		 first_seen;	/* first IPC_KEYS that had it */
	double		 gone;		/* first IPC_KEYS without it after that; -1 */
	double		 first_sign;	/* first token it signed; -1 */
	double		 last_sign;
};

/* One signer process. */
struct inst {
	pid_t	pid;
	char	dir[64];
	char	path[108];
};

/* One connection, as a worker holds it, with what it learnt. */
struct wconn {
	int		 fd;
	int		 inst;
	int		 nmsgs;		/* IPC_KEYS received */
	char		 active[64];
	char		 next[64];	/* the next key of the last IPC_KEYS, or "" */
	json_t		*last;		/* the last IPC_KEYS */
	struct kidinfo	 kids[MAX_KIDS];
	int		 nkids;
	char		 seq[MAX_SEQ][64];	/* active kids in the order seen */
	int		 nseq;
	uint32_t	 next_id;
	int		 outstanding;
	int		 ok, errs;
	uint32_t	 last_reply_id;
	char		 last_kid[64];	/* of the last token */
	char		 lasterr[128];	/* of the last IPC_SIGN_ERR */
	int		 eof;
};

static struct idp_config conf;
static int failures;

static void __attribute__((format(printf, 2, 3)))
check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	failures++;
	fprintf(stderr, "signer-drv: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

static void
inst_start(struct inst *in)
{
	struct sockaddr_un sun;
	enum log_level lvl = LOG_LVL_INFO;
	int fd;

	snprintf(in->dir, sizeof(in->dir), "/tmp/signer-drv-XXXXXX");
	if (mkdtemp(in->dir) == NULL)
		fatal("mkdtemp");
	snprintf(in->path, sizeof(in->path), "%s/signer.sock", in->dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", in->path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || listen(fd, 16) == -1)
		fatal("bind %s", in->path);
	fflush(stdout);
	fflush(stderr);
	if ((in->pid = fork()) == -1)
		fatal("fork");
	if (in->pid == 0) {
		log_level_parse(conf.log_level, &lvl);
		log_init("signer", lvl);
		signer_main(&conf, fd);
	}
	close(fd);
}

/* Wait up to secs for the instance to exit; its wait status, or -1 (then killed). */
static int
inst_wait(struct inst *in, double secs)
{
	double deadline = now() + secs;
	int status;
	pid_t r;

	while ((r = waitpid(in->pid, &status, WNOHANG)) == 0 && now() < deadline)
		sleep_s(0.01);
	if (r == 0) {
		kill(in->pid, SIGKILL);
		waitpid(in->pid, &status, 0);
		status = -1;
	}
	unlink(in->path);
	rmdir(in->dir);
	in->pid = 0;
	return status;
}

/* SIGTERM, then check that the signer exits 0 within secs. */
static void
inst_stop(struct inst *in, double secs)
{
	double t0 = now();
	int status;

	kill(in->pid, SIGTERM);
	status = inst_wait(in, secs);
	check(status != -1, "the signer did not stop within %.0f s of SIGTERM", secs);
	if (status != -1)
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "the signer stopped with status 0x%x, not exit 0", status);
	printf("stopped in %.2f s\n", now() - t0);
}

static int
unix_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct wconn *
w_new(struct inst *in, int idx)
{
	struct wconn *w = xcalloc(1, sizeof(*w));
	double deadline = now() + 10;

	/* The signer may still be binding its threads: retry a moment. */
	while ((w->fd = unix_connect(in->path)) == -1 && now() < deadline)
		sleep_s(0.05);
	if (w->fd == -1)
		fatal("connect %s", in->path);
	w->inst = idx;
	w->next_id = 1;
	return w;
}

static void
w_free(struct wconn *w)
{
	int i;

	for (i = 0; i < w->nkids; i++)
		EVP_PKEY_free(w->kids[i].pkey);
	json_decref(w->last);
	if (w->fd != -1)
		close(w->fd);
	free(w);
}

static struct kidinfo *
w_kid(struct wconn *w, const char *kid)
{
	int i;

	for (i = 0; i < w->nkids; i++)
		if (strcmp(w->kids[i].kid, kid) == 0)
			return &w->kids[i];
	return NULL;
}

/* An IPC_KEYS message: check its shape and every key, and note what came and went. */
static void
w_keys(struct wconn *w, const char *payload)
{
	static const char *private[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };
	const char *active, *kid, *errstr = NULL, *alg;
	json_t *m, *keys, *meta, *jwk, *mk;
	struct kidinfo *ki;
	int present[MAX_KIDS] = { 0 };
	double t = now();
	char *thumb;
	size_t i, j;
	int k;

	m = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
	check(json_is_object(m), "IPC_KEYS is not a JSON object");
	if (!json_is_object(m)) {
		json_decref(m);
		return;
	}
	keys = json_object_get(json_object_get(m, "jwks"), "keys");
	meta = json_object_get(m, "keys");
	active = json_string_value(json_object_get(m, "active_kid"));
	alg = json_string_value(json_object_get(m, "active_alg"));
	check(json_integer_value(json_object_get(m, "max_age")) == conf.jwks_max_age,
	    "IPC_KEYS max_age is not jwks_max_age");
	check(alg != NULL && jws_alg_from_name(alg) != JWS_ALG_UNKNOWN,
	    "IPC_KEYS active_alg is missing or unknown");
	check(json_is_array(keys) && json_array_size(keys) >= 2,
	    "IPC_KEYS needs at least an active and a next key");
	check(json_is_array(meta) && json_array_size(meta) == json_array_size(keys),
	    "IPC_KEYS keys metadata does not match the JWKS");
	if (active == NULL || !json_is_array(keys) || json_array_size(keys) == 0 ||
	    !json_is_array(meta) || json_array_size(meta) != json_array_size(keys)) {
		check(0, "IPC_KEYS is incomplete: %s", payload);
		json_decref(m);
		return;
	}
	check(strcmp(json_string_value(json_object_get(json_array_get(keys, 0), "kid")),
	    active) == 0, "the active key is not first in the JWKS");
	w->next[0] = '\0';
	json_array_foreach(keys, i, jwk) {
		kid = json_string_value(json_object_get(jwk, "kid"));
		mk = json_array_get(meta, i);
		check(kid != NULL, "a JWK without kid");
		if (kid == NULL)
			continue;
		for (j = 0; j < sizeof(private) / sizeof(private[0]); j++)
			check(json_object_get(jwk, private[j]) == NULL,
			    "key %s: published JWK has private member %s", kid,
			    private[j]);
		check(json_is_string(json_object_get(jwk, "use")) &&
		    strcmp(json_string_value(json_object_get(jwk, "use")), "sig") == 0,
		    "key %s: use is not sig", kid);
		check(json_is_string(json_object_get(jwk, "alg")) &&
		    jws_alg_from_name(json_string_value(json_object_get(jwk,
		    "alg"))) != JWS_ALG_UNKNOWN, "key %s: no alg", kid);
		if (i == 0)
			check(alg != NULL && json_is_string(json_object_get(jwk,
			    "alg")) && strcmp(json_string_value(json_object_get(jwk,
			    "alg")), alg) == 0, "key %s: alg is not active_alg", kid);
		thumb = jwk_thumbprint(jwk, &errstr);
		check(thumb != NULL && strcmp(thumb, kid) == 0,
		    "key %s: kid is not the RFC 7638 thumbprint", kid);
		free(thumb);
		check(strcmp(json_string_value(json_object_get(mk, "kid")), kid) == 0,
		    "key %s: metadata out of order", kid);
		check(json_is_integer(json_object_get(mk, "created_at")),
		    "key %s: no created_at", kid);
		if (strcmp(json_string_value(json_object_get(mk, "state")), "next") == 0)
			snprintf(w->next, sizeof(w->next), "%s", kid);
		if (i == 0) {
			check(strcmp(json_string_value(json_object_get(mk, "state")),
			    "active") == 0, "key %s: first but not active", kid);
			check(json_is_integer(json_object_get(mk, "activated_at")),
			    "key %s: active without activated_at", kid);
		}
		if ((ki = w_kid(w, kid)) == NULL) {
			check(w->nkids < MAX_KIDS, "too many keys");
			if (w->nkids == MAX_KIDS)
				continue;
			ki = &w->kids[w->nkids++];
			snprintf(ki->kid, sizeof(ki->kid), "%s", kid);
			ki->first_seen = t;
			ki->gone = ki->first_sign = ki->last_sign = -1;
			ki->initial = w->nmsgs == 0;
			ki->alg = jws_alg_from_name(json_string_value(
			    json_object_get(jwk, "alg")));
			ki->pkey = jwk_to_pkey(jwk, 0, &errstr);
			check(ki->pkey != NULL, "key %s: not a usable JWK: %s", kid,
			    errstr);
		}
		check(ki->gone < 0, "key %s came back after it was gone", kid);
		present[ki - w->kids] = 1;
	}
	for (k = 0; k < w->nkids; k++)
		if (!present[k] && w->kids[k].gone < 0)
			w->kids[k].gone = t;
	if (w->nseq == 0 || strcmp(w->seq[w->nseq - 1], active) != 0) {
		if (w->nseq < MAX_SEQ)
			snprintf(w->seq[w->nseq++], sizeof(w->seq[0]), "%s", active);
	}
	snprintf(w->active, sizeof(w->active), "%s", active);
	json_decref(w->last);
	w->last = m;
	w->nmsgs++;
}

/* 1 if kid was the active key of an IPC_KEYS this connection received. */
static int
w_was_active(struct wconn *w, const char *kid)
{
	int i;

	for (i = 0; i < w->nseq; i++)
		if (strcmp(w->seq[i], kid) == 0)
			return 1;
	return 0;
}

/* A token: it must carry a kid this connection was told is active, still published,
 * verify with that key as published, and hold the claims we sent. */
static void
w_token(struct wconn *w, uint32_t id, const char *jws)
{
	json_t *hdr = NULL, *payload = NULL;
	const char *kid, *typ, *errstr = NULL;
	struct kidinfo *ki;
	double t = now();

	if (jws_decode_unverified(jws, &hdr, NULL, &errstr) == -1) {
		check(0, "reply %u is not a JWS: %s", id, errstr);
		return;
	}
	kid = json_string_value(json_object_get(hdr, "kid"));
	typ = json_string_value(json_object_get(hdr, "typ"));
	check(typ != NULL && strcmp(typ, id % 2 ? "at+jwt" : "JWT") == 0,
	    "reply %u: wrong typ", id);
	if (kid == NULL || (ki = w_kid(w, kid)) == NULL) {
		check(0, "reply %u: kid %s never came in IPC_KEYS", id,
		    kid ? kid : "(none)");
		goto done;
	}
	check(ki->gone < 0, "reply %u: kid %s is no longer published", id, kid);
	/* Announced as active before; a reply signed just before a swap may follow the
	 * IPC_KEYS of the swap, so the newest active kid is not required. */
	check(w_was_active(w, kid), "reply %u: kid %s was never announced as active",
	    id, kid);
	if (ki->pkey == NULL)
		goto done;
	if (jws_verify(jws, ki->pkey, ki->alg, NULL, &payload, &errstr) == -1) {
		check(0, "reply %u: does not verify with key %s: %s", id, kid, errstr);
		goto done;
	}
	check(json_integer_value(json_object_get(payload, "n")) == (json_int_t)id,
	    "reply %u: claims are not the ones sent", id);
	if (ki->first_sign < 0)
		ki->first_sign = t;
	ki->last_sign = t;
	snprintf(w->last_kid, sizeof(w->last_kid), "%s", kid);
	w->ok++;
 done:
	json_decref(hdr);
	json_decref(payload);
}

/* Read and handle one frame if one arrives within secs: its type, 0 on timeout,
 * -1 on EOF or error. */
static int
w_read(struct wconn *w, double secs)
{
	struct pollfd pfd = { w->fd, POLLIN, 0 };
	struct ipc_hdr h;
	unsigned char *payload;
	int r;

	if (w->eof)
		return -1;
	if ((r = poll(&pfd, 1, (int)(secs * 1000))) == 0)
		return 0;
	if (r == -1)
		return errno == EINTR ? 0 : -1;
	if ((r = ipc_read_frame(w->fd, &h, &payload)) != 0) {
		w->eof = 1;
		return -1;
	}
	switch (h.type) {
	case IPC_KEYS:
		check(h.id == 0, "IPC_KEYS with id %u", h.id);
		w_keys(w, (const char *)payload);
		break;
	case IPC_SIGN_REP:
		w->outstanding--;
		w->last_reply_id = h.id;
		w_token(w, h.id, (const char *)payload);
		break;
	case IPC_SIGN_ERR:
		w->outstanding--;
		w->last_reply_id = h.id;
		w->errs++;
		snprintf(w->lasterr, sizeof(w->lasterr), "%s", payload);
		break;
	default:
		check(0, "unexpected frame type %u from the signer", h.type);
	}
	free(payload);
	return h.type;
}

/* Send a raw request; returns its id. */
static uint32_t
w_send_raw(struct wconn *w, const void *payload, size_t len)
{
	uint32_t id = w->next_id++;

	if (ipc_write_frame(w->fd, IPC_SIGN_REQ, id, payload, len) == -1)
		fatal("write to the signer");
	w->outstanding++;
	return id;
}

/* Send a well-formed request: typ by parity of the id, claims {"n": id, ...}. */
static uint32_t
w_send(struct wconn *w)
{
	char buf[256];
	uint32_t id = w->next_id;
	int n;

	n = snprintf(buf, sizeof(buf), "%s%c{\"iss\":\"https://drv.example\","
	    "\"sub\":\"worker\",\"n\":%u}", id % 2 ? "at+jwt" : "JWT", '\0', id);
	return w_send_raw(w, buf, (size_t)n);
}

/* Read frames until the reply to id (or secs pass): 1 if it came. */
static int
w_wait_reply(struct wconn *w, uint32_t id, double secs)
{
	double deadline = now() + secs;

	while (now() < deadline) {
		if (w_read(w, deadline - now()) == -1)
			return 0;
		if ((w->last_reply_id == id) && w->outstanding == 0)
			return 1;
	}
	return 0;
}

/* Read frames until this connection has had n IPC_KEYS messages: 1, or 0 after secs. */
static int
w_wait_keys(struct wconn *w, int n, double secs)
{
	double deadline = now() + secs;

	while (w->nmsgs < n && now() < deadline)
		if (w_read(w, deadline - now()) == -1)
			return 0;
	return w->nmsgs >= n;
}

/* Read frames until the active kid is not `from`: 1, or 0 after secs. */
static int
w_wait_active_change(struct wconn *w, const char *from, double secs)
{
	double deadline = now() + secs;

	while (strcmp(w->active, from) == 0 && now() < deadline)
		if (w_read(w, deadline - now()) == -1)
			return 0;
	return strcmp(w->active, from) != 0;
}

static int
jwks_has(json_t *msg, const char *kid)
{
	json_t *keys = json_object_get(json_object_get(msg, "jwks"), "keys"), *k;
	size_t i;

	json_array_foreach(keys, i, k)
		if (strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0)
			return 1;
	return 0;
}

/* The state of kid in the metadata of msg, or NULL. */
static const char *
meta_state(json_t *msg, const char *kid)
{
	json_t *meta = json_object_get(msg, "keys"), *k;
	size_t i;

	json_array_foreach(meta, i, k)
		if (strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0)
			return json_string_value(json_object_get(k, "state"));
	return NULL;
}

/* Malformed requests get IPC_SIGN_ERR and the connection keeps serving. */
static void
check_bad_requests(struct wconn *w)
{
	static const struct {
		const char	*payload;
		size_t		 len;
		const char	*what;
	} bad[] = {
		{ "at+jwt", 6, "no NUL after typ" },
		{ "at+jwt\0{\"n\":", 12, "claims not JSON" },
		{ "at+jwt\0[1,2]", 12, "claims not an object" },
		{ "at+jwt\0{\"a\":1,\"a\":2}", 20, "duplicate claims" },
		{ "\0{}", 3, "empty typ" },
		{ "a b\0{}", 6, "typ with a space" },
	};
	uint32_t id;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int errs = w->errs;

		id = w_send_raw(w, bad[i].payload, bad[i].len);
		check(w_wait_reply(w, id, 10) && w->errs == errs + 1,
		    "%s: no IPC_SIGN_ERR", bad[i].what);
	}
	i = (size_t)w->ok;
	id = w_send(w);
	check(w_wait_reply(w, id, 10) && (size_t)w->ok == i + 1,
	    "the connection does not serve after bad requests");
}

static int
w_poll_all(struct wconn **ws, int n, double secs)
{
	struct pollfd pfd[MAX_CONNS];
	int i, r;

	for (i = 0; i < n; i++) {
		pfd[i].fd = ws[i]->eof ? -1 : ws[i]->fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	if ((r = poll(pfd, (nfds_t)n, (int)(secs * 1000))) <= 0)
		return 0;
	for (i = 0; i < n; i++)
		if (pfd[i].revents != 0)
			w_read(ws[i], 0);
	return r;
}

static int
mode_rotate(int argc, char **argv)
{
	struct inst in[MAX_CONNS / 2];
	struct wconn *ws[MAX_CONNS];
	double seconds, t0, tend, nextsend, publish, t;
	int ninst, nconn, i, k, min_kids, min_deleted, nsigned, deleted, burst = 50;
	int got, sent;
	uint32_t id = 0;
	struct kidinfo *ki;

	if (argc != 7)
		fatalx("usage: signer-drv rotate CONFIG SECONDS INSTANCES MIN_KIDS "
		    "MIN_DELETED");
	seconds = atof(argv[3]);
	ninst = atoi(argv[4]);
	min_kids = atoi(argv[5]);
	min_deleted = atoi(argv[6]);
	if (ninst < 1 || ninst > MAX_CONNS / 2)
		fatalx("1 to %d instances", MAX_CONNS / 2);
	publish = (double)(conf.jwks_max_age + conf.key_publish_margin);
	nconn = ninst * 2;
	for (i = 0; i < ninst; i++)
		inst_start(&in[i]);
	for (i = 0; i < nconn; i++)
		ws[i] = w_new(&in[i / 2], i / 2);
	for (i = 0; i < nconn; i++)
		check(w_wait_keys(ws[i], 1, 60), "connection %d: no IPC_KEYS", i);
	if (failures)
		goto stop;
	check_bad_requests(ws[0]);

	/* A burst of pipelined requests on every connection at once. */
	t0 = now();
	for (i = 0; i < nconn; i++)
		for (k = 0; k < burst; k++)
			w_send(ws[i]);
	for (got = 0, t = now() + 60; now() < t; ) {
		w_poll_all(ws, nconn, 1);
		for (got = 1, i = 0; i < nconn; i++)
			got &= ws[i]->outstanding == 0;
		if (got)
			break;
	}
	check(got, "the burst was not answered");
	printf("burst: %d signatures on %d connections in %.2f s\n", burst * nconn,
	    nconn, now() - t0);

	/* Then sign all along, a request every 20 ms per connection. */
	tend = now() + seconds;
	nextsend = now();
	while ((t = now()) < tend) {
		w_poll_all(ws, nconn, nextsend > t ? nextsend - t : 0);
		if (now() >= nextsend) {
			for (i = 0; i < nconn; i++)
				if (ws[i]->outstanding < 2 && !ws[i]->eof)
					w_send(ws[i]);
			nextsend += 0.02;
		}
	}
	for (t = now() + 10; now() < t; ) {
		for (got = 1, i = 0; i < nconn; i++)
			got &= ws[i]->outstanding == 0;
		if (got)
			break;
		w_poll_all(ws, nconn, 0.5);
	}

	for (i = 0; i < nconn; i++) {
		struct wconn *w = ws[i];

		check(!w->eof, "connection %d: closed by the signer", i);
		k = i == 0 ? 6 : 0;	/* check_bad_requests */
		check(w->errs == k, "connection %d: %d signing errors", i, w->errs - k);
		nsigned = deleted = 0;
		for (k = 0; k < w->nkids; k++) {
			ki = &w->kids[k];
			if (ki->first_sign >= 0)
				nsigned++;
			if (ki->first_sign >= 0 && !ki->initial)
				check(ki->first_sign - ki->first_seen >= publish - SLACK,
				    "key %s signed %.2f s after it was published, "
				    "not %.0f s", ki->kid, ki->first_sign -
				    ki->first_seen, publish);
			if (ki->gone >= 0) {
				deleted++;
				if (ki->last_sign >= 0)
					check(ki->gone - ki->last_sign >=
					    (double)(conf.access_token_ttl +
					    conf.jwks_max_age) - SLACK,
					    "key %s left the JWKS %.2f s after its last "
					    "token", ki->kid, ki->gone - ki->last_sign);
			}
		}
		if (i == 0 || i == nconn - 1)
			printf("connection %d: %d tokens, %d IPC_KEYS, %d keys seen, "
			    "%d signed, %d gone\n", i, w->ok, w->nmsgs, w->nkids,
			    nsigned, deleted);
		check(nsigned >= min_kids, "connection %d: %d keys signed, want %d", i,
		    nsigned, min_kids);
		check(deleted >= min_deleted, "connection %d: %d keys deleted, want %d",
		    i, deleted, min_deleted);
		check(w->nseq == ws[0]->nseq, "connection %d saw %d active keys, "
		    "connection 0 %d", i, w->nseq, ws[0]->nseq);
		for (k = 0; k < w->nseq && k < ws[0]->nseq; k++)
			check(strcmp(w->seq[k], ws[0]->seq[k]) == 0,
			    "connection %d: active key %d differs", i, k);
	}

	/* SIGTERM with requests in flight: each is answered, then EOF, then exit 0. */
	sent = 20;
	for (k = 0; k < sent; k++)
		id = w_send(ws[0]);
	kill(in[0].pid, SIGTERM);
	got = ws[0]->ok;
	while (!ws[0]->eof)
		if (w_read(ws[0], 15) == 0)
			break;
	check(ws[0]->ok - got == sent && ws[0]->last_reply_id == id,
	    "SIGTERM: %d of %d requests in flight answered", ws[0]->ok - got, sent);
	check(ws[0]->eof, "SIGTERM: the connection was not closed");
	while (w_read(ws[1], 15) > 0)
		;
	check(ws[1]->eof, "SIGTERM: the idle connection was not closed");
 stop:
	for (i = 0; i < ninst; i++)
		inst_stop(&in[i], 20);
	for (i = 0; i < nconn; i++)
		w_free(ws[i]);
	return failures != 0;
}

static PGconn *
db_connect(void)
{
	PGconn *db = PQconnectdb(conf.database);

	if (PQstatus(db) != CONNECTION_OK)
		fatalx("database: %s", PQerrorMessage(db));
	return db;
}

/* The first column of the first row of a query with up to one parameter. */
static char *
db_value(PGconn *db, const char *sql, const char *param)
{
	PGresult *res;
	char *v = NULL;

	res = PQexecParams(db, sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL,
	    NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		v = xstrdup(PQgetvalue(res, 0, 0));
	else if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		check(0, "%s: %s", sql, PQerrorMessage(db));
	PQclear(res);
	return v;
}

static int
mode_requests(int argc, char **argv)
{
	double publish = (double)(conf.jwks_max_age + conf.key_publish_margin);
	char k1[64], n1[64], n2[64], *v;
	struct inst in;
	struct wconn *w;
	struct kidinfo *ki;
	PGconn *db;
	double t, t_n1;
	uint32_t id;

	db = db_connect();
	inst_start(&in);
	w = w_new(&in, 0);
	check(w_wait_keys(w, 1, 60), "no IPC_KEYS");
	if (failures)
		goto stop;
	snprintf(k1, sizeof(k1), "%s", w->active);
	snprintf(n1, sizeof(n1), "%s", w->next);
	check(n1[0] != '\0', "no next key beside the active one");
	ki = w_kid(w, n1);
	t_n1 = ki != NULL ? ki->first_seen : now();

	/* Normal: the next key signs once published long enough, not earlier. */
	free(db_value(db, "INSERT INTO key_rotation_requests (emergency) VALUES (false)",
	    NULL));
	check(w_wait_active_change(w, k1, publish + 10), "rotate: no new active key");
	t = now();
	printf("rotate: %s active %.2f s after it was published (window %.0f s)\n",
	    w->active, t - t_n1, publish);
	check(strcmp(w->active, n1) == 0, "rotate: the new active key is not the next");
	check(t - t_n1 >= publish - SLACK, "rotate: next key signed too early");
	check(t - t_n1 <= publish + 2.5, "rotate: next key did not sign as soon as it "
	    "could");
	check(meta_state(w->last, k1) != NULL && strcmp(meta_state(w->last, k1),
	    "retired") == 0, "rotate: the old key is not published as retired");
	check(w->next[0] != '\0' && strcmp(w->next, n1) != 0, "rotate: no new next key");
	snprintf(n2, sizeof(n2), "%s", w->next);
	v = db_value(db, "SELECT count(*) FROM key_rotation_requests "
	    "WHERE done_at IS NULL", NULL);
	check(v != NULL && strcmp(v, "0") == 0, "rotate: the request is not done");
	free(v);
	id = w_send(w);
	check(w_wait_reply(w, id, 10) && strcmp(w->last_kid, n1) == 0,
	    "rotate: not signing with the new key");

	/* Emergency: the active key leaves the JWKS at once, the next one signs. */
	free(db_value(db, "INSERT INTO key_rotation_requests (emergency) VALUES (true)",
	    NULL));
	t = now();
	check(w_wait_active_change(w, n1, 10), "emergency: no new active key");
	t = now() - t;
	printf("emergency: %s withdrawn, %s active after %.2f s\n", n1, w->active, t);
	check(t < 2.0, "emergency: took %.2f s", t);
	check(strcmp(w->active, n2) == 0, "emergency: the new active key is not the "
	    "next one");
	check(!jwks_has(w->last, n1), "emergency: the withdrawn key is still published");
	check(jwks_has(w->last, k1), "emergency: the retired key was dropped too");
	check(w->next[0] != '\0' && strcmp(w->next, n2) != 0,
	    "emergency: no new next key");
	id = w_send(w);
	check(w_wait_reply(w, id, 10) && strcmp(w->last_kid, n2) == 0,
	    "emergency: not signing with the new key");
	v = db_value(db, "SELECT state || ' ' || withdrawn FROM signing_keys "
	    "WHERE kid = $1", n1);
	check(v != NULL && strcmp(v, "retired true") == 0,
	    "emergency: the old key is %s in the database", v ? v : "gone");
	free(v);
	v = db_value(db, "SELECT count(*) FROM key_rotation_requests "
	    "WHERE done_at IS NULL", NULL);
	check(v != NULL && strcmp(v, "0") == 0, "emergency: the request is not done");
	free(v);
 stop:
	inst_stop(&in, 20);
	w_free(w);
	PQfinish(db);
	return failures != 0;
}

static int
mode_nodb(int argc, char **argv)
{
	struct inst in;
	struct wconn *w;
	uint32_t id;

	inst_start(&in);
	w = w_new(&in, 0);
	check(w_read(w, 3) == 0, "IPC_KEYS (or EOF) without a database");
	/* The parent reloads by restarting the signer and stops it last: these do not. */
	kill(in.pid, SIGHUP);
	kill(in.pid, SIGINT);
	check(w_read(w, 1) == 0, "SIGHUP or SIGINT stopped the signer");
	id = w_send(w);
	check(w_wait_reply(w, id, 10) && w->errs == 1,
	    "signing without keys was not refused");
	printf("without a database: \"%s\"\n", w->lasterr);
	inst_stop(&in, 20);
	w_free(w);
	return failures != 0;
}

static int
mode_outage(int argc, char **argv)
{
	struct wconn *w;
	struct inst in;
	double tend, t, nextsend, gap = 0, last;
	int signedkeys = 0, k, lastok = 0;

	if (argc != 4)
		fatalx("usage: signer-drv outage CONFIG SECONDS");
	inst_start(&in);
	w = w_new(&in, 0);
	check(w_wait_keys(w, 1, 60), "no IPC_KEYS");
	printf("ready\n");
	fflush(stdout);
	tend = now() + atof(argv[3]);
	nextsend = last = now();
	while ((t = now()) < tend && !w->eof) {
		w_read(w, nextsend > t ? nextsend - t : 0);
		if (now() >= nextsend && w->outstanding == 0) {
			w_send(w);
			nextsend = now() + 0.05;
		}
		if (w->ok != lastok) {
			if (now() - last > gap)
				gap = now() - last;
			last = now();
			lastok = w->ok;
		}
	}
	for (k = 0; k < w->nkids; k++)
		signedkeys += w->kids[k].first_sign >= 0;
	printf("outage: %d tokens, %d errors, %d keys signed, longest gap %.2f s\n",
	    w->ok, w->errs, signedkeys, gap);
	check(!w->eof, "the signer closed the connection");
	check(w->errs == 0, "%d signing errors during the outage", w->errs);
	check(gap < 1.0, "signing stalled for %.2f s", gap);
	check(signedkeys >= 2, "no rotation after the database came back");
	inst_stop(&in, 20);
	w_free(w);
	return failures != 0;
}

static int
mode_peercred(int argc, char **argv)
{
	struct wconn *w;
	struct inst in;
	int status, fd;
	pid_t pid;
	char c;

	inst_start(&in);
	w = w_new(&in, 0);
	check(w_wait_keys(w, 1, 60), "no IPC_KEYS for our own uid");
	if (getuid() == 0) {
		chmod(in.dir, 0755);
		chmod(in.path, 0777);
		fflush(stdout);
		if ((pid = fork()) == 0) {
			if (setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
			    setuid(65534) == -1)
				_exit(2);
			if ((fd = unix_connect(in.path)) == -1)
				_exit(3);
			/* Closed at once, nothing sent. */
			_exit(read(fd, &c, 1) == 0 ? 0 : 1);
		}
		waitpid(pid, &status, 0);
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "a connection from uid 65534 was not refused (status 0x%x)", status);
		printf("peercred: another uid is refused\n");
	} else
		printf("peercred: not root, skipped\n");
	inst_stop(&in, 20);
	w_free(w);
	return failures != 0;
}

static int
mode_run(int argc, char **argv)
{
	struct inst in;
	int status;

	if (argc != 4)
		fatalx("usage: signer-drv run CONFIG SECONDS");
	inst_start(&in);
	status = inst_wait(&in, atof(argv[3]));
	if (status == -1) {
		printf("still running\n");
		return 100;
	}
	if (WIFSIGNALED(status)) {
		printf("killed by signal %d\n", WTERMSIG(status));
		return 101;
	}
	printf("exit %d\n", WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

int
main(int argc, char **argv)
{
	char err[512];
	int rv;

	if (argc < 3) {
		fprintf(stderr, "usage: signer-drv rotate|requests|nodb|outage|peercred|"
		    "run CONFIG [ARGS]\n");
		return 2;
	}
	secret_init();
	log_init("signer-drv", LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (idp_config_load(&conf, argv[2], err, sizeof(err)) == -1)
		fatalx("%s", err);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "rotate") == 0)
		rv = mode_rotate(argc, argv);
	else if (strcmp(argv[1], "requests") == 0)
		rv = mode_requests(argc, argv);
	else if (strcmp(argv[1], "nodb") == 0)
		rv = mode_nodb(argc, argv);
	else if (strcmp(argv[1], "outage") == 0)
		rv = mode_outage(argc, argv);
	else if (strcmp(argv[1], "peercred") == 0)
		rv = mode_peercred(argc, argv);
	else if (strcmp(argv[1], "run") == 0)
		return mode_run(argc, argv);
	else
		fatalx("unknown mode %s", argv[1]);
	if (failures)
		fprintf(stderr, "signer-drv: %s: %d check(s) failed\n", argv[1], failures);
	idp_config_free(&conf);
	return rv;
}
