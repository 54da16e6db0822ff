/* fuzz-form.c: libFuzzer target for the form parser, checking its invariants with abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "form.h"
#include "xalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(cond) do {						\
	if (!(cond))							\
		abort();						\
} while (0)

static int
is_unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '*' || c == '-' || c == '.' || c == '_';
}

/*
 * form_encode's output is the URLSearchParams one: unreserved bytes as they are, '+'
 * for a space, and %XX in upper case for every other byte and only for those.
 */
static void
check_encoded(const char *e)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *p, *hi, *lo;
	int c;

	for (p = e; *p != '\0'; p++) {
		if (*p == '%') {
			FUZZ_CHECK(p[1] != '\0' && (hi = strchr(hex, p[1])) != NULL);
			FUZZ_CHECK(p[2] != '\0' && (lo = strchr(hex, p[2])) != NULL);
			c = (int)((hi - hex) << 4 | (lo - hex));
			FUZZ_CHECK(c != 0 && c != ' ' && !is_unreserved(c));
			p += 2;
			continue;
		}
		FUZZ_CHECK(is_unreserved((unsigned char)*p) || *p == '+');
	}
}

/* Encoding then decoding gives s back. Returns the encoded form (caller frees). */
static char *
check_roundtrip(const char *s)
{
	char *e, *d;

	e = form_encode(s);
	check_encoded(e);
	d = form_decode(e, strlen(e), 1);
	FUZZ_CHECK(d != NULL && strcmp(d, s) == 0);
	free(d);
	return e;
}

/* Decoding the raw bytes on their own: never longer, NULL only for a NUL byte. */
static void
check_decode(const uint8_t *data, size_t size, int plus)
{
	char *d;
	size_t n;

	d = form_decode((const char *)data, size, plus);
	if (d == NULL) {
		/* Either a raw NUL or a %00 somewhere. */
		FUZZ_CHECK(memchr(data, '\0', size) != NULL ||
		    memchr(data, '%', size) != NULL);
		return;
	}
	n = strlen(d);
	FUZZ_CHECK(n <= size);
	if (memchr(data, '%', size) == NULL) {
		FUZZ_CHECK(n == size);
		if (!plus || memchr(data, '+', size) == NULL)
			FUZZ_CHECK(memcmp(d, data, size) == 0);
	}
	free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f, g;
	const char *errstr = NULL, *rep, *v;
	json_t *j, *back;
	json_error_t jerr;
	char *s, *e, *ser = NULL;
	size_t i, count, serlen = 0, elen;

	check_decode(data, size, 1);
	check_decode(data, size, 0);

	if (form_parse(&f, (const char *)data, size, &errstr) == -1) {
		FUZZ_CHECK(errstr != NULL);
		FUZZ_CHECK(f.params == NULL && f.nparams == 0);
		form_free(&f);
		return 0;
	}
	FUZZ_CHECK(f.nparams <= FORM_MAX_PARAMS);
	FUZZ_CHECK(f.nparams <= size);

	/* Decoded text is never longer than its source, and encodes to at most 3x. */
	ser = xreallocarray(NULL, size + 1, 3);
	for (i = 0; i < f.nparams; i++) {
		FUZZ_CHECK(f.params[i].name != NULL && f.params[i].value != NULL);
		v = form_get(&f, f.params[i].name, &count);
		FUZZ_CHECK(v != NULL && count >= 1);
		if (i < 16)	/* quadratic: only the first few */
			FUZZ_CHECK(count > 1 || v == f.params[i].value);

		/* Serialise the way URLSearchParams does, to parse again below. */
		if (i > 0)
			ser[serlen++] = '&';
		e = check_roundtrip(f.params[i].name);
		elen = strlen(e);
		memcpy(ser + serlen, e, elen);
		serlen += elen;
		ser[serlen++] = '=';
		free(e);
		e = check_roundtrip(f.params[i].value);
		elen = strlen(e);
		memcpy(ser + serlen, e, elen);
		serlen += elen;
		free(e);
		FUZZ_CHECK(serlen <= 3 * size + 3);
	}

	/* Serialised and parsed again, the form is the same. */
	FUZZ_CHECK(form_parse(&g, ser, serlen, &errstr) == 0);
	FUZZ_CHECK(g.nparams == f.nparams);
	for (i = 0; i < f.nparams; i++) {
		FUZZ_CHECK(strcmp(f.params[i].name, g.params[i].name) == 0);
		FUZZ_CHECK(strcmp(f.params[i].value, g.params[i].value) == 0);
	}
	form_free(&g);
	free(ser);

	/*
	 * The first repeat is the earliest name seen twice: every name before it is
	 * unique (checked for the first few only, it is quadratic).
	 */
	rep = form_first_repeat(&f);
	for (i = 0; i < f.nparams && i < 16; i++) {
		if (rep != NULL && f.params[i].name == rep)
			break;
		FUZZ_CHECK(rep == NULL || strcmp(f.params[i].name, rep) != 0);
		form_get(&f, f.params[i].name, &count);
		FUZZ_CHECK(count == 1);
	}
	if (rep != NULL)
		FUZZ_CHECK(form_get(&f, rep, &count) != NULL && count >= 2);

	/*
	 * At most one JSON member per name (names that differ only in invalid UTF-8
	 * may share one), and fewer when a name repeats.
	 */
	j = form_to_json(&f);
	FUZZ_CHECK(json_is_object(j));
	FUZZ_CHECK(json_object_size(j) <= f.nparams);
	if (rep != NULL)
		FUZZ_CHECK(json_object_size(j) < f.nparams);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	FUZZ_CHECK(s != NULL);
	back = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	FUZZ_CHECK(back != NULL && json_equal(j, back));
	json_decref(back);
	free(s);
	json_decref(j);

	form_free(&f);
	FUZZ_CHECK(f.params == NULL && f.nparams == 0);
	return 0;
}
