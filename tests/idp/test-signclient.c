/* test-signclient.c: a worker's signer connection against a fake signer thread: no
 * request before the keys, pipelined requests answered out of order, errors, a signer
 * that dies with requests in flight (they are sent again), cancellation, timeouts. */
#include <sys/socket.h>
#include <sys/un.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "../unit/check.h"
#include "ipc.h"
#include "signclient.h"

#define KEYS	"{\"jwks\":{\"keys\":[]},\"max_age\":60,\"active_kid\":\"k1\"}"

static int listen_fd;
static struct event_base *base;
static int pending, keys_seen, early_bytes;

struct result {
	int			done;
	enum sign_status	s;
	char			jws[256];
};

static void
answer(int fd, struct ipc_hdr *h, unsigned char *p, int err)
{
	char out[300];
	const char *claims = (const char *)p + strlen((const char *)p) + 1;

	if (err)
		ipc_write_frame(fd, IPC_SIGN_ERR, h->id, "no key", 6);
	else {
		snprintf(out, sizeof(out), "%s.%s", (const char *)p, claims);
		ipc_write_frame(fd, IPC_SIGN_REP, h->id, out, strlen(out));
	}
}

static void *
fake_signer(void *arg)
{
	struct ipc_hdr h[3];
	unsigned char *p[3];
	struct pollfd pfd;
	int fd, i;

	/* 1: requests made before the keys must wait for them. */
	fd = accept(listen_fd, NULL, NULL);
	pfd.fd = fd;
	pfd.events = POLLIN;
	early_bytes = poll(&pfd, 1, 200);
	ipc_write_frame(fd, IPC_KEYS, 0, KEYS, strlen(KEYS));
	for (i = 0; i < 3; i++)
		ipc_read_frame(fd, &h[i], &p[i]);
	/* Out of order, the middle one refused. */
	answer(fd, &h[2], p[2], 0);
	answer(fd, &h[1], p[1], 1);
	answer(fd, &h[0], p[0], 0);
	for (i = 0; i < 3; i++)
		free(p[i]);
	/* 2: two requests, one answer, then the signer dies. */
	for (i = 0; i < 2; i++)
		ipc_read_frame(fd, &h[i], &p[i]);
	answer(fd, &h[0], p[0], 0);
	free(p[0]);
	free(p[1]);
	close(fd);
	/* 3: the new signer gets the unanswered one again. */
	fd = accept(listen_fd, NULL, NULL);
	ipc_write_frame(fd, IPC_KEYS, 0, KEYS, strlen(KEYS));
	ipc_read_frame(fd, &h[0], &p[0]);
	answer(fd, &h[0], p[0], 0);
	free(p[0]);
	/* 4: a request that is cancelled, and one that is never answered. */
	for (i = 0; i < 2; i++)
		ipc_read_frame(fd, &h[i], &p[i]);
	answer(fd, &h[0], p[0], 0);
	free(p[0]);
	free(p[1]);
	sleep(7);
	close(fd);
	return NULL;
}

static void
signed_cb(enum sign_status s, const char *jws, size_t len, void *arg)
{
	struct result *r = arg;

	r->done++;
	r->s = s;
	if (jws != NULL)
		snprintf(r->jws, sizeof(r->jws), "%.*s", (int)len, jws);
	if (s != SIGN_CANCELLED && --pending == 0)
		event_base_loopbreak(base);
}

static void
keys_cb(const char *payload, size_t len, void *arg)
{
	keys_seen += len == strlen(KEYS) && strcmp(payload, KEYS) == 0;
}

static void
run(int n)
{
	struct timeval tv = { 15, 0 };

	pending = n;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

int
main(void)
{
	char dir[] = "/tmp/test-signclient-XXXXXX", path[64];
	struct sockaddr_un sun;
	struct signclient *sc;
	struct result r[8];
	struct sign_req *q;
	pthread_t t;

	memset(r, 0, sizeof(r));
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/s", dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(listen_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(listen_fd, 8) == -1)
		return 1;
	pthread_create(&t, NULL, fake_signer, NULL);
	base = event_base_new();
	sc = signclient_new(base, path, keys_cb, NULL, NULL);
	CHECK(!signclient_up(sc));

	/* 1 */
	CHECK(signclient_sign(sc, "at+jwt", "{\"n\":0}", 7, signed_cb, &r[0]) != NULL);
	CHECK(signclient_sign(sc, "at+jwt", "{\"n\":1}", 7, signed_cb, &r[1]) != NULL);
	CHECK(signclient_sign(sc, "JWT", "{\"n\":2}", 7, signed_cb, &r[2]) != NULL);
	CHECK(r[0].done == 0);		/* never from inside signclient_sign */
	run(3);
	CHECK(early_bytes == 0);	/* nothing was sent before the keys */
	CHECK(keys_seen == 1 && signclient_up(sc));
	CHECK(r[0].done == 1 && r[0].s == SIGN_OK && strcmp(r[0].jws, "at+jwt.{\"n\":0}") == 0);
	CHECK(r[1].done == 1 && r[1].s == SIGN_ERROR && strcmp(r[1].jws, "no key") == 0);
	CHECK(r[2].done == 1 && r[2].s == SIGN_OK && strcmp(r[2].jws, "JWT.{\"n\":2}") == 0);

	/* 2 and 3: the signer dies with one request unanswered; it is sent again. */
	CHECK(signclient_sign(sc, "at+jwt", "{\"n\":3}", 7, signed_cb, &r[3]) != NULL);
	CHECK(signclient_sign(sc, "at+jwt", "{\"n\":4}", 7, signed_cb, &r[4]) != NULL);
	run(2);
	CHECK(r[3].done == 1 && r[3].s == SIGN_OK && strcmp(r[3].jws, "at+jwt.{\"n\":3}") == 0);
	CHECK(r[4].done == 1 && r[4].s == SIGN_OK && strcmp(r[4].jws, "at+jwt.{\"n\":4}") == 0);
	CHECK(keys_seen == 2);

	/* 4: cancelled at once; the reply that still comes is ignored. */
	q = signclient_sign(sc, "at+jwt", "{\"n\":5}", 7, signed_cb, &r[5]);
	CHECK(signclient_sign(sc, "at+jwt", "{\"n\":6}", 7, signed_cb, &r[6]) != NULL);
	signclient_cancel(q);
	CHECK(r[5].done == 1 && r[5].s == SIGN_CANCELLED);
	/* The other is never answered: SIGN_UNAVAILABLE after SIGN_TIMEOUT_MS. */
	run(1);
	CHECK(r[5].done == 1);
	CHECK(r[6].done == 1 && r[6].s == SIGN_UNAVAILABLE);
	pthread_join(t, NULL);
	unlink(path);
	rmdir(dir);
	return CHECK_DONE();
}
