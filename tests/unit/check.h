/* check.h: the tiny assertion helper every unit test uses; it survives NDEBUG. */
#ifndef IDP_CHECK_H
#define IDP_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond) do {						\
	check_count++;							\
	if (!(cond)) {							\
		check_failures++;					\
		fprintf(stderr, "%s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
	}								\
} while (0)

/* End main() with this: prints a summary and returns the exit status. */
#define CHECK_DONE() (printf("%d checks, %d failed\n", check_count,	\
	check_failures), check_failures == 0 ? 0 : 1)

#endif
