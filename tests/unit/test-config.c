/* test-config.c: unit tests for the table-driven configuration reader (common/config.c). */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

struct conf {
	char	*issuer;
	char	*database;
	long	 workers;
	long	 token_ttl;
	long	 code_ttl;
	long	 anything;
	int	 debug;
	int	 cors;
};

static const struct config_key keys[] = {
	{ "issuer", CONFIG_STRING, offsetof(struct conf, issuer),
	    "http://localhost:8080", 0, 0 },
	{ "database", CONFIG_STRING, offsetof(struct conf, database), NULL, 0, 0 },
	{ "workers", CONFIG_INT, offsetof(struct conf, workers), "4", 1, 64 },
	{ "token_ttl", CONFIG_DURATION, offsetof(struct conf, token_ttl), "1h",
	    1, 86400 },
	{ "code_ttl", CONFIG_DURATION, offsetof(struct conf, code_ttl), NULL, 0, 0 },
	{ "anything", CONFIG_INT, offsetof(struct conf, anything), "-5", 0, 0 },
	{ "debug", CONFIG_BOOL, offsetof(struct conf, debug), "no", 0, 0 },
	{ "cors", CONFIG_BOOL, offsetof(struct conf, cors), "yes", 0, 0 },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))
#define PREFIX	"IDPTEST_"

static char tmpl[] = "/tmp/test-config.XXXXXX";

/* Write text to a new temporary file; returns its path (static, one at a time). */
static const char *
write_file(const char *text)
{
	FILE *fp;
	int fd;

	memcpy(tmpl + strlen(tmpl) - 6, "XXXXXX", 6);
	if ((fd = mkstemp(tmpl)) == -1 || (fp = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
	return tmpl;
}

/* Load text as a config file; the error (if any) goes to err. The file is removed. */
static int
load_text(struct conf *c, const char *text, char *err, size_t errlen)
{
	const char *path = write_file(text);
	int rv;

	memset(c, 0xa5, sizeof(*c));
	rv = config_load(keys, NKEYS, c, path, PREFIX, err, errlen);
	unlink(path);
	return rv;
}

/* 1 if err starts with the temporary file's name and goes on with rest. */
static int
err_is(const char *err, const char *rest)
{
	size_t n = strlen(tmpl);

	return strncmp(err, tmpl, n) == 0 && strcmp(err + n, rest) == 0;
}

/* 1 if loading text fails with an error that contains want. */
static int
fails_with(const char *text, const char *want)
{
	struct conf c;
	char err[256];

	if (load_text(&c, text, err, sizeof(err)) != -1)
		return 0;
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "error '%s' lacks '%s'\n", err, want);
		return 0;
	}
	/* Nothing is left to free, and freeing again is harmless. */
	if (c.issuer != NULL || c.database != NULL)
		return 0;
	config_free(keys, NKEYS, &c);
	return 1;
}

static void
test_defaults(void)
{
	struct conf c;
	char err[256];

	memset(&c, 0xa5, sizeof(c));
	CHECK(config_load(keys, NKEYS, &c, NULL, NULL, err, sizeof(err)) == 0);
	CHECK(c.issuer != NULL && strcmp(c.issuer, "http://localhost:8080") == 0);
	CHECK(c.database == NULL);
	CHECK(c.workers == 4);
	CHECK(c.token_ttl == 3600);
	CHECK(c.code_ttl == 0);
	CHECK(c.anything == -5);
	CHECK(c.debug == 0);
	CHECK(c.cors == 1);
	config_free(keys, NKEYS, &c);
	CHECK(c.issuer == NULL);
	config_free(keys, NKEYS, &c);

	/* A file that is empty or only comments changes nothing. */
	CHECK(load_text(&c, "", err, sizeof(err)) == 0 && c.workers == 4);
	config_free(keys, NKEYS, &c);
	CHECK(load_text(&c, "# comment\n\n   \n\t# indented = comment\n", err,
	    sizeof(err)) == 0 && c.workers == 4 && c.cors == 1);
	config_free(keys, NKEYS, &c);
}

