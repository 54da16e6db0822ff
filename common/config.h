/* config.h: a table-driven "key = value" configuration reader with environment overrides. */
#ifndef IDP_CONFIG_H
#define IDP_CONFIG_H

#include <stddef.h>

enum config_type {
	CONFIG_STRING,		/* char * (new string, caller frees the struct's strings) */
	CONFIG_INT,		/* long, within [min, max] */
	CONFIG_DURATION,	/* long seconds; accepts 30, 30s, 15m, 12h, 7d */
	CONFIG_BOOL,		/* int 0/1; accepts yes/no, true/false, on/off, 1/0 */
};

struct config_key {
	const char		*name;		/* lower case, [a-z0-9_] */
	enum config_type	 type;
	size_t			 offset;	/* offsetof() in the destination struct */
	const char		*def;		/* default as text, NULL = none (string NULL / 0) */
	long			 min, max;	/* for INT and DURATION */
};

/* Fill dst from defaults, then the file at path (NULL = none), then environment
 * variables <env_prefix><KEY in upper case> (env_prefix NULL = none).
 * File syntax: one "key = value" per line, '#' starts a comment line, blank lines
 * ignored, values may be wrapped in double quotes. Unknown keys, repeated keys and bad
 * values are errors. On error returns -1 and writes a message naming the file and
 * line (or the variable) into err. */
int	config_load(const struct config_key *table, size_t nkeys, void *dst,
	    const char *path, const char *env_prefix, char *err, size_t errlen);
/* Free the CONFIG_STRING members of dst. */
void	config_free(const struct config_key *table, size_t nkeys, void *dst);
/* Parse a duration ("90", "90s", "15m", "2h", "7d") into seconds; 0 or -1. */
int	config_parse_duration(const char *s, long *out);

#endif
