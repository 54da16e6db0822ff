/* form.c: application/x-www-form-urlencoded parsing and encoding, every occurrence kept. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "form.h"
#include "log.h"
#include "xalloc.h"

/*
 * The input is a length-delimited buffer that may hold any bytes, including NUL, and
 * may not be NUL-terminated, so the decoder below works on (s, len) rather than on
 * evhttp_uridecode's C strings; it also has to notice a decoded %00, which libevent
 * would silently turn into a truncated string.
 */

static int
form_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
form_decode(const char *s, size_t len, int plus_is_space)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out;
	size_t i, n = 0;
	int hi, lo;
	unsigned char c;

	if (len == SIZE_MAX)
		return NULL;
	out = xmalloc(len + 1);
	for (i = 0; i < len; i++) {
		c = p[i];
		if (c == '+' && plus_is_space)
			c = ' ';
		else if (c == '%' && len - i > 2 &&
		    (hi = form_hexval(p[i + 1])) != -1 &&
		    (lo = form_hexval(p[i + 2])) != -1) {
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		/* A malformed escape falls through and is kept as a literal '%'. */
		if (c == '\0') {
			free(out);
			return NULL;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return out;
}

char *
form_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t len = strlen(s), n = 0;
	char *out;
	unsigned char c;

	out = xreallocarray(NULL, len + 1, 3);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		c = *p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '*' || c == '-' || c == '.' ||
		    c == '_')
			out[n++] = (char)c;
		else if (c == ' ')
			out[n++] = '+';
		else {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 0x0f];
		}
	}
	out[n] = '\0';
	return out;
}

/* The piece after the '&' at amp, or end; never a pointer past end. */
static const char *
form_next(const char *amp, const char *end)
{
	return amp < end ? amp + 1 : end;
}

int
form_parse(struct form *f, const char *s, size_t len, const char **errstr)
{
	const char *piece, *end, *amp, *eq;
	size_t npieces = 0, plen;
	char *name, *value;

	f->params = NULL;
	f->nparams = 0;
	if (len == 0)
		return 0;
	end = s + len;

	/* Count first so that the array is allocated once and the bound holds early. */
	for (piece = s; piece < end; piece = form_next(amp, end)) {
		if ((amp = memchr(piece, '&', end - piece)) == NULL)
			amp = end;
		if (amp != piece && ++npieces > FORM_MAX_PARAMS) {
			if (errstr != NULL)
				*errstr = "too many parameters";
			return -1;
		}
	}
	if (npieces == 0)
		return 0;
	f->params = xreallocarray(NULL, npieces, sizeof(*f->params));

	for (piece = s; piece < end; piece = form_next(amp, end)) {
		if ((amp = memchr(piece, '&', end - piece)) == NULL)
			amp = end;
		if ((plen = amp - piece) == 0)
			continue;
		if ((eq = memchr(piece, '=', plen)) == NULL)
			eq = amp;
		if ((name = form_decode(piece, eq - piece, 1)) == NULL) {
			if (errstr != NULL)
				*errstr = "NUL byte in a parameter name";
			goto fail;
		}
		if (eq == amp)
			value = xstrdup("");
		else if ((value = form_decode(eq + 1, amp - eq - 1, 1)) == NULL) {
			free(name);
			if (errstr != NULL)
				*errstr = "NUL byte in a parameter value";
			goto fail;
		}
		f->params[f->nparams].name = name;
		f->params[f->nparams].value = value;
		f->nparams++;
	}
	return 0;

 fail:
	form_free(f);
	return -1;
}

void
form_free(struct form *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->nparams; i++) {
		free(f->params[i].name);
		free(f->params[i].value);
	}
	free(f->params);
	f->params = NULL;
	f->nparams = 0;
}

const char *
form_get(const struct form *f, const char *name, size_t *count)
{
	const char *first = NULL;
	size_t i, n = 0;

	for (i = 0; i < f->nparams; i++) {
		if (strcmp(f->params[i].name, name) != 0)
			continue;
		if (n++ == 0)
			first = f->params[i].value;
	}
	if (count != NULL)
		*count = n;
	return first;
}

