/* signclient.c: the worker's side of the worker <-> signer protocol (common/ipc.h).
 *
 * One Unix stream connection carries every signing request of the worker, pipelined:
 * each request gets a frame (IPC_SIGN_REQ, a fresh id, "typ\0claims") that is appended
 * to an output buffer; the buffer is written with one write per loop iteration, from an
 * event activated by the first request of the iteration, so a burst of /token requests
 * costs one system call. Replies (IPC_SIGN_REP / IPC_SIGN_ERR, in any order) find their
 * request by id in a small hash of buckets; IPC_KEYS is handed to the keys callback.
 *
 * Every request stays on the pending list, in the order it was made, until it is
 * answered, times out (SIGN_TIMEOUT_MS, checked from the oldest end) or is cancelled.
 * When the connection drops, the pending requests are written again on the next one,
 * but only once the signer has sent its first IPC_KEYS there: a signer that has just
 * started accepts connections before it has loaded its keys (the parent keeps the
 * listening socket while it restarts the signer, so reconnecting succeeds at once), and
 * would refuse to sign until then.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "signclient.h"
#include "xalloc.h"

#define SC_RETRY_MIN_MS		50
#define SC_RETRY_MAX_MS		2000
#define SC_SWEEP_MS		250
#define SC_NBUCKETS		1024	/* power of two */
#define SC_READ_SIZE		65536	/* read buffer; a bigger frame grows it */

struct sign_req {
	TAILQ_ENTRY(sign_req)	 order;		/* pending, oldest first */
	LIST_ENTRY(sign_req)	 bucket;
	struct signclient	*sc;
	uint32_t		 id;
	unsigned char		*frame;		/* header + payload, ready to write */
	size_t			 framelen;
	uint64_t		 deadline;	/* monotonic ms */
	signclient_cb		*cb;
	void			*arg;
};
TAILQ_HEAD(sign_reqq, sign_req);
LIST_HEAD(sign_bucket, sign_req);

struct signclient {
	struct event_base	*base;
	char			*path;
	int			 fd;
	int			 connected;	/* the socket is connected */
	int			 ready;		/* and IPC_KEYS came on it */
	struct event		*read_ev;
	struct event		*write_ev;
	struct event		*flush_ev;
	struct event		*retry_ev;
	struct event		*sweep_ev;
	int			 flush_pending;
	int			 backoff_ms;
	int			 down_logged;
	unsigned char		*in;		/* received, from in_off to in_len;
						 * in_size + 1 bytes, for a NUL */
	size_t			 in_off, in_len, in_size;
	struct evbuffer		*out;
	uint32_t		 next_id;
	struct sign_reqq	 pending;
	size_t			 npending;
	struct sign_bucket	 buckets[SC_NBUCKETS];
	signclient_keys_cb	*keys_cb;
	signclient_state_cb	*state_cb;
	void			*cbarg;
};

static void	signclient_connect(struct signclient *);

static uint64_t
sc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Take r off the pending list and its bucket, and free it. */
static void
sign_req_free(struct sign_req *r)
{
	struct signclient *sc = r->sc;

	TAILQ_REMOVE(&sc->pending, r, order);
	LIST_REMOVE(r, bucket);
	sc->npending--;
	free(r->frame);
	free(r);
}

static void
sc_schedule_flush(struct signclient *sc)
{
	if (sc->ready && !sc->flush_pending) {
		sc->flush_pending = 1;
		event_active(sc->flush_ev, 0, 0);
	}
}

static void
sc_disconnect(struct signclient *sc, const char *why)
{
	struct timeval tv;

	if (sc->fd != -1) {
		event_del(sc->read_ev);
		event_del(sc->write_ev);
		close(sc->fd);
		sc->fd = -1;
	}
	sc->in_off = sc->in_len = 0;
	evbuffer_drain(sc->out, evbuffer_get_length(sc->out));
	if (sc->connected) {
		log_warnx("signer: connection lost: %s; reconnecting", why);
		sc->connected = 0;
		if (sc->ready && sc->state_cb != NULL)
			sc->state_cb(0, sc->cbarg);
		sc->ready = 0;
	} else if (!sc->down_logged) {
		log_warnx("signer: cannot connect to %s: %s; retrying", sc->path, why);
		sc->down_logged = 1;
	}
	tv.tv_sec = sc->backoff_ms / 1000;
	tv.tv_usec = (sc->backoff_ms % 1000) * 1000;
	evtimer_add(sc->retry_ev, &tv);
	sc->backoff_ms *= 2;
	if (sc->backoff_ms > SC_RETRY_MAX_MS)
		sc->backoff_ms = SC_RETRY_MAX_MS;
}

