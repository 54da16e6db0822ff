/* log.c: the one place that writes diagnostics; lines go to stderr with a role prefix.
 * The only state is the role and the level, written at start and after fork. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

static char		log_role[32] = "-";
static enum log_level	log_level = LOG_LVL_INFO;

void
log_init(const char *role, enum log_level level)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void __attribute__((format(printf, 2, 0)))
log_vwrite(enum log_level lvl, const char *fmt, va_list ap, const char *suffix)
{
	static const char *tag[] = { "error", "warn", "info", "debug" };
	char msg[1024];
	size_t i;

	if (lvl > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A log line is one line: control characters from peers never reach the terminal. */
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	if (suffix != NULL)
		fprintf(stderr, "%s: %s: %s: %s\n", log_role, tag[lvl], msg, suffix);
	else
		fprintf(stderr, "%s: %s: %s\n", log_role, tag[lvl], msg);
}

#define LOG_FN(name, lvl)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_vwrite(lvl, fmt, ap, NULL);				\
	va_end(ap);						\
}

LOG_FN(log_warnx, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_error, LOG_LVL_ERROR)

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_WARN, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

static void
log_libevent_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

void
log_libevent(void)
{
	event_set_log_callback(log_libevent_cb);
}
