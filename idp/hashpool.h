/* hashpool.h: a small pool of threads that verifies Argon2id hashes off the event loop,
 * with a bounded queue, handing each result back to the loop. */
#ifndef IDP_HASHPOOL_H
#define IDP_HASHPOOL_H

#include <stddef.h>

struct event_base;
struct hashpool;
struct hash_job;

#define HASHPOOL_CANCELLED	(-2)	/* the job was cancelled */
#define HASHPOOL_NOMATCH	(-1)	/* the secret matches none of the hashes */

/* The result of a job, on the loop: the index of the first hash the secret matches,
 * HASHPOOL_NOMATCH, or HASHPOOL_CANCELLED. Called exactly once per job. */
typedef void	hashpool_cb(int result, void *arg);

/* Start nthreads threads (signals blocked in them) that take jobs from a queue of at
 * most maxqueue waiting jobs; results come back through a pipe watched on base. */
struct hashpool	*hashpool_new(struct event_base *base, int nthreads, int maxqueue);

/* Queue a check of secret (len bytes, copied and wiped after use) against nhashes
 * encoded Argon2id hashes (copied). Returns the job, valid until its callback has been
 * called, or NULL without calling cb when maxqueue jobs are already waiting. */
struct hash_job	*hashpool_verify(struct hashpool *, const char *secret, size_t len,
		    const char *const *hashes, size_t nhashes, hashpool_cb *cb, void *arg);
/* Cancel a job: its callback is called at once with HASHPOOL_CANCELLED and never
 * again. A job a thread is running finishes there and is then thrown away. */
void		 hashpool_cancel(struct hash_job *);

/* Jobs waiting (not yet running). */
int		 hashpool_waiting(struct hashpool *);

#endif