static void
sc_flush(struct signclient *sc)
{
	int n;

	sc->flush_pending = 0;
	while (sc->ready && evbuffer_get_length(sc->out) > 0) {
		if ((n = evbuffer_write(sc->out, sc->fd)) > 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(sc->write_ev, NULL);
			return;
		}
		sc_disconnect(sc, n == 0 ? "connection closed" : strerror(errno));
		return;
	}
	event_del(sc->write_ev);
}

static void
sc_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	sc_flush(arg);
}

static void
sc_write_cb(evutil_socket_t fd, short what, void *arg)
{
	sc_flush(arg);
}

static struct sign_req *
sc_find(struct signclient *sc, uint32_t id)
{
	struct sign_req *r;

	LIST_FOREACH(r, &sc->buckets[id & (SC_NBUCKETS - 1)], bucket)
		if (r->id == id)
			return r;
	return NULL;
}

static void
sc_message(struct signclient *sc, const struct ipc_hdr *h, const char *payload)
{
	struct sign_req *r;

	switch (h->type) {
	case IPC_KEYS:
		if (sc->keys_cb != NULL)
			sc->keys_cb(payload, h->len, sc->cbarg);
		if (!sc->ready) {
			/* The signer is ready: what waits goes out now, in order. */
			sc->ready = 1;
			TAILQ_FOREACH(r, &sc->pending, order)
				evbuffer_add(sc->out, r->frame, r->framelen);
			sc_schedule_flush(sc);
			if (sc->state_cb != NULL)
				sc->state_cb(1, sc->cbarg);
		}
		break;
	case IPC_SIGN_REP:
	case IPC_SIGN_ERR:
		if ((r = sc_find(sc, h->id)) == NULL) {
			/* Its request timed out or was cancelled. */
			log_debug("signer: reply to unknown request %u", (unsigned)h->id);
			break;
		}
		if (h->type == IPC_SIGN_ERR)
			log_warnx("signer: cannot sign: %.*s", (int)(h->len > 200 ? 200 :
			    h->len), payload);
		r->cb(h->type == IPC_SIGN_REP ? SIGN_OK : SIGN_ERROR, payload, h->len,
		    r->arg);
		sign_req_free(r);
		break;
	default:
		fatalx("signer: unexpected IPC message type %u", (unsigned)h->type);
	}
}

/* Make room for at least need more bytes after in_len. */
static void
sc_in_room(struct signclient *sc, size_t need)
{
	if (sc->in_off > 0) {
		memmove(sc->in, sc->in + sc->in_off, sc->in_len - sc->in_off);
		sc->in_len -= sc->in_off;
		sc->in_off = 0;
	}
	if (sc->in_size - sc->in_len < need) {
		sc->in_size = sc->in_len + need;
		sc->in = xreallocarray(sc->in, 1, sc->in_size + 1);	/* + NUL */
	}
}

static void
sc_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signclient *sc = arg;
	struct ipc_hdr h;
	const char *errstr, *gone = NULL;
	unsigned char *p, save;
	size_t avail;
	ssize_t n;

	/* One read, into our own buffer: no FIONREAD, no allocation per read. A read
	 * that fills the room is followed by another when the loop comes back. */
	if (sc->in_size - sc->in_len < SC_READ_SIZE / 2)
		sc_in_room(sc, SC_READ_SIZE / 2);
	n = read(fd, sc->in + sc->in_len, sc->in_size - sc->in_len);
	if (n > 0)
		sc->in_len += (size_t)n;
	else if (n == 0)
		gone = "closed by the signer";
	else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
		gone = strerror(errno);

	/* Frames that arrived before an end of file still count. */
	while (sc->connected && (avail = sc->in_len - sc->in_off) >= IPC_HDR_SIZE) {
		p = sc->in + sc->in_off;
		if (ipc_hdr_decode(p, &h, &errstr) == -1)
			fatalx("signer: %s", errstr);
		if (avail < IPC_HDR_SIZE + (size_t)h.len) {
			if (sc->in_size - sc->in_off < IPC_HDR_SIZE + (size_t)h.len)
				sc_in_room(sc, IPC_HDR_SIZE + (size_t)h.len);
			break;
		}
		sc->in_off += IPC_HDR_SIZE + (size_t)h.len;
		/* The payload, NUL-terminated in place for the callback. */
		p += IPC_HDR_SIZE;
		save = p[h.len];
		p[h.len] = '\0';
		sc_message(sc, &h, (const char *)p);
		p[h.len] = save;
	}
	if (sc->in_off == sc->in_len)
		sc->in_off = sc->in_len = 0;
	if (gone != NULL && sc->connected)
		sc_disconnect(sc, gone);
}

static void
sc_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	signclient_connect(arg);
}