static void
test_file(void)
{
	struct conf c;
	char err[256];

	CHECK(load_text(&c,
	    "# idp test config\n"
	    "issuer = https://id.example.com\n"
	    "  database=postgresql:///idp?host=/run/pg  \n"
	    "workers\t=\t8\r\n"
	    "token_ttl = 15m\n"
	    "code_ttl = 30\n"
	    "debug = on\n"
	    "cors = false\n"
	    "anything = -1000", err, sizeof(err)) == 0);
	CHECK(strcmp(c.issuer, "https://id.example.com") == 0);
	CHECK(strcmp(c.database, "postgresql:///idp?host=/run/pg") == 0);
	CHECK(c.workers == 8);
	CHECK(c.token_ttl == 900);
	CHECK(c.code_ttl == 30);
	CHECK(c.debug == 1);
	CHECK(c.cors == 0);
	CHECK(c.anything == -1000);
	config_free(keys, NKEYS, &c);

	/* Quotes keep spaces; '=' and '#' inside a value are plain characters. */
	CHECK(load_text(&c,
	    "issuer = \"  spaced # not a comment  \"\n"
	    "database = \"host=db user=idp\"\n"
	    "workers = \"2\"\n", err, sizeof(err)) == 0);
	CHECK(strcmp(c.issuer, "  spaced # not a comment  ") == 0);
	CHECK(strcmp(c.database, "host=db user=idp") == 0);
	CHECK(c.workers == 2);
	config_free(keys, NKEYS, &c);
	CHECK(load_text(&c, "issuer = \"\"\ndatabase =\n", err, sizeof(err)) == 0);
	CHECK(strcmp(c.issuer, "") == 0 && strcmp(c.database, "") == 0);
	config_free(keys, NKEYS, &c);
	/* A quote that is not at the start is kept. */
	CHECK(load_text(&c, "issuer = a\"b\"\n", err, sizeof(err)) == 0);
	CHECK(strcmp(c.issuer, "a\"b\"") == 0);
	config_free(keys, NKEYS, &c);
}

static void
test_errors(void)
{
	struct conf c;
	char err[256];

	CHECK(load_text(&c, "workers = 2\n\nnope = 1\n", err, sizeof(err)) == -1);
	CHECK(err_is(err, ":3: unknown key 'nope'"));
	CHECK(load_text(&c, "# x\nWorkers = 2\n", err, sizeof(err)) == -1);
	CHECK(err_is(err, ":2: unknown key 'Workers'"));
	CHECK(load_text(&c, "workers = 2\ndebug = yes\nworkers = 3\n", err,
	    sizeof(err)) == -1);
	CHECK(err_is(err, ":3: repeated key 'workers' (first set on line 1)"));
	CHECK(load_text(&c, "workers = many\n", err, sizeof(err)) == -1);
	CHECK(err_is(err, ":1: bad value for 'workers': not a number"));
	CHECK(load_text(&c, "workers = 65\n", err, sizeof(err)) == -1);
	CHECK(err_is(err, ":1: bad value for 'workers': out of range (1..64)"));

	CHECK(fails_with("workers = 0\n", "out of range"));
	CHECK(fails_with("workers = -1\n", "out of range"));
	CHECK(fails_with("workers = 4x\n", "not a number"));
	CHECK(fails_with("workers = 0x10\n", "not a number"));
	CHECK(fails_with("workers =\n", "not a number"));
	CHECK(fails_with("workers = 4 4\n", "not a number"));
	CHECK(fails_with("anything = 99999999999999999999999\n", "out of range"));
	CHECK(fails_with("debug = maybe\n", "bad value for 'debug'"));
	CHECK(fails_with("debug = 2\n", "bad value for 'debug'"));
	CHECK(fails_with("token_ttl = 0\n", "out of range (1..86400)"));
	CHECK(fails_with("token_ttl = 2d\n", "out of range"));
	CHECK(fails_with("token_ttl = 1x\n", "bad value for 'token_ttl'"));
	CHECK(fails_with("workers\n", ":1: expected 'key = value'"));
	CHECK(fails_with("= 4\n", "missing key"));
	CHECK(fails_with("issuer = \"open\n", "unterminated quote"));
	CHECK(fails_with("issuer = \"\n", "unterminated quote"));
	CHECK(fails_with("issuer = ok\nissuer = again\n", "repeated key 'issuer'"));

	/* A missing file names itself. */
	CHECK(config_load(keys, NKEYS, &c, "/nonexistent/idp.conf", NULL, err,
	    sizeof(err)) == -1);
	CHECK(strncmp(err, "/nonexistent/idp.conf: ", 23) == 0);
	CHECK(c.issuer == NULL);

	/* A NULL err is allowed. */
	CHECK(config_load(keys, NKEYS, &c, "/nonexistent/idp.conf", NULL, NULL,
	    0) == -1);
}

