/* config.c: "key = value" files and environment overrides, read through a key table. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "xalloc.h"

/*
 * Three layers, each overriding the one before: the table's defaults, the file, the
 * environment. The file is strict on purpose: an unknown or repeated key is far more
 * likely a typo or a merge accident than an intent, so it stops the program at start
 * rather than leaving a setting silently at its default. A table entry whose min and
 * max are both 0 puts no bound on an INT or DURATION (other than durations being
 * non-negative); [0, 0] would be a useless range anyway.
 */

static void
config_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
config_duration(const char *s, long *out, const char **errstr)
{
	long v = 0, mult = 1;
	const char *p;

	if (*s == '\0') {
		*errstr = "empty duration";
		return -1;
	}
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v > (LONG_MAX - (*p - '0')) / 10) {
			*errstr = "duration too large";
			return -1;
		}
		v = v * 10 + (*p - '0');
	}
	if (p == s) {
		*errstr = "not a duration (want a number of seconds or 30s, 15m, 2h, 7d)";
		return -1;
	}
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 60 * 60;
		break;
	case 'd':
		mult = 24 * 60 * 60;
		break;
	default:
		*errstr = "not a duration (want a number of seconds or 30s, 15m, 2h, 7d)";
		return -1;
	}
	if (*p != '\0' && p[1] != '\0') {
		*errstr = "not a duration (want a number of seconds or 30s, 15m, 2h, 7d)";
		return -1;
	}
	if (v > LONG_MAX / mult) {
		*errstr = "duration too large";
		return -1;
	}
	*out = v * mult;
	return 0;
}

int
config_parse_duration(const char *s, long *out)
{
	const char *errstr;

	return config_duration(s, out, &errstr);
}

static int
config_int(const char *s, long *out, const char **errstr)
{
	char *end;
	long v;

	if (*s == '\0' || isspace((unsigned char)*s)) {
		*errstr = "not a number";
		return -1;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0') {
		*errstr = "not a number";
		return -1;
	}
	if (errno == ERANGE) {
		*errstr = "number out of range";
		return -1;
	}
	*out = v;
	return 0;
}

static int
config_bool(const char *s, int *out, const char **errstr)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	*errstr = "not a boolean (want yes/no, true/false, on/off or 1/0)";
	return -1;
}

/*
 * Store the text value s into the member of dst that k describes. Returns 0, or -1
 * with a reason in *errstr (or in why, for a range that needs the bounds) and dst
 * unchanged.
 */
static int
config_set(const struct config_key *k, void *dst, const char *s, char *why,
    size_t whylen)
{
	char *member = (char *)dst + k->offset, **sp;
	const char *errstr = NULL;
	long v = 0;
	int b;

	switch (k->type) {
	case CONFIG_STRING:
		sp = (char **)(void *)member;
		free(*sp);
		*sp = xstrdup(s);
		return 0;
	case CONFIG_BOOL:
		if (config_bool(s, &b, &errstr) == -1)
			break;
		*(int *)(void *)member = b;
		return 0;
	case CONFIG_INT:
	case CONFIG_DURATION:
		if (k->type == CONFIG_INT ? config_int(s, &v, &errstr) == -1 :
		    config_duration(s, &v, &errstr) == -1)
			break;
		if ((k->min != 0 || k->max != 0) && (v < k->min || v > k->max)) {
			snprintf(why, whylen, "out of range (%ld..%ld)", k->min,
			    k->max);
			return -1;
		}
		*(long *)(void *)member = v;
		return 0;
	default:
		errstr = "unknown key type";
		break;
	}
	snprintf(why, whylen, "%s", errstr);
	return -1;
}

/* Set every member to its default; strings are assigned, never freed, here. */
static int
config_defaults(const struct config_key *table, size_t nkeys, void *dst, char *err,
    size_t errlen)
{
	const struct config_key *k;
	char why[128];
	size_t i;

	for (i = 0; i < nkeys; i++) {
		k = &table[i];
		switch (k->type) {
		case CONFIG_STRING:
			*(char **)(void *)((char *)dst + k->offset) = NULL;
			break;
		case CONFIG_BOOL:
			*(int *)(void *)((char *)dst + k->offset) = 0;
			break;
		default:
			*(long *)(void *)((char *)dst + k->offset) = 0;
			break;
		}
	}
	for (i = 0; i < nkeys; i++) {
		k = &table[i];
		if (k->def == NULL)
			continue;
		if (config_set(k, dst, k->def, why, sizeof(why)) == -1) {
			config_err(err, errlen, "built-in default for '%s': %s",
			    k->name, why);
			return -1;
		}
	}
	return 0;
}