static void
signclient_connect(struct signclient *sc)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sc->path) >= sizeof(sun.sun_path))
		fatalx("signer: socket path too long: %s", sc->path);
	memcpy(sun.sun_path, sc->path, strlen(sc->path));
	if ((sc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		fatal("signer: socket");
	/* A Unix socket connects at once or not at all (EAGAIN: backlog full). */
	if (connect(sc->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		sc_disconnect(sc, strerror(errno));
		return;
	}
	event_assign(sc->read_ev, sc->base, sc->fd, EV_READ | EV_PERSIST, sc_read_cb, sc);
	event_assign(sc->write_ev, sc->base, sc->fd, EV_WRITE | EV_PERSIST, sc_write_cb,
	    sc);
	event_add(sc->read_ev, NULL);
	sc->connected = 1;
	sc->ready = 0;
	sc->down_logged = 0;
	sc->backoff_ms = SC_RETRY_MIN_MS;
	log_debug("signer: connected to %s", sc->path);
	/* Requests wait for the signer's first IPC_KEYS (sc_message). */
}

static void
sc_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signclient *sc = arg;
	struct sign_req *r;
	uint64_t now = sc_now();

	while ((r = TAILQ_FIRST(&sc->pending)) != NULL && now >= r->deadline) {
		r->cb(SIGN_UNAVAILABLE, NULL, 0, r->arg);
		sign_req_free(r);
	}
}

struct signclient *
signclient_new(struct event_base *base, const char *path, signclient_keys_cb *keys_cb,
    signclient_state_cb *state_cb, void *arg)
{
	struct timeval tv = { 0, SC_SWEEP_MS * 1000 };
	struct signclient *sc = xcalloc(1, sizeof(*sc));
	size_t i;

	sc->base = base;
	sc->path = xstrdup(path);
	sc->fd = -1;
	sc->keys_cb = keys_cb;
	sc->state_cb = state_cb;
	sc->cbarg = arg;
	sc->backoff_ms = SC_RETRY_MIN_MS;
	sc->next_id = 1;
	TAILQ_INIT(&sc->pending);
	for (i = 0; i < SC_NBUCKETS; i++)
		LIST_INIT(&sc->buckets[i]);
	sc->in_size = SC_READ_SIZE;
	sc->in = xmalloc(sc->in_size + 1);
	sc->out = evbuffer_new();
	/* The fd events are assigned on each connection. */
	sc->read_ev = event_new(base, -1, 0, sc_read_cb, sc);
	sc->write_ev = event_new(base, -1, 0, sc_write_cb, sc);
	sc->flush_ev = event_new(base, -1, 0, sc_flush_cb, sc);
	sc->retry_ev = evtimer_new(base, sc_retry_cb, sc);
	sc->sweep_ev = event_new(base, -1, EV_PERSIST, sc_sweep_cb, sc);
	if (sc->out == NULL || sc->read_ev == NULL ||
	    sc->write_ev == NULL || sc->flush_ev == NULL || sc->retry_ev == NULL ||
	    sc->sweep_ev == NULL)
		fatalx("signer: cannot create events");
	event_add(sc->sweep_ev, &tv);
	signclient_connect(sc);
	return sc;
}

int
signclient_up(const struct signclient *sc)
{
	return sc->ready;
}

struct sign_req *
signclient_sign(struct signclient *sc, const char *typ, const char *claims, size_t len,
    signclient_cb *cb, void *arg)
{
	struct sign_req *r;
	struct ipc_hdr h;
	size_t tlen = strlen(typ), plen = tlen + 1 + len;

	if (sc->npending >= SIGN_MAX_PENDING || plen > IPC_MAX_PAYLOAD)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->sc = sc;
	do
		r->id = sc->next_id++;
	while (r->id == 0 || sc_find(sc, r->id) != NULL);
	r->framelen = IPC_HDR_SIZE + plen;
	r->frame = xmalloc(r->framelen);
	h.len = (uint32_t)plen;
	h.type = IPC_SIGN_REQ;
	h.flags = 0;
	h.id = r->id;
	ipc_hdr_encode(r->frame, &h);
	memcpy(r->frame + IPC_HDR_SIZE, typ, tlen + 1);
	memcpy(r->frame + IPC_HDR_SIZE + tlen + 1, claims, len);
	r->deadline = sc_now() + SIGN_TIMEOUT_MS;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&sc->pending, r, order);
	LIST_INSERT_HEAD(&sc->buckets[r->id & (SC_NBUCKETS - 1)], r, bucket);
	sc->npending++;
	if (sc->ready) {
		evbuffer_add(sc->out, r->frame, r->framelen);
		sc_schedule_flush(sc);
	}
	return r;
}

void
signclient_cancel(struct sign_req *r)
{
	r->cb(SIGN_CANCELLED, NULL, 0, r->arg);
	sign_req_free(r);
}