static void
test_env(void)
{
	struct conf c;
	char err[256];

	setenv(PREFIX "WORKERS", "16", 1);
	setenv(PREFIX "ISSUER", "https://env.example", 1);
	setenv(PREFIX "CODE_TTL", "2h", 1);
	setenv(PREFIX "DEBUG", "TRUE", 1);
	/* The environment beats the file, which beats the defaults. */
	CHECK(load_text(&c, "workers = 8\nissuer = https://file.example\n"
	    "database = db\n", err, sizeof(err)) == 0);
	CHECK(c.workers == 16);
	CHECK(strcmp(c.issuer, "https://env.example") == 0);
	CHECK(strcmp(c.database, "db") == 0);
	CHECK(c.code_ttl == 7200);
	CHECK(c.debug == 1);
	CHECK(c.token_ttl == 3600);
	config_free(keys, NKEYS, &c);

	/* With another prefix nothing is read from IDPTEST_*. */
	memset(&c, 0, sizeof(c));
	CHECK(config_load(keys, NKEYS, &c, NULL, "OTHER_", err, sizeof(err)) == 0);
	CHECK(c.workers == 4);
	config_free(keys, NKEYS, &c);

	setenv(PREFIX "WORKERS", "100", 1);
	CHECK(load_text(&c, "", err, sizeof(err)) == -1);
	CHECK(strcmp(err, "environment IDPTEST_WORKERS: bad value for 'workers': "
	    "out of range (1..64)") == 0);
	CHECK(c.issuer == NULL);
	setenv(PREFIX "WORKERS", " 4", 1);
	CHECK(load_text(&c, "", err, sizeof(err)) == -1);
	CHECK(strncmp(err, "environment IDPTEST_WORKERS: ", 29) == 0);
	unsetenv(PREFIX "WORKERS");
	setenv(PREFIX "TOKEN_TTL", "-1", 1);
	CHECK(load_text(&c, "", err, sizeof(err)) == -1);
	CHECK(strncmp(err, "environment IDPTEST_TOKEN_TTL: ", 31) == 0);
	unsetenv(PREFIX "TOKEN_TTL");
	unsetenv(PREFIX "ISSUER");
	unsetenv(PREFIX "CODE_TTL");
	unsetenv(PREFIX "DEBUG");
}

static int
duration_is(const char *s, long want)
{
	long v = -42;

	return config_parse_duration(s, &v) == 0 && v == want;
}

static int
duration_bad(const char *s)
{
	long v = -42;

	return config_parse_duration(s, &v) == -1 && v == -42;
}

static void
test_duration(void)
{
	char buf[64];

	CHECK(duration_is("0", 0));
	CHECK(duration_is("30", 30));
	CHECK(duration_is("30s", 30));
	CHECK(duration_is("15m", 900));
	CHECK(duration_is("2h", 7200));
	CHECK(duration_is("12h", 43200));
	CHECK(duration_is("7d", 604800));
	CHECK(duration_is("007", 7));
	snprintf(buf, sizeof(buf), "%ld", LONG_MAX);
	CHECK(duration_is(buf, LONG_MAX));

	CHECK(duration_bad(""));
	CHECK(duration_bad("s"));
	CHECK(duration_bad("-5"));
	CHECK(duration_bad("+5"));
	CHECK(duration_bad(" 5"));
	CHECK(duration_bad("5 "));
	CHECK(duration_bad("5x"));
	CHECK(duration_bad("5ms"));
	CHECK(duration_bad("5M"));
	CHECK(duration_bad("1.5h"));
	CHECK(duration_bad("1h30m"));
	CHECK(duration_bad("bad"));
	CHECK(duration_bad("99999999999999999999999"));
	snprintf(buf, sizeof(buf), "%ldd", LONG_MAX / 86400 + 1);
	CHECK(duration_bad(buf));
	snprintf(buf, sizeof(buf), "%ldd", LONG_MAX / 86400);
	CHECK(duration_is(buf, LONG_MAX / 86400 * 86400));
}

static void
test_bool(void)
{
	static const char *yes[] = { "yes", "true", "on", "1", "Yes", "TRUE" };
	static const char *no[] = { "no", "false", "off", "0", "No", "OFF" };
	struct conf c;
	char text[64], err[256];
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "debug = %s\ncors = %s\n", yes[i],
		    no[i]);
		CHECK(load_text(&c, text, err, sizeof(err)) == 0);
		CHECK(c.debug == 1 && c.cors == 0);
		config_free(keys, NKEYS, &c);
	}
	CHECK(fails_with("debug = y\n", "not a boolean"));
	CHECK(fails_with("debug =\n", "not a boolean"));
}

int
main(void)
{
	test_defaults();
	test_file();
	test_errors();
	test_env();
	test_duration();
	test_bool();
	return CHECK_DONE();
}
