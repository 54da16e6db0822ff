/* test-form.c: unit tests for the x-www-form-urlencoded parser and encoder (common/form.c). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "form.h"
#include "xalloc.h"

/* Parse a C string; 0 or -1 as form_parse. */
static int
parse(struct form *f, const char *s)
{
	const char *errstr = NULL;

	return form_parse(f, s, strlen(s), &errstr);
}

/* 1 if form_decode(s, plus) gives want (NULL: expect a rejection). */
static int
decodes_to(const char *s, int plus, const char *want)
{
	char *got = form_decode(s, strlen(s), plus);
	int ok;

	if (want == NULL)
		ok = got == NULL;
	else
		ok = got != NULL && strcmp(got, want) == 0;
	free(got);
	return ok;
}

/* 1 if form_encode(s) gives want. */
static int
encodes_to(const char *s, const char *want)
{
	char *got = form_encode(s);
	int ok = strcmp(got, want) == 0;

	free(got);
	return ok;
}

static void
test_decode(void)
{
	char buf[4] = { 'a', '%', '4', '1' };
	char *s;

	CHECK(decodes_to("a+b", 1, "a b"));
	CHECK(decodes_to("a+b", 0, "a+b"));
	CHECK(decodes_to("%41%62%2B", 1, "Ab+"));
	CHECK(decodes_to("%e2%82%AC", 1, "\xe2\x82\xac"));
	CHECK(decodes_to("%00", 1, NULL));
	CHECK(decodes_to("a%00b", 0, NULL));
	/* Malformed escapes stay as they are. */
	CHECK(decodes_to("%", 1, "%"));
	CHECK(decodes_to("%4", 1, "%4"));
	CHECK(decodes_to("%zz", 1, "%zz"));
	CHECK(decodes_to("%4g%41", 1, "%4gA"));
	CHECK(decodes_to("100%", 1, "100%"));
	CHECK(decodes_to("%%41", 1, "%A"));
	CHECK(decodes_to("", 1, ""));

	/* Only len bytes are read: "a%4" of a buffer that goes on with "1". */
	s = form_decode(buf, 3, 1);
	CHECK(s != NULL && strcmp(s, "a%4") == 0);
	free(s);
	s = form_decode(buf, 4, 1);
	CHECK(s != NULL && strcmp(s, "aA") == 0);
	free(s);
	/* A raw NUL byte is refused as well. */
	CHECK(form_decode("a\0b", 3, 1) == NULL);
}

