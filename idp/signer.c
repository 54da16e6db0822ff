/* signer.c: the signer process of idp: it alone reads the key-encryption key and holds
 * decrypted private keys; it signs for the workers and runs key rotation. */

/*
 * Threads. The main thread accepts workers on the signer socket and handles SIGTERM.
 * Each worker connection gets a thread of its own that reads IPC_SIGN_REQ frames and
 * answers them one at a time, so signatures for N workers run on N cores and nothing
 * global is locked while a signature is made. One rotation thread owns the database
 * connection (keystore.c): it runs the schedule, reloads the keys, and pushes a
 * changed key set to every worker.
 *
 * Key sets never change once loaded; a new one replaces the current one under
 * keys_lock, and reference counts keep a set (and its EVP_PKEY) alive while a thread
 * still signs with it.
 *
 * Ordering. Each connection remembers the set it last sent as IPC_KEYS (conn->sent,
 * under the connection's write lock), and a request is signed with that set, after
 * sending the current one if it is newer. So on every connection a token's kid has
 * always arrived as active_kid in an IPC_KEYS frame before the token itself. (A reply
 * signed just before a swap may follow the IPC_KEYS of the swap: its key is retired
 * then, and still published.)
 *
 * Key material: the KEK lives in sodium_malloc'ed read-only memory; decrypted private
 * JWKs pass through sodium_malloc'ed buffers and jansson strings, which this process
 * wipes on free (signer_json_free); the EVP_PKEYs are OpenSSL's, which clears private
 * numbers when it frees them. Core dumps and ptrace by other processes are off.
 * XXX The EVP_PKEYs are not in locked memory: OpenSSL's secure heap would lock them
 * (jwk.c makes their private numbers with BN_secure_new), but it fails allocations
 * once full and takes one global lock per allocation, and RSA signing allocates
 * there many times per signature, on every worker thread at once.
 */
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "idp.h"
#include "ipc.h"
#include "jws.h"
#include "keystore.h"
#include "log.h"
#include "secret.h"
#include "signer.h"
#include "token.h"
#include "xalloc.h"

#define SIGNER_SNDTIMEO		10	/* seconds a write to a worker may block */
#define SIGNER_DRAIN_SECONDS	10	/* on SIGTERM, to answer requests in progress */
#define SIGNER_JOIN_SECONDS	5	/* then for the rotation thread to stop */
#define SIGNER_TICK_MAX		30	/* seconds between schedule runs, at most */
#define SIGNER_BACKOFF_MAX	10	/* seconds between reconnection attempts, at most */
#define SIGNER_TYP_MAX		64

/* A worker connection, served by its own thread. */
struct conn {
	TAILQ_ENTRY(conn)	 entry;
	pthread_t		 thread;
	int			 fd;
	pthread_mutex_t		 wlock;		/* one writer at a time */
	struct keyset		*sent;		/* last sent as IPC_KEYS; under wlock */
};

/* The signer's state; one signer per process. */
static struct {
	const struct idp_config	*conf;
	unsigned char		*kek;
	pthread_mutex_t		 keys_lock;
	struct keyset		*current;	/* under keys_lock; NULL until loaded */
	pthread_mutex_t		 conns_lock;
	pthread_cond_t		 conns_cond;	/* signalled when a connection ends */
	TAILQ_HEAD(, conn)	 conns;		/* open; under conns_lock */
	TAILQ_HEAD(, conn)	 done;		/* ended, thread to join; ditto */
	int			 nconns;	/* threads not yet in done */
	int			 wake[2];	/* wakes the rotation thread to stop */
	atomic_int		 stopping;
} sg = {
	.keys_lock = PTHREAD_MUTEX_INITIALIZER,
	.conns_lock = PTHREAD_MUTEX_INITIALIZER,
	.conns_cond = PTHREAD_COND_INITIALIZER,
	.conns = TAILQ_HEAD_INITIALIZER(sg.conns),
	.done = TAILQ_HEAD_INITIALIZER(sg.done),
	.wake = { -1, -1 },
};

static volatile sig_atomic_t signer_quit;

/* jansson's free in this process: strings of private JWKs are wiped before release. */
static void
signer_json_free(void *p)
{
	if (p == NULL)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

static struct keyset *
keyset_ref(struct keyset *set)
{
	atomic_fetch_add(&set->refs, 1);
	return set;
}

static void
keyset_unref(struct keyset *set)
{
	if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1)
		keyset_free(set);
}

