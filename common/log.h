/* log.h: OpenBSD-style logging to stderr, each line prefixed with the process role. */
#ifndef IDP_LOG_H
#define IDP_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* Set the role printed before every line ("mockidp", "worker 2", ...) and the
 * most verbose level printed. May be called again (after fork, say). */
void	log_init(const char *role, enum log_level level);
/* Parse "error", "warn", "info" or "debug"; 0 on success, -1 otherwise. */
int	log_level_parse(const char *name, enum log_level *out);
enum log_level log_get_level(void);
/* Route libevent's own warnings into this log. */
void	log_libevent(void);

/* log_warn appends strerror(errno); the x variants do not. */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Log at error level and exit(1). */
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