/* Order parameters by name, then by position (they all live in one array). */
static int
form_cmp(const void *a, const void *b)
{
	const struct form_param *pa = *(const struct form_param * const *)a;
	const struct form_param *pb = *(const struct form_param * const *)b;
	int r;

	if ((r = strcmp(pa->name, pb->name)) != 0)
		return r;
	return pa < pb ? -1 : pa > pb;
}

const char *
form_first_repeat(const struct form *f)
{
	const struct form_param **sorted, *best = NULL;
	size_t i;

	if (f->nparams < 2)
		return NULL;
	sorted = xreallocarray(NULL, f->nparams, sizeof(*sorted));
	for (i = 0; i < f->nparams; i++)
		sorted[i] = &f->params[i];
	qsort(sorted, f->nparams, sizeof(*sorted), form_cmp);
	/* The first of each run of equal names is its earliest occurrence. */
	for (i = 0; i + 1 < f->nparams; i++) {
		if (strcmp(sorted[i]->name, sorted[i + 1]->name) != 0)
			continue;
		if (best == NULL || sorted[i] < best)
			best = sorted[i];
		while (i + 1 < f->nparams &&
		    strcmp(sorted[i]->name, sorted[i + 1]->name) == 0)
			i++;
	}
	free(sorted);
	return best != NULL ? best->name : NULL;
}

/*
 * How many bytes at p (n > 0 of them) make up one UTF-8 sequence; *valid says whether
 * it is a valid one. The ranges are those of RFC 3629 (no overlong forms, no
 * surrogates, nothing past U+10FFFF), which is also what jansson insists on. An invalid
 * sequence is its longest valid prefix, at least one byte: the WHATWG decoder turns
 * each such piece into one U+FFFD.
 */
static size_t
form_utf8_len(const unsigned char *p, size_t n, int *valid)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;

	*valid = 0;
	if (p[0] < 0x80) {
		*valid = 1;
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else
		return 1;
	for (i = 1; i < need; i++) {
		if (i >= n || p[i] < lo || p[i] > hi)
			return i;
		lo = 0x80;
		hi = 0xbf;
	}
	*valid = 1;
	return need;
}

/*
 * A copy of s where every invalid UTF-8 sequence becomes U+FFFD, as URLSearchParams
 * does when it decodes. The caller frees it.
 */
static char *
form_utf8_fix(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, n = 0, k;
	char *out;
	int valid;

	out = xreallocarray(NULL, len + 1, 3);
	while (i < len) {
		k = form_utf8_len(p + i, len - i, &valid);
		if (valid) {
			memcpy(out + n, p + i, k);
			n += k;
		} else {
			memcpy(out + n, "\xef\xbf\xbd", 3);
			n += 3;
		}
		i += k;
	}
	out[n] = '\0';
	return out;
}

json_t *
form_to_json(const struct form *f)
{
	json_t *obj, *old, *val, *arr;
	char *name, *value;
	size_t i;

	if ((obj = json_object()) == NULL)
		fatalx("%s: out of memory", __func__);
	for (i = 0; i < f->nparams; i++) {
		name = form_utf8_fix(f->params[i].name);
		value = form_utf8_fix(f->params[i].value);
		if ((val = json_string(value)) == NULL)
			fatalx("%s: json_string failed", __func__);
		old = json_object_get(obj, name);
		if (old == NULL) {
			if (json_object_set_new(obj, name, val) != 0)
				fatalx("%s: json_object_set_new failed", __func__);
		} else if (json_is_array(old)) {
			if (json_array_append_new(old, val) != 0)
				fatalx("%s: json_array_append_new failed", __func__);
		} else {
			if ((arr = json_array()) == NULL ||
			    json_array_append(arr, old) != 0 ||
			    json_array_append_new(arr, val) != 0 ||
			    json_object_set_new(obj, name, arr) != 0)
				fatalx("%s: out of memory", __func__);
		}
		free(name);
		free(value);
	}
	return obj;
}
