/* signpool.c: a few threads that compute mockidp's JWS signatures off the event loop. */

/*
 * Who owns what. The loop thread builds a job (keys chosen, claims built, header and
 * payload objects that share nothing with any other JSON value) and queues it; from
 * then on the job belongs to the pool until its done callback runs, back on the loop.
 * A pool thread only reads the job's inputs and the borrowed EVP_PKEYs (OpenSSL 3
 * signs with one key from several threads at once), writes the job's outputs and
 * frees its header and payload. It never touches libevent, the request or any other
 * state of the server.
 *
 * The hand-off back: a thread that appends a finished job to an empty done list writes
 * one byte to a pipe; the loop's read event on the pipe drains it, takes the whole
 * list and calls each job's callback. A job added to a list that is not empty needs no
 * byte: the loop has not taken that list yet (the byte written for its first job is
 * read before the list is taken, or a flush that is due takes it), so it comes along.
 *
 * Both ways are batched per loop iteration, because wake-ups and system calls, not the
 * locking, are the hand-off's price. signpool_submit only appends to a list of the
 * loop's and activates the flush event, which runs after the other callbacks of this
 * iteration: it moves the list to the queue under one lock, wakes as many idle threads
 * as there are new jobs, and takes the done list as well. While a flush is due, threads
 * finishing a job write no byte, since the flush will find it; so a busy loop gets its
 * results without a system call, and only an idle one is woken through the pipe.
 *
 * Bounds: at most SIGNPOOL_MAXJOBS jobs are in flight (queued, being signed, or done
 * and not yet delivered); the count is the loop's alone, so signpool_full() needs no
 * lock. At shutdown the threads finish the job in hand and stop; every job not yet
 * delivered gets its callback with cancelled set.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "jws.h"
#include "log.h"
#include "mockidp.h"
#include "xalloc.h"

struct signpool {
	struct event		*notify_ev;
	int			 notify[2];	/* pipe: threads write, the loop reads */
	struct event		*flush_ev;	/* moves pending to queue, once an iteration */
	pthread_t		*threads;
	int			 nthreads;
	/* The loop's. */
	size_t			 inflight;	/* submitted, not delivered */
	struct signjob		*pending, *pending_tail;	/* not queued yet */

	/* Under mtx. */
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;		/* work queued, or stopping */
	struct signjob		*queue, *queue_tail;
	struct signjob		*done, *done_tail;
	int			 idle;		/* threads waiting on cond */
	int			 flush_due;	/* flush_ev is active: it takes done */
	int			 stopping;
};

void
signpool_job_clear(struct signjob *sj)
{
	size_t i;

	for (i = 0; i < sj->ntok; i++) {
		json_decref(sj->tok[i].header);
		json_decref(sj->tok[i].payload);
		free(sj->tok[i].jws);
		sj->tok[i].header = sj->tok[i].payload = NULL;
		sj->tok[i].jws = NULL;
	}
	sj->ntok = 0;
}

/* Sign the job's tokens in order, stopping at the first failure, and free the inputs. */
static void
signpool_run(struct signjob *sj)
{
	size_t i;

	for (i = 0; i < sj->ntok; i++) {
		if (sj->errstr == NULL)
			sj->tok[i].jws = jws_sign(sj->tok[i].pkey, sj->tok[i].alg,
			    sj->tok[i].header, sj->tok[i].payload, &sj->errstr);
		json_decref(sj->tok[i].header);
		json_decref(sj->tok[i].payload);
		sj->tok[i].header = sj->tok[i].payload = NULL;
	}
}

static void *
signpool_thread(void *arg)
{
	struct signpool *sp = arg;
	struct signjob *sj;
	int wake;

	for (;;) {
		pthread_mutex_lock(&sp->mtx);
		while (sp->queue == NULL && !sp->stopping) {
			sp->idle++;
			pthread_cond_wait(&sp->cond, &sp->mtx);
			sp->idle--;
		}
		if (sp->stopping) {
			pthread_mutex_unlock(&sp->mtx);
			break;
		}
		sj = sp->queue;
		if ((sp->queue = sj->next) == NULL)
			sp->queue_tail = NULL;
		pthread_mutex_unlock(&sp->mtx);

		signpool_run(sj);

		sj->next = NULL;
		pthread_mutex_lock(&sp->mtx);
		wake = sp->done == NULL && !sp->flush_due;
		if (sp->done_tail != NULL)
			sp->done_tail->next = sj;
		else
			sp->done = sj;
		sp->done_tail = sj;
		pthread_mutex_unlock(&sp->mtx);
		/* A full pipe (EAGAIN) already holds a byte the loop will read. */
		if (wake)
			while (write(sp->notify[1], "", 1) == -1 && errno == EINTR)
				;
	}
	return NULL;
}

/* Call the callbacks of a list of jobs (on the loop); cancelled marks them so. */
static void
signpool_deliver(struct signpool *sp, struct signjob *list, int cancelled)
{
	struct signjob *sj, *next;

	for (sj = list; sj != NULL; sj = next) {
		next = sj->next;
		sj->next = NULL;
		sj->cancelled = cancelled;
		sp->inflight--;
		sj->done(sj, sj->arg);
	}
}

