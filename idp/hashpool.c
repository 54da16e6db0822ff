/* hashpool.c: Argon2id verifications on a few threads, so the event loop never runs one.
 *
 * Jobs wait in a queue (bounded: a full queue is the caller's 503); threads take them,
 * run crypto_pwhash_str_verify against each hash, and put them on a done list. The first
 * job on an empty done list writes one byte to a pipe; the loop's read event on it takes
 * the whole list under the mutex and calls the callbacks outside it. Only the queue and
 * the lists are shared; a job's fields are owned by whichever side holds it. */
#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "hashpool.h"
#include "log.h"
#include "secret.h"
#include "xalloc.h"

enum hash_job_state { HJ_QUEUED, HJ_RUNNING, HJ_DONE };

struct hash_job {
	TAILQ_ENTRY(hash_job)	 entry;
	struct hashpool		*pool;
	enum hash_job_state	 state;		/* under pool->mtx */
	int			 cancelled;	/* loop side only */
	char			*secret;
	size_t			 len;
	char			**hashes;
	size_t			 nhashes;
	int			 result;
	hashpool_cb		*cb;
	void			*arg;
};
TAILQ_HEAD(hash_jobq, hash_job);

struct hashpool {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	struct hash_jobq todo;
	struct hash_jobq done;
	int		 nwaiting;
	int		 maxqueue;
	int		 notify[2];	/* pipe: threads write, the loop reads */
	struct event	*notify_ev;
};

static void
hash_job_free(struct hash_job *j)
{
	size_t i;

	sodium_memzero(j->secret, j->len);
	free(j->secret);
	for (i = 0; i < j->nhashes; i++)
		free(j->hashes[i]);
	free(j->hashes);
	free(j);
}

static void *
hashpool_thread(void *arg)
{
	struct hashpool *hp = arg;
	struct hash_job *j;
	size_t i;
	int wake;

	for (;;) {
		pthread_mutex_lock(&hp->mtx);
		while ((j = TAILQ_FIRST(&hp->todo)) == NULL)
			pthread_cond_wait(&hp->cond, &hp->mtx);
		TAILQ_REMOVE(&hp->todo, j, entry);
		hp->nwaiting--;
		j->state = HJ_RUNNING;
		pthread_mutex_unlock(&hp->mtx);

		j->result = HASHPOOL_NOMATCH;
		for (i = 0; i < j->nhashes; i++) {
			if (secret_verify(j->hashes[i], j->secret, j->len) == 0) {
				j->result = (int)i;
				break;
			}
		}

		pthread_mutex_lock(&hp->mtx);
		wake = TAILQ_EMPTY(&hp->done);
		j->state = HJ_DONE;
		TAILQ_INSERT_TAIL(&hp->done, j, entry);
		pthread_mutex_unlock(&hp->mtx);
		while (wake && write(hp->notify[1], "", 1) == -1 && errno == EINTR)
			;
	}
	return NULL;
}

static void
hashpool_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hashpool *hp = arg;
	struct hash_jobq done;
	struct hash_job *j;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	TAILQ_INIT(&done);
	pthread_mutex_lock(&hp->mtx);
	TAILQ_CONCAT(&done, &hp->done, entry);
	pthread_mutex_unlock(&hp->mtx);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		if (!j->cancelled)
			j->cb(j->result, j->arg);
		hash_job_free(j);
	}
}

struct hashpool *
hashpool_new(struct event_base *base, int nthreads, int maxqueue)
{
	struct hashpool *hp = xcalloc(1, sizeof(*hp));
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int i;

	pthread_mutex_init(&hp->mtx, NULL);
	pthread_cond_init(&hp->cond, NULL);
	TAILQ_INIT(&hp->todo);
	TAILQ_INIT(&hp->done);
	hp->maxqueue = maxqueue;
	if (pipe2(hp->notify, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("hashpool: pipe");
	hp->notify_ev = event_new(base, hp->notify[0], EV_READ | EV_PERSIST,
	    hashpool_notify_cb, hp);
	if (hp->notify_ev == NULL || event_add(hp->notify_ev, NULL) == -1)
		fatalx("hashpool: cannot watch the notify pipe");

	/* Threads take no signals: the loop's signal events must see them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < nthreads; i++)
		if ((errno = pthread_create(&t, &attr, hashpool_thread, hp)) != 0)
			fatal("hashpool: pthread_create");
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return hp;
}

struct hash_job *
hashpool_verify(struct hashpool *hp, const char *secret, size_t len,
    const char *const *hashes, size_t nhashes, hashpool_cb *cb, void *arg)
{
	struct hash_job *j;
	size_t i;

	pthread_mutex_lock(&hp->mtx);
	if (hp->nwaiting >= hp->maxqueue) {
		pthread_mutex_unlock(&hp->mtx);
		return NULL;
	}
	pthread_mutex_unlock(&hp->mtx);

	j = xcalloc(1, sizeof(*j));
	j->pool = hp;
	j->secret = xmalloc(len + 1);
	memcpy(j->secret, secret, len);
	j->secret[len] = '\0';
	j->len = len;
	j->hashes = xreallocarray(NULL, nhashes > 0 ? nhashes : 1, sizeof(*j->hashes));
	for (i = 0; i < nhashes; i++)
		j->hashes[i] = xstrdup(hashes[i]);
	j->nhashes = nhashes;
	j->cb = cb;
	j->arg = arg;

	pthread_mutex_lock(&hp->mtx);
	j->state = HJ_QUEUED;
	TAILQ_INSERT_TAIL(&hp->todo, j, entry);
	hp->nwaiting++;
	pthread_cond_signal(&hp->cond);
	pthread_mutex_unlock(&hp->mtx);
	return j;
}

void
hashpool_cancel(struct hash_job *j)
{
	struct hashpool *hp = j->pool;
	int queued;

	pthread_mutex_lock(&hp->mtx);
	if ((queued = j->state == HJ_QUEUED)) {
		TAILQ_REMOVE(&hp->todo, j, entry);
		hp->nwaiting--;
	}
	pthread_mutex_unlock(&hp->mtx);
	j->cancelled = 1;
	j->cb(HASHPOOL_CANCELLED, j->arg);
	if (queued)
		hash_job_free(j);
	/* Otherwise a thread holds it or it is on the done list: freed there. */
}

int
hashpool_waiting(struct hashpool *hp)
{
	int n;

	pthread_mutex_lock(&hp->mtx);
	n = hp->nwaiting;
	pthread_mutex_unlock(&hp->mtx);
	return n;
}