static const struct config_key *
config_find(const struct config_key *table, size_t nkeys, const char *name,
    size_t *idx)
{
	size_t i;

	for (i = 0; i < nkeys; i++) {
		if (strcmp(table[i].name, name) == 0) {
			*idx = i;
			return &table[i];
		}
	}
	return NULL;
}

/* Trim spaces and tabs (and a CR or LF) from both ends of s, in place. */
static char *
config_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static int
config_file(const struct config_key *table, size_t nkeys, void *dst,
    const char *path, char *err, size_t errlen)
{
	const struct config_key *k;
	FILE *fp;
	char *line = NULL, *key, *value, *eq, why[128];
	size_t cap = 0, lineno = 0, idx, vlen, *seen = NULL;
	ssize_t n;
	int rv = -1;

	if ((fp = fopen(path, "r")) == NULL) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	seen = xcalloc(nkeys, sizeof(*seen));
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (strlen(line) != (size_t)n) {
			config_err(err, errlen, "%s:%zu: NUL byte in line", path,
			    lineno);
			goto done;
		}
		key = config_trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			config_err(err, errlen, "%s:%zu: expected 'key = value'",
			    path, lineno);
			goto done;
		}
		*eq = '\0';
		key = config_trim(key);
		value = config_trim(eq + 1);
		if (*key == '\0') {
			config_err(err, errlen, "%s:%zu: missing key before '='",
			    path, lineno);
			goto done;
		}
		if ((k = config_find(table, nkeys, key, &idx)) == NULL) {
			config_err(err, errlen, "%s:%zu: unknown key '%s'", path,
			    lineno, key);
			goto done;
		}
		if (seen[idx] != 0) {
			config_err(err, errlen,
			    "%s:%zu: repeated key '%s' (first set on line %zu)",
			    path, lineno, key, seen[idx]);
			goto done;
		}
		seen[idx] = lineno;
		if (*value == '"') {
			vlen = strlen(value);
			if (vlen < 2 || value[vlen - 1] != '"') {
				config_err(err, errlen,
				    "%s:%zu: unterminated quote in value for '%s'",
				    path, lineno, key);
				goto done;
			}
			value[vlen - 1] = '\0';
			value++;
		}
		if (config_set(k, dst, value, why, sizeof(why)) == -1) {
			config_err(err, errlen, "%s:%zu: bad value for '%s': %s",
			    path, lineno, key, why);
			goto done;
		}
	}
	if (ferror(fp)) {
		config_err(err, errlen, "%s: read error", path);
		goto done;
	}
	rv = 0;

 done:
	free(seen);
	free(line);
	fclose(fp);
	return rv;
}

static int
config_env(const struct config_key *table, size_t nkeys, void *dst,
    const char *prefix, char *err, size_t errlen)
{
	const struct config_key *k;
	const char *value;
	char *var, *p, why[128];
	size_t i;
	int rv = 0;

	for (i = 0; i < nkeys && rv == 0; i++) {
		k = &table[i];
		var = xasprintf("%s%s", prefix != NULL ? prefix : "", k->name);
		for (p = var + (prefix != NULL ? strlen(prefix) : 0); *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		if ((value = getenv(var)) != NULL &&
		    config_set(k, dst, value, why, sizeof(why)) == -1) {
			config_err(err, errlen,
			    "environment %s: bad value for '%s': %s", var,
			    k->name, why);
			rv = -1;
		}
		free(var);
	}
	return rv;
}

int
config_load(const struct config_key *table, size_t nkeys, void *dst,
    const char *path, const char *env_prefix, char *err, size_t errlen)
{
	config_err(err, errlen, "no error");
	if (config_defaults(table, nkeys, dst, err, errlen) == -1)
		goto fail;
	if (path != NULL && config_file(table, nkeys, dst, path, err, errlen) == -1)
		goto fail;
	if (config_env(table, nkeys, dst, env_prefix, err, errlen) == -1)
		goto fail;
	return 0;

 fail:
	/* Leave nothing to free: the caller may or may not call config_free. */
	config_free(table, nkeys, dst);
	return -1;
}

void
config_free(const struct config_key *table, size_t nkeys, void *dst)
{
	char **sp;
	size_t i;

	for (i = 0; i < nkeys; i++) {
		if (table[i].type != CONFIG_STRING)
			continue;
		sp = (char **)(void *)((char *)dst + table[i].offset);
		free(*sp);
		*sp = NULL;
	}
}
