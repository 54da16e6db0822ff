/* test-log.c: unit tests for logging: levels, the role prefix, and that control
 * characters from peers never reach the log as such. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

int
main(void)
{
	enum log_level lvl;
	char buf[512];
	FILE *f;
	size_t n;
	int saved;

	CHECK(log_level_parse("debug", &lvl) == 0 && lvl == LOG_LVL_DEBUG);
	CHECK(log_level_parse("warn", &lvl) == 0 && lvl == LOG_LVL_WARN);
	CHECK(log_level_parse("verbose", &lvl) == -1);

	/* Capture stderr in a temporary file. */
	f = tmpfile();
	saved = dup(2);
	fflush(stderr);
	dup2(fileno(f), 2);
	log_init("worker 3", LOG_LVL_INFO);
	log_info("GET %s 200", "/a\r\nInjected: yes");
	log_debug("not shown at info");
	log_warnx("careful");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	CHECK(strstr(buf, "worker 3: info: GET /a??Injected: yes 200\n") != NULL);
	CHECK(strstr(buf, "not shown") == NULL);
	CHECK(strstr(buf, "worker 3: warn: careful\n") != NULL);
	CHECK(log_get_level() == LOG_LVL_INFO);
	return CHECK_DONE();
}
