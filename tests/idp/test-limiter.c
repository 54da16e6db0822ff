/* test-limiter.c: the failure limiter of idp's workers: delays, blocking, windows,
 * forgetting, a full table, and one table shared by forked processes. */
#include <sys/mman.h>
#include <sys/wait.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "../unit/check.h"
#include "clients.h"

static const unsigned char key[LIMITER_KEYBYTES] = "0123456789abcdef";

static void
test_schedule(void)
{
	struct limiter *l = limiter_new(NULL, 64 * 1024, key);
	uint64_t t = 1000000, delay, retry;
	int i;

	CHECK(limiter_check(l, "a", t, &delay, &retry) == LIMIT_OK && delay == 0);
	for (i = 0; i < LIMITER_DELAY_AFTER - 1; i++)
		limiter_failure(l, "a", t);
	CHECK(limiter_check(l, "a", t, &delay, &retry) == LIMIT_OK);
	limiter_failure(l, "a", t);			/* 5 failures */
	CHECK(limiter_check(l, "a", t, &delay, &retry) == LIMIT_DELAY &&
	    delay == LIMITER_DELAY_BASE_MS);
	limiter_failure(l, "a", t);			/* 6 */
	CHECK(limiter_check(l, "a", t, &delay, &retry) == LIMIT_DELAY && delay == 200);
	limiter_failure(l, "a", t);			/* 7 */
	CHECK(limiter_check(l, "a", t, &delay, &retry) == LIMIT_DELAY && delay == 400);
	for (i = 7; i < 12; i++)
		limiter_failure(l, "a", t);
	CHECK(limiter_check(l, "a", t, &delay, &retry) == LIMIT_DELAY &&
	    delay == LIMITER_DELAY_MAX_MS);
	for (i = 12; i < LIMITER_BLOCK_AFTER; i++)
		limiter_failure(l, "a", t);
	CHECK(limiter_check(l, "a", t + 10000, &delay, &retry) == LIMIT_BLOCK &&
	    retry == 50);
	CHECK(limiter_check(l, "a", t + 59001, &delay, &retry) == LIMIT_BLOCK &&
	    retry == 1);
	/* Other keys are not affected. */
	CHECK(limiter_check(l, "b", t, &delay, &retry) == LIMIT_OK);
	CHECK(limiter_count(l, t) == 1);
	/* The window ends: all is forgiven, and a new failure opens a new window. */
	CHECK(limiter_check(l, "a", t + LIMITER_WINDOW_MS, &delay, &retry) == LIMIT_OK);
	limiter_failure(l, "a", t + LIMITER_WINDOW_MS);
	CHECK(limiter_check(l, "a", t + LIMITER_WINDOW_MS, &delay, &retry) == LIMIT_OK);
	CHECK(limiter_count(l, t + LIMITER_WINDOW_MS) == 1);
	/* Forgetting (a client that proved its secret). */
	for (i = 0; i < 30; i++)
		limiter_failure(l, "c", t);
	CHECK(limiter_check(l, "c", t, &delay, &retry) == LIMIT_BLOCK);
	limiter_forget(l, "c");
	CHECK(limiter_check(l, "c", t, &delay, &retry) == LIMIT_OK);
	limiter_free(l);
}

/* A full table makes room by dropping the entries whose windows began first. */
static void
test_full(void)
{
	struct limiter *l = limiter_new(NULL, 64 * sizeof(uint64_t) * 3, key);
	uint64_t t = 5000, delay, retry;
	size_t cap = limiter_capacity(l), i, kept = 0;
	char k[32];
	int j;

	CHECK(cap >= 8 && cap <= 64);
	for (i = 0; i < cap * 4; i++) {
		snprintf(k, sizeof(k), "key-%zu", i);
		for (j = 0; j < LIMITER_BLOCK_AFTER; j++)
			limiter_failure(l, k, t + i);
	}
	CHECK(limiter_count(l, t + cap * 4) <= cap);
	/* The newest key is there, and most of the oldest are gone. */
	snprintf(k, sizeof(k), "key-%zu", cap * 4 - 1);
	CHECK(limiter_check(l, k, t + cap * 4, &delay, &retry) == LIMIT_BLOCK);
	for (i = 0; i < cap; i++) {
		snprintf(k, sizeof(k), "key-%zu", i);
		kept += limiter_check(l, k, t + cap * 4, &delay, &retry) != LIMIT_OK;
	}
	CHECK(kept < cap / 2);
	limiter_free(l);
}

/* Failures counted by another process (a worker) count here too. */
static void
test_shared(void)
{
	size_t len = 256 * 1024;
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	struct limiter *l;
	uint64_t delay, retry;
	pid_t pid;
	int status, i;

	CHECK(mem != MAP_FAILED);
	if (mem == MAP_FAILED)
		return;
	l = limiter_new(mem, len, key);
	if ((pid = fork()) == 0) {
		struct limiter *cl = limiter_new(mem, len, key);

		for (i = 0; i < 10; i++)
			limiter_failure(cl, "10.0.0.1", 1000);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	for (i = 0; i < 10; i++)
		limiter_failure(l, "10.0.0.1", 1000);
	CHECK(limiter_check(l, "10.0.0.1", 1000, &delay, &retry) == LIMIT_BLOCK);
	limiter_free(l);
	munmap(mem, len);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_schedule();
	test_full();
	test_shared();
	return CHECK_DONE();
}
