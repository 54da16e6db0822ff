/* form.h: application/x-www-form-urlencoded parsing (also used for query strings),
 * keeping every occurrence so that repeated parameters can be detected. */
#ifndef IDP_FORM_H
#define IDP_FORM_H

#include <stddef.h>

#include <jansson.h>

struct form_param {
	char	*name;		/* decoded, NUL-terminated */
	char	*value;		/* decoded, NUL-terminated */
};

struct form {
	struct form_param	*params;	/* in order of appearance */
	size_t			 nparams;
};

/* Parse len bytes: '&'-separated, '+' is a space, %XX decoded; empty pieces are skipped;
 * a piece without '=' has an empty value. A malformed escape is kept literally (as browsers
 * do). Returns 0 and fills *f (release with form_free), or -1 with a static *errstr when a
 * name or value decodes to a NUL byte or there are more than FORM_MAX_PARAMS pieces. */
#define FORM_MAX_PARAMS	1000
int		 form_parse(struct form *f, const char *s, size_t len, const char **errstr);
void		 form_free(struct form *f);

/* The value of the first occurrence of name, or NULL; *count (if not NULL) gets the
 * number of occurrences. The string is owned by f. */
const char	*form_get(const struct form *f, const char *name, size_t *count);
/* Name of the first parameter that occurs more than once, or NULL. Owned by f. */
const char	*form_first_repeat(const struct form *f);
/* A new JSON object: name -> string, or an array of strings when repeated. */
json_t		*form_to_json(const struct form *f);

/* Percent-decode (plus_is_space: '+' -> ' '). Returns a new string or NULL if the
 * result would contain a NUL byte. */
char		*form_decode(const char *s, size_t len, int plus_is_space);
/* Encode for a query component the way URLSearchParams does (' ' -> '+', unreserved
 * *-._ and alphanumerics kept, everything else %XX). Returns a new string. */
char		*form_encode(const char *s);

#endif