/* A new reference to the current key set, or NULL before the first load. */
static struct keyset *
signer_current(void)
{
	struct keyset *set = NULL;

	pthread_mutex_lock(&sg.keys_lock);
	if (sg.current != NULL)
		set = keyset_ref(sg.current);
	pthread_mutex_unlock(&sg.keys_lock);
	return set;
}

/* Build the IPC_KEYS message of a set (common/ipc.h), plus "keys": the kid, state,
 * created_at and activated_at (unix seconds or null) of each key, for metrics. */
static void
signer_payload(struct keyset *set)
{
	json_t *root, *jwks, *meta, *m;
	size_t i;

	root = json_object();
	jwks = json_array();
	meta = json_array();
	for (i = 0; i < set->nkeys; i++) {
		json_array_append(jwks, set->keys[i].public_jwk);
		m = json_object();
		json_object_set_new(m, "kid", json_string(set->keys[i].kid));
		json_object_set_new(m, "state", json_string(set->keys[i].state));
		json_object_set_new(m, "created_at",
		    json_integer(set->keys[i].created_at));
		json_object_set_new(m, "activated_at", set->keys[i].activated_at < 0 ?
		    json_null() : json_integer(set->keys[i].activated_at));
		json_array_append_new(meta, m);
	}
	json_object_set_new(root, "jwks", json_pack("{s:o}", "keys", jwks));
	json_object_set_new(root, "max_age", json_integer(sg.conf->jwks_max_age));
	json_object_set_new(root, "active_kid", json_string(set->active_kid));
	json_object_set_new(root, "active_alg",
	    json_string(jws_alg_name(set->active_alg)));
	json_object_set_new(root, "keys", meta);
	if ((set->payload = json_dumps(root, JSON_COMPACT)) == NULL)
		fatalx("%s: out of memory", __func__);
	set->payloadlen = strlen(set->payload);
	json_decref(root);
}

/* Send the current key set on c unless it is the one c last got. The caller holds
 * c->wlock. A failed write leaves the stream broken: the connection is shut down. */
static void
conn_sync_keys(struct conn *c)
{
	struct keyset *set = signer_current();

	if (set == NULL || set == c->sent) {
		keyset_unref(set);
		return;
	}
	if (ipc_write_frame(c->fd, IPC_KEYS, 0, set->payload, set->payloadlen) == -1) {
		log_warn("worker connection: cannot send the keys; closing it");
		shutdown(c->fd, SHUT_RDWR);
		keyset_unref(set);
		return;
	}
	keyset_unref(c->sent);
	c->sent = set;
}

/* Replace the current key set with set (taking its reference) if it differs, and
 * push it to every worker. */
static void
signer_publish(struct keyset *set)
{
	struct keyset *old;
	struct conn *c;

	signer_payload(set);
	pthread_mutex_lock(&sg.keys_lock);
	old = sg.current;
	if (old != NULL && old->payloadlen == set->payloadlen &&
	    memcmp(old->payload, set->payload, set->payloadlen) == 0) {
		pthread_mutex_unlock(&sg.keys_lock);
		keyset_unref(set);
		return;
	}
	sg.current = set;
	pthread_mutex_unlock(&sg.keys_lock);
	if (old == NULL || strcmp(old->active_kid, set->active_kid) != 0)
		log_info("signing with key %s (%s)", set->active_kid,
		    jws_alg_name(set->active_alg));
	log_debug("key set changed: %zu published keys", set->nkeys);
	keyset_unref(old);

	pthread_mutex_lock(&sg.conns_lock);
	TAILQ_FOREACH(c, &sg.conns, entry) {
		pthread_mutex_lock(&c->wlock);
		conn_sync_keys(c);
		pthread_mutex_unlock(&c->wlock);
	}
	pthread_mutex_unlock(&sg.conns_lock);
}