static void
signpool_notified(evutil_socket_t fd, short what, void *arg)
{
	struct signpool *sp = arg;
	struct signjob *list;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&sp->mtx);
	list = sp->done;
	sp->done = sp->done_tail = NULL;
	pthread_mutex_unlock(&sp->mtx);
	signpool_deliver(sp, list, 0);
}

/* Queue what was submitted during this loop iteration, wake threads for it, and
 * deliver what is done. */
static void
signpool_flush(evutil_socket_t fd, short what, void *arg)
{
	struct signpool *sp = arg;
	struct signjob *sj, *list;
	int n = 0;

	for (sj = sp->pending; sj != NULL && n < sp->nthreads; sj = sj->next)
		n++;
	pthread_mutex_lock(&sp->mtx);
	if (sp->pending != NULL) {
		if (sp->queue_tail != NULL)
			sp->queue_tail->next = sp->pending;
		else
			sp->queue = sp->pending;
		sp->queue_tail = sp->pending_tail;
	}
	if (n > 0 && n >= sp->idle)
		pthread_cond_broadcast(&sp->cond);
	else
		while (n-- > 0)
			pthread_cond_signal(&sp->cond);
	sp->flush_due = 0;
	list = sp->done;
	sp->done = sp->done_tail = NULL;
	pthread_mutex_unlock(&sp->mtx);
	sp->pending = sp->pending_tail = NULL;
	signpool_deliver(sp, list, 0);
}

struct signpool *
signpool_new(struct event_base *base)
{
	struct signpool *sp;
	sigset_t all, old;
	long ncpu;
	int i;

	sp = xcalloc(1, sizeof(*sp));
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	sp->nthreads = ncpu < 1 ? 1 : ncpu > SIGNPOOL_MAXTHREADS ?
	    SIGNPOOL_MAXTHREADS : (int)ncpu;
	if ((errno = pthread_mutex_init(&sp->mtx, NULL)) != 0)
		fatal("signpool: pthread_mutex_init");
	if ((errno = pthread_cond_init(&sp->cond, NULL)) != 0)
		fatal("signpool: pthread_cond_init");
	if (pipe2(sp->notify, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("signpool: pipe2");
	if ((sp->notify_ev = event_new(base, sp->notify[0], EV_READ | EV_PERSIST,
	    signpool_notified, sp)) == NULL || event_add(sp->notify_ev, NULL) == -1)
		fatalx("signpool: cannot watch the notify pipe");
	if ((sp->flush_ev = event_new(base, -1, 0, signpool_flush, sp)) == NULL)
		fatalx("signpool: event_new");

	/* Signals stay with the loop thread: the threads start with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	sp->threads = xreallocarray(NULL, (size_t)sp->nthreads, sizeof(*sp->threads));
	for (i = 0; i < sp->nthreads; i++)
		if ((errno = pthread_create(&sp->threads[i], NULL, signpool_thread,
		    sp)) != 0)
			fatal("signpool: pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return sp;
}

int
signpool_full(const struct signpool *sp)
{
	return sp->inflight >= SIGNPOOL_MAXJOBS;
}

void
signpool_submit(struct signpool *sp, struct signjob *sj)
{
	if (signpool_full(sp))
		fatalx("signpool: %d jobs in flight already", SIGNPOOL_MAXJOBS);
	sj->next = NULL;
	sj->errstr = NULL;
	sj->cancelled = 0;
	sp->inflight++;
	if (sp->pending_tail != NULL)
		sp->pending_tail->next = sj;
	else {
		sp->pending = sj;
		pthread_mutex_lock(&sp->mtx);
		sp->flush_due = 1;
		pthread_mutex_unlock(&sp->mtx);
		event_active(sp->flush_ev, EV_TIMEOUT, 0);
	}
	sp->pending_tail = sj;
}

void
signpool_free(struct signpool *sp)
{
	struct signjob *queued, *done;
	int i;

	if (sp == NULL)
		return;
	pthread_mutex_lock(&sp->mtx);
	sp->stopping = 1;
	pthread_cond_broadcast(&sp->cond);
	pthread_mutex_unlock(&sp->mtx);
	for (i = 0; i < sp->nthreads; i++)
		if ((errno = pthread_join(sp->threads[i], NULL)) != 0)
			fatal("signpool: pthread_join");
	/* The threads are gone: the lists are the loop's now. */
	queued = sp->queue;
	done = sp->done;
	sp->queue = sp->queue_tail = sp->done = sp->done_tail = NULL;
	signpool_deliver(sp, done, 1);
	signpool_deliver(sp, queued, 1);
	signpool_deliver(sp, sp->pending, 1);
	sp->pending = sp->pending_tail = NULL;
	if (sp->inflight != 0)
		fatalx("signpool: %zu jobs lost", sp->inflight);
	event_free(sp->notify_ev);
	event_free(sp->flush_ev);
	close(sp->notify[0]);
	close(sp->notify[1]);
	pthread_cond_destroy(&sp->cond);
	pthread_mutex_destroy(&sp->mtx);
	free(sp->threads);
	free(sp);
}