static void
test_encode(void)
{
	char *e, *d;
	char all[256];
	int i;

	CHECK(encodes_to("", ""));
	CHECK(encodes_to("abcXYZ019*-._", "abcXYZ019*-._"));
	CHECK(encodes_to("a b", "a+b"));
	CHECK(encodes_to("\"quoted\"", "%22quoted%22"));
	CHECK(encodes_to("a+b=c&d", "a%2Bb%3Dc%26d"));
	CHECK(encodes_to("~!'()/?#%", "%7E%21%27%28%29%2F%3F%23%25"));
	CHECK(encodes_to("https://rp.example/cb?x=1",
	    "https%3A%2F%2Frp.example%2Fcb%3Fx%3D1"));
	CHECK(encodes_to("\xe2\x82\xac \xc3\xa9", "%E2%82%AC+%C3%A9"));
	CHECK(encodes_to("\x01\x7f\xff", "%01%7F%FF"));

	/* Every byte but NUL survives a round trip. */
	for (i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	e = form_encode(all);
	d = form_decode(e, strlen(e), 1);
	CHECK(d != NULL && strcmp(d, all) == 0);
	free(e);
	free(d);
}

static void
test_parse(void)
{
	struct form f;
	const char *errstr = NULL;
	size_t n = 99;
	char *big;
	int i;

	CHECK(parse(&f, "grant_type=authorization_code&code=abc%2Fdef"
	    "&redirect_uri=https%3A%2F%2Frp.example%2Fcb&client_id=my+app") == 0);
	CHECK(f.nparams == 4);
	CHECK(strcmp(form_get(&f, "grant_type", &n), "authorization_code") == 0);
	CHECK(n == 1);
	CHECK(strcmp(form_get(&f, "code", NULL), "abc/def") == 0);
	CHECK(strcmp(form_get(&f, "redirect_uri", NULL),
	    "https://rp.example/cb") == 0);
	CHECK(strcmp(form_get(&f, "client_id", NULL), "my app") == 0);
	CHECK(form_get(&f, "scope", &n) == NULL && n == 0);
	CHECK(form_get(&f, "Code", NULL) == NULL);
	CHECK(form_first_repeat(&f) == NULL);
	form_free(&f);

	/* Empty input, empty pieces, a piece without '='. */
	CHECK(parse(&f, "") == 0 && f.nparams == 0);
	form_free(&f);
	CHECK(parse(&f, "&&&") == 0 && f.nparams == 0);
	form_free(&f);
	CHECK(form_parse(&f, NULL, 0, &errstr) == 0 && f.nparams == 0);
	form_free(&f);
	CHECK(parse(&f, "&a=1&&b&c=&=d&") == 0);
	CHECK(f.nparams == 4);
	CHECK(strcmp(f.params[0].name, "a") == 0);
	CHECK(strcmp(f.params[0].value, "1") == 0);
	CHECK(strcmp(f.params[1].name, "b") == 0);
	CHECK(strcmp(f.params[1].value, "") == 0);
	CHECK(strcmp(f.params[2].name, "c") == 0);
	CHECK(strcmp(f.params[2].value, "") == 0);
	CHECK(strcmp(f.params[3].name, "") == 0);
	CHECK(strcmp(f.params[3].value, "d") == 0);
	form_free(&f);

	/* Only the first '=' splits; '+' and %XX in names too. */
	CHECK(parse(&f, "a+b%3D=x=y+z%26") == 0 && f.nparams == 1);
	CHECK(strcmp(f.params[0].name, "a b=") == 0);
	CHECK(strcmp(f.params[0].value, "x=y z&") == 0);
	form_free(&f);

	/* Malformed escapes are kept. */
	CHECK(parse(&f, "a=%zz&b=50%&c=%4") == 0 && f.nparams == 3);
	CHECK(strcmp(form_get(&f, "a", NULL), "%zz") == 0);
	CHECK(strcmp(form_get(&f, "b", NULL), "50%") == 0);
	CHECK(strcmp(form_get(&f, "c", NULL), "%4") == 0);
	form_free(&f);

	/* %00 in a name or a value is an error and leaves nothing to free. */
	errstr = NULL;
	CHECK(form_parse(&f, "a=1&b=x%00y", 11, &errstr) == -1);
	CHECK(errstr != NULL && f.nparams == 0 && f.params == NULL);
	form_free(&f);
	errstr = NULL;
	CHECK(form_parse(&f, "a%00=1", 6, &errstr) == -1 && errstr != NULL);
	/* Not NUL-terminated: only the first 3 bytes count. */
	CHECK(form_parse(&f, "a=1&b=2", 3, &errstr) == 0 && f.nparams == 1);
	CHECK(strcmp(form_get(&f, "a", NULL), "1") == 0);
	CHECK(form_get(&f, "b", NULL) == NULL);
	form_free(&f);

	/* The FORM_MAX_PARAMS bound; empty pieces do not count. */
	big = xmalloc(FORM_MAX_PARAMS * 4 + 16);
	big[0] = '\0';
	for (i = 0; i < FORM_MAX_PARAMS; i++)
		strcat(big, "a&&&");
	CHECK(parse(&f, big) == 0 && f.nparams == FORM_MAX_PARAMS);
	CHECK(form_get(&f, "a", &n) != NULL && n == FORM_MAX_PARAMS);
	form_free(&f);
	strcat(big, "b");
	errstr = NULL;
	CHECK(form_parse(&f, big, strlen(big), &errstr) == -1 && errstr != NULL);
	free(big);
}

static void
test_repeat(void)
{
	struct form f;
	size_t n;

	CHECK(parse(&f, "a=1&b=2&a=3") == 0);
	CHECK(form_first_repeat(&f) != NULL &&
	    strcmp(form_first_repeat(&f), "a") == 0);
	CHECK(strcmp(form_get(&f, "a", &n), "1") == 0 && n == 2);
	form_free(&f);

	/* The first parameter that repeats, in order of appearance. */
	CHECK(parse(&f, "x=0&b=1&a=2&a=3&b=4") == 0);
	CHECK(strcmp(form_first_repeat(&f), "b") == 0);
	form_free(&f);
	CHECK(parse(&f, "z=0&z=1&a=2&a=3") == 0);
	CHECK(strcmp(form_first_repeat(&f), "z") == 0);
	form_free(&f);

	/* Repeats are found after decoding, and an empty value counts. */
	CHECK(parse(&f, "scope=openid&sc%6Fpe") == 0);
	CHECK(strcmp(form_first_repeat(&f), "scope") == 0);
	form_free(&f);
	CHECK(parse(&f, "a=1&b=1&c=1") == 0);
	CHECK(form_first_repeat(&f) == NULL);
	form_free(&f);
}

static void
test_json(void)
{
	struct form f;
	json_t *j, *a;
	char *s;

	CHECK(parse(&f, "a=1&b=x+y&a=2&c&a=3&b=z") == 0);
	j = form_to_json(&f);
	CHECK(j != NULL && json_object_size(j) == 3);
	a = json_object_get(j, "a");
	CHECK(json_is_array(a) && json_array_size(a) == 3);
	CHECK(strcmp(json_string_value(json_array_get(a, 0)), "1") == 0);
	CHECK(strcmp(json_string_value(json_array_get(a, 2)), "3") == 0);
	a = json_object_get(j, "b");
	CHECK(json_is_array(a) && json_array_size(a) == 2);
	CHECK(strcmp(json_string_value(json_array_get(a, 0)), "x y") == 0);
	CHECK(strcmp(json_string_value(json_object_get(j, "c")), "") == 0);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK(s != NULL && strcmp(s,
	    "{\"a\":[\"1\",\"2\",\"3\"],\"b\":[\"x y\",\"z\"],\"c\":\"\"}") == 0);
	free(s);
	json_decref(j);
	form_free(&f);

	/* Bytes that are not UTF-8 become U+FFFD, as URLSearchParams does. */
	CHECK(parse(&f, "n%FF=%C3%A9%C3&%ED%A0%80=1") == 0);
	j = form_to_json(&f);
	CHECK(strcmp(json_string_value(json_object_get(j, "n\xef\xbf\xbd")),
	    "\xc3\xa9\xef\xbf\xbd") == 0);
	CHECK(json_object_get(j, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") != NULL);
	s = json_dumps(j, 0);
	CHECK(s != NULL);
	free(s);
	json_decref(j);
	form_free(&f);
	/* A truncated but well-begun sequence is one U+FFFD, not one per byte. */
	CHECK(parse(&f, "a=%F0%9F%80&b=%ED%80x&c=%E0%80") == 0);
	j = form_to_json(&f);
	CHECK(strcmp(json_string_value(json_object_get(j, "a")),
	    "\xef\xbf\xbd") == 0);
	CHECK(strcmp(json_string_value(json_object_get(j, "b")),
	    "\xef\xbf\xbdx") == 0);
	CHECK(strcmp(json_string_value(json_object_get(j, "c")),
	    "\xef\xbf\xbd\xef\xbf\xbd") == 0);
	json_decref(j);
	form_free(&f);

	/* An empty form is an empty object. */
	CHECK(parse(&f, "") == 0);
	j = form_to_json(&f);
	CHECK(json_is_object(j) && json_object_size(j) == 0);
	json_decref(j);
	form_free(&f);
}

int
main(void)
{
	test_decode();
	test_encode();
	test_parse();
	test_repeat();
	test_json();
	return CHECK_DONE();
}