/* 1 if typ is a plausible JOSE typ: printable ASCII without spaces. */
static int
signer_typ_ok(const char *typ, size_t len)
{
	size_t i;

	if (len == 0 || len > SIGNER_TYP_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (typ[i] <= 0x20 || typ[i] >= 0x7f)
			return 0;
	return 1;
}

/* Answer one IPC_SIGN_REQ ("typ\0claims-json") with IPC_SIGN_REP or IPC_SIGN_ERR.
 * 0, or -1 when the reply could not be written. */
static int
conn_sign(struct conn *c, const struct ipc_hdr *h, const unsigned char *payload)
{
	const unsigned char *nul;
	const char *errstr = NULL;
	struct keyset *set = NULL;
	json_t *claims = NULL, *header = NULL;
	json_error_t jerr;
	char *jws = NULL;
	size_t typlen;
	int rv;

	if ((nul = memchr(payload, '\0', h->len)) == NULL) {
		errstr = "malformed request: no typ";
		goto reply;
	}
	typlen = (size_t)(nul - payload);
	if (!signer_typ_ok((const char *)payload, typlen)) {
		errstr = "malformed request: bad typ";
		goto reply;
	}
	claims = json_loadb((const char *)nul + 1, h->len - typlen - 1,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(claims)) {
		errstr = "claims are not a JSON object";
		goto reply;
	}
	pthread_mutex_lock(&c->wlock);
	conn_sync_keys(c);
	if (c->sent != NULL)
		set = keyset_ref(c->sent);
	pthread_mutex_unlock(&c->wlock);
	if (set == NULL) {
		errstr = "no signing key loaded";
		goto reply;
	}
	header = token_header((const char *)payload, set->active_kid,
	    jws_alg_name(set->active_alg));
	if ((jws = jws_sign(set->active_pkey, set->active_alg, header, claims,
	    &errstr)) == NULL)
		log_warnx("cannot sign with key %s: %s", set->active_kid, errstr);
 reply:
	pthread_mutex_lock(&c->wlock);
	if (jws != NULL)
		rv = ipc_write_frame(c->fd, IPC_SIGN_REP, h->id, jws, strlen(jws));
	else
		rv = ipc_write_frame(c->fd, IPC_SIGN_ERR, h->id, errstr,
		    strlen(errstr));
	pthread_mutex_unlock(&c->wlock);
	if (rv == -1)
		log_warn("worker connection: cannot reply");
	free(jws);
	json_decref(header);
	json_decref(claims);
	keyset_unref(set);
	return rv;
}

/* The last act of a connection's thread: close, and hand the thread to the main
 * thread to join (so that the process never exits under a thread that is still
 * ending, OpenSSL freeing its per-thread state). */
static void
conn_close(struct conn *c)
{
	/* Out of the list first: then no other thread touches c or its fd. */
	pthread_mutex_lock(&sg.conns_lock);
	TAILQ_REMOVE(&sg.conns, c, entry);
	pthread_mutex_unlock(&sg.conns_lock);
	close(c->fd);
	keyset_unref(c->sent);
	c->sent = NULL;
	pthread_mutex_destroy(&c->wlock);
	pthread_mutex_lock(&sg.conns_lock);
	TAILQ_INSERT_TAIL(&sg.done, c, entry);
	sg.nconns--;
	pthread_cond_broadcast(&sg.conns_cond);
	pthread_mutex_unlock(&sg.conns_lock);
}

/* Join the threads of ended connections and free them (main thread). */
static void
signer_reap(void)
{
	TAILQ_HEAD(, conn) done = TAILQ_HEAD_INITIALIZER(done);
	struct conn *c;

	pthread_mutex_lock(&sg.conns_lock);
	TAILQ_CONCAT(&done, &sg.done, entry);
	pthread_mutex_unlock(&sg.conns_lock);
	while ((c = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, c, entry);
		pthread_join(c->thread, NULL);
		free(c);
	}
}

static void *
conn_thread(void *arg)
{
	struct conn *c = arg;
	struct ipc_hdr h;
	unsigned char *payload;
	int r;

	pthread_mutex_lock(&c->wlock);
	conn_sync_keys(c);
	pthread_mutex_unlock(&c->wlock);
	for (;;) {
		if ((r = ipc_read_frame(c->fd, &h, &payload)) == 1)
			break;
		if (r == -1) {
			if (errno == EPROTO)
				log_warnx("worker connection: malformed frame; closing it");
			else if (errno != ECONNRESET)
				log_warn("worker connection");
			break;
		}
		if (h.type != IPC_SIGN_REQ) {
			log_warnx("worker connection: unexpected message type %u; "
			    "closing it", (unsigned)h.type);
			free(payload);
			break;
		}
		r = conn_sign(c, &h, payload);
		free(payload);
		if (r == -1)
			break;
	}
	conn_close(c);
	return NULL;
}

/* Accept a connection on listen_fd: a worker of our own uid gets a thread. */
static void
signer_accept(int listen_fd)
{
	struct timeval tv = { SIGNER_SNDTIMEO, 0 };
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	int fd, r;

	if ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return;
		log_warn("accept");
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			nanosleep(&pause, NULL);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    cred.uid != getuid()) {
		log_warnx("refused a connection from uid %ld, not ours",
		    len == sizeof(cred) ? (long)cred.uid : -1L);
		close(fd);
		return;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		log_warn("SO_SNDTIMEO");
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	pthread_mutex_init(&c->wlock, NULL);
	/* Listed before its thread starts: key pushes reach it from the start. */
	pthread_mutex_lock(&sg.conns_lock);
	TAILQ_INSERT_TAIL(&sg.conns, c, entry);
	sg.nconns++;
	if ((r = pthread_create(&c->thread, NULL, conn_thread, c)) != 0) {
		TAILQ_REMOVE(&sg.conns, c, entry);
		sg.nconns--;
	}
	pthread_mutex_unlock(&sg.conns_lock);
	if (r != 0) {
		errno = r;
		log_warn("cannot start a thread for a worker connection");
		keyset_unref(c->sent);
		pthread_mutex_destroy(&c->wlock);
		close(fd);
		free(c);
		return;
	}
	log_debug("worker connected (pid %ld)", (long)cred.pid);
}

/* Seconds between runs of the schedule: a quarter of the shortest interval it
 * enforces, at least 1, at most SIGNER_TICK_MAX. */
static long
signer_tick_seconds(const struct idp_config *conf)
{
	long t = conf->jwks_max_age + conf->key_publish_margin;

	if (conf->key_rotation_interval < t)
		t = conf->key_rotation_interval;
	t /= 4;
	if (t < 1)
		t = 1;
	if (t > SIGNER_TICK_MAX)
		t = SIGNER_TICK_MAX;
	return t;
}

static long long
signer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait up to ms for a NOTIFY on idp_keys (or the connection to drop, if ks is
 * connected) or for the stop signal. */
static void
signer_wait(struct keystore *ks, long long ms)
{
	long long deadline = signer_now_ms() + ms, left;
	struct pollfd pfd[2];
	char buf[16];
	int n;

	/* Notifications read along with the last results are already buffered. */
	if (keystore_connected(ks) && keystore_notified(ks) != 0)
		return;
	while (!atomic_load(&sg.stopping) &&
	    (left = deadline - signer_now_ms()) > 0) {
		pfd[0].fd = sg.wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = keystore_socket(ks);
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if ((n = poll(pfd, pfd[1].fd == -1 ? 1 : 2, (int)left)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[0].revents != 0) {
			while (read(sg.wake[0], buf, sizeof(buf)) > 0)
				;
			return;
		}
		if (pfd[1].revents != 0 && keystore_notified(ks) != 0)
			return;
	}
}

/* One run: the schedule (if this instance holds the lock), then reload and publish. */
static void
signer_tick(struct keystore *ks, const char **lasterr)
{
	struct keyset *prev, *set;
	const char *errstr = NULL;

	if (keystore_rotate(ks, &errstr) == -1) {
		log_warnx("key rotation: %s", errstr);
		if (!keystore_connected(ks))
			return;
	}
	prev = signer_current();
	set = keystore_load(ks, prev, &errstr);
	keyset_unref(prev);
	if (set == NULL) {
		/* Said once, not on every tick; another instance may be making the
		 * first keys right now. */
		if (errstr != *lasterr && keystore_connected(ks))
			log_info("%s", errstr);
		*lasterr = errstr;
		return;
	}
	*lasterr = NULL;
	signer_publish(set);
}

static void *
signer_rotation(void *arg)
{
	struct keystore *ks = keystore_new(sg.conf, sg.kek);
	long long tick = signer_tick_seconds(sg.conf) * 1000LL;
	const char *errstr = NULL, *lasterr = NULL;
	struct keyset *set;
	int backoff = 1, lost = 0;

	while (!atomic_load(&sg.stopping)) {
		if (!keystore_connected(ks)) {
			if (keystore_connect(ks, &errstr) == -1) {
				set = signer_current();
				log_warnx("%s; retrying in %d s%s", errstr, backoff,
				    set != NULL ? " (signing with the keys in memory)" :
				    " (no keys yet: not signing)");
				keyset_unref(set);
				signer_wait(ks, backoff * 1000LL);
				backoff = backoff * 2 > SIGNER_BACKOFF_MAX ?
				    SIGNER_BACKOFF_MAX : backoff * 2;
				continue;
			}
			if (lost)
				log_info("connected to the database again");
			backoff = 1;
		}
		signer_tick(ks, &lasterr);
		if (keystore_connected(ks))
			signer_wait(ks, tick);
		if (!keystore_connected(ks) && !atomic_load(&sg.stopping)) {
			lost = 1;
			log_warnx("lost the database connection; signing with the keys "
			    "in memory");
		}
	}
	keystore_free(ks);
	return NULL;
}

static void
signer_on_term(int sig)
{
	signer_quit = 1;
}

/* Handle SIGTERM in the main thread only (in ppoll with the returned mask); ignore
 * SIGHUP, SIGINT and SIGPIPE. */
static void
signer_signals(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = signer_on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, waitmask);
	sigdelset(waitmask, SIGTERM);
}

/* No core dumps, no ptrace by other processes of the same user. */
static void
signer_harden(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		fatal("setrlimit RLIMIT_CORE");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
}

/* Stop: accept no more, let each connection finish the requests it has read or that
 * wait in its socket, stop the rotation thread, and exit 0. */
static void __attribute__((noreturn))
signer_stop(int listen_fd, pthread_t rotation)
{
	struct timespec ts;
	struct conn *c;
	int left, joined;

	close(listen_fd);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += SIGNER_DRAIN_SECONDS;
	pthread_mutex_lock(&sg.conns_lock);
	/* A read then ends at EOF once the socket holds no more requests. */
	TAILQ_FOREACH(c, &sg.conns, entry)
		shutdown(c->fd, SHUT_RD);
	while (sg.nconns > 0)
		if (pthread_cond_timedwait(&sg.conns_cond, &sg.conns_lock, &ts) ==
		    ETIMEDOUT)
			break;
	left = sg.nconns;
	pthread_mutex_unlock(&sg.conns_lock);
	signer_reap();

	atomic_store(&sg.stopping, 1);
	if (write(sg.wake[1], "x", 1) == -1)
		log_warn("waking the rotation thread");
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += SIGNER_JOIN_SECONDS;
	joined = pthread_timedjoin_np(rotation, NULL, &ts) == 0;
	if (left > 0 || !joined) {
		/* Threads still run: exit without running exit handlers under them. */
		log_warnx("stopping with %d worker connection(s)%s still busy", left,
		    joined ? "" : " and the database");
		_exit(0);
	}
	keyset_unref(sg.current);
	sg.current = NULL;
	sodium_free(sg.kek);
	close(sg.wake[0]);
	close(sg.wake[1]);
	log_debug("stopped");
	exit(0);
}

void
signer_main(const struct idp_config *conf, int listen_fd)
{
	enum log_level lvl = LOG_LVL_INFO;
	struct pollfd pfd;
	sigset_t waitmask;
	pthread_t rotation;
	int r, flags;

	if (log_level_parse(conf->log_level, &lvl) == -1)
		lvl = LOG_LVL_INFO;
	log_init("signer", lvl);
	secret_init();
	signer_harden();
	signer_signals(&waitmask);
	/* Before any JSON exists in this process: jansson frees by wiping. */
	json_set_alloc_funcs(malloc, signer_json_free);
	sg.conf = conf;
	sg.kek = keystore_kek_load(conf->key_encryption_key_file);
	if (pipe2(sg.wake, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe2");
	if ((flags = fcntl(listen_fd, F_GETFL)) == -1 ||
	    fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("signer socket");
	if ((r = pthread_create(&rotation, NULL, signer_rotation, NULL)) != 0) {
		errno = r;
		fatal("cannot start the rotation thread");
	}
	log_debug("started: %s keys, schedule checked every %ld s", conf->signing_alg,
	    signer_tick_seconds(conf));

	while (!signer_quit) {
		pfd.fd = listen_fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (ppoll(&pfd, 1, NULL, &waitmask) == -1) {
			if (errno == EINTR)
				continue;
			fatal("ppoll");
		}
		if (signer_quit)
			break;
		if (pfd.revents & (POLLERR | POLLNVAL))
			fatalx("the signer socket failed");
		if (pfd.revents != 0)
			signer_accept(listen_fd);
		signer_reap();
	}
	log_debug("SIGTERM: finishing the requests in progress");
	signer_stop(listen_fd, rotation);
}
