/* ctl_opts.c: idpctl's command-line parsing: option tables, operands, usage errors. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"
#include "xalloc.h"

/*
 * Every command parses its options the same way: long options only, through
 * getopt_long (so GNU permutation and unique prefixes, "--js" for "--json", hold
 * everywhere alike), the first problem reported on one line with exit status 2. A
 * command therefore describes its options in a struct ctl_opt table and ctl_opts
 * does the rest; the struct option table getopt_long wants is made from it.
 */

/* getopt_long's return value for opts[i]: above every char, so never a short option. */
#define CTL_OPT_VAL(i)	(256 + (i))

void
ctl_getopt_reset(void)
{
	/* 0 makes glibc's and the BSDs' getopt_long start over on a new vector. */
	optind = 0;
	opterr = 0;
}

int
ctl_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	if (cmd != NULL)
		log_error("%s: %s (see 'idpctl help')", cmd, msg);
	else
		log_error("%s (see 'idpctl help')", msg);
	free(msg);
	return CTL_USAGE;
}

int
ctl_badopt(const char *cmd, int ch, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (ch == ':')
		return ctl_usage(cmd, "option %s needs a value", arg);
	if (optopt != 0 && strncmp(arg, "--", 2) != 0)
		return ctl_usage(cmd, "unknown option -%c", optopt);
	return ctl_usage(cmd, "unknown option %s", arg);
}

/* Take option o, just returned by getopt_long (its value, if any, in optarg).
 * CTL_OK or CTL_USAGE (reported). */
static int
ctl_opt_take(const char *cmd, const struct ctl_opt *o)
{
	switch (o->type) {
	case CTL_OPT_FLAG:
		*(int *)o->dst = 1;
		return CTL_OK;
	case CTL_OPT_ONCE:
		if (*(const char **)o->dst != NULL)
			return ctl_usage(cmd, "--%s given twice", o->name);
		*(const char **)o->dst = optarg;
		return CTL_OK;
	case CTL_OPT_EACH:
		return o->fn(cmd, optarg, o->dst);
	}
	fatalx("%s: option --%s of unknown type", cmd, o->name);
}

int
ctl_opts(const char *cmd, int argc, char **argv, const struct ctl_opt *opts,
    int nargs, const char *wrong)
{
	struct option *longopts;
	int ch, i, n = 0, rv = CTL_OK;

	while (opts != NULL && opts[n].name != NULL)
		n++;
	longopts = xcalloc((size_t)n + 1, sizeof(*longopts));
	for (i = 0; i < n; i++) {
		longopts[i].name = opts[i].name;
		longopts[i].has_arg = opts[i].type == CTL_OPT_FLAG ? no_argument :
		    required_argument;
		longopts[i].val = CTL_OPT_VAL(i);
	}

	ctl_getopt_reset();
	while (rv == CTL_OK &&
	    (ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (ch >= CTL_OPT_VAL(0) && ch < CTL_OPT_VAL(n))
			rv = ctl_opt_take(cmd, &opts[ch - CTL_OPT_VAL(0)]);
		else
			rv = ctl_badopt(cmd, ch, argv);
	}
	free(longopts);
	if (rv != CTL_OK || argc - optind == nargs)
		return rv;
	if (wrong == NULL)
		return ctl_usage(cmd, "unexpected argument '%s'", argv[optind + nargs]);
	return ctl_usage(cmd, "%s", wrong);
}

int
ctl_opts_json(const char *cmd, int argc, char **argv, int *json, int nargs,
    const char *wrong)
{
	struct ctl_opt opts[] = {
		{ "json", CTL_OPT_FLAG, json, NULL },
		{ NULL, 0, NULL, NULL },
	};

	return ctl_opts(cmd, argc, argv, opts, nargs, wrong);
}
