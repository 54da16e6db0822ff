/* idpctl.c: the admin CLI's entry point: global options, the command table, help, and
 * the output helpers the commands share. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "ctl.h"
#include "log.h"
#include "secret.h"
#include "xalloc.h"

#define CTL_ID_BYTES	16	/* 128 bits: client ids, user ids (the OIDC sub) */

static const char ctl_help_text[] =
"usage: idpctl [-c CONFIG_FILE] [-d CONNINFO] COMMAND [ARGS]\n"
"\n"
"The database is -d CONNINFO (a libpq connection string or URI), else the\n"
"'database' key of CONFIG_FILE (idp's configuration file), else $IDP_DATABASE,\n"
"else libpq's defaults (PGHOST, PGDATABASE, ...).\n"
"\n"
"Commands:\n"
"  migrate\n"
"      Apply the schema migrations built into idpctl (sql/NNN_*.sql) that the\n"
"      database lacks, in order, each in one transaction. Safe to repeat, and\n"
"      to run from several hosts at once.\n"
"  kek generate FILE\n"
"      Write a new 32-byte key-encryption key to FILE, mode 0600; an existing\n"
"      FILE is never overwritten. Point key_encryption_key_file at it and back\n"
"      it up apart from the database. Needs no database.\n"
"  client add --name NAME [OPTIONS]\n"
"      Register a client; print its id and secret. The secret is shown once:\n"
"      only its Argon2id hash is stored.\n"
"        --grant G              client_credentials (the default), authorization_code,\n"
"                               refresh_token, password; repeat for several\n"
"        --scope \"A B\"          allowed scopes (space-separated, repeatable)\n"
"        --default-scope \"A\"    scopes given when none is asked for\n"
"                               (default: every allowed scope)\n"
"        --audience A           an allowed audience (repeatable)\n"
"        --default-audience A   the audience when none is asked for (default:\n"
"                               the first --audience, else the issuer)\n"
"        --redirect-uri U       an allowed redirect URI, absolute, without a\n"
"                               fragment (repeatable; authorization_code needs one)\n"
"        --post-logout-redirect-uri U\n"
"                               an allowed URI after logout (repeatable)\n"
"        --first-party          a trusted client: no consent page\n"
"        --public               no secret (browser or native app; PKCE required);\n"
"                               needs authorization_code (then the default grant)\n"
"                               and may not have client_credentials or password\n"
"        --allow-plain-pkce     accept PKCE's \"plain\" method (legacy clients; the\n"
"                               server's allow_plain_pkce must be on as well)\n"
"        --json                 print {\"client_id\", \"client_secret\", \"name\"}\n"
"  client list [--json]\n"
"  client show ID [--json]\n"
"      A client's settings and live secrets (ids and creation times; never a\n"
"      secret or its hash).\n"
"  client disable ID\n"
"  client enable ID\n"
"      A disabled client gets no tokens; its settings and secrets are kept.\n"
"  client secret add ID [--json]\n"
"      Add a secret beside the current one, to rotate without downtime (at most\n"
"      two live secrets). Shown once, like the first.\n"
"  client secret revoke ID SECRET_ID [--force]\n"
"      Revoke a secret at once. Revoking the last live one needs --force.\n"
"  keys list [--json]\n"
"      Signing keys: kid, alg, state, when created, activated and retired,\n"
"      whether withdrawn. Never private key material.\n"
"  keys rotate [--emergency]\n"
"      Ask the running idp's signer to rotate: the next key signs as soon as it\n"
"      has been published long enough, and a new next key is made. --emergency\n"
"      withdraws the active key from the JWKS at once and the next key signs at\n"
"      once (for a leaked key; relying parties may briefly fail to verify).\n"
"  user add --username U --password-stdin [OPTIONS]\n"
"      Add a person who can sign in; print the user id (the OIDC sub). The\n"
"      password is read from standard input (one line; a trailing newline is\n"
"      dropped; 1 to 1024 bytes of UTF-8; not echoed on a terminal) and only\n"
"      its Argon2id hash is stored. Usernames and emails are unique whatever\n"
"      their case; a username has no '@'.\n"
"        --email E              the email address\n"
"        --email-verified       the email is known to be the user's\n"
"        --name N               the display name\n"
"        --role R               a role, for the roles claim (repeatable)\n"
"        --json                 print {\"user_id\", \"username\"}\n"
"  user passwd USER --password-stdin\n"
"      Set a new password (read as for user add). USER is a username (any\n"
"      case) or a user id. Also signs the user out everywhere: sessions end,\n"
"      refresh tokens and known access tokens are revoked.\n"
"  user disable USER\n"
"  user enable USER\n"
"      A disabled user cannot sign in; disabling signs the user out everywhere,\n"
"      as user passwd does.\n"
"  user role add USER ROLE\n"
"  user role remove USER ROLE\n"
"      Give or take a role (adding one the user has changes nothing).\n"
"  user list [--json]\n"
"  user show USER [--json]\n"
"      Users' settings, roles, live sessions and consents (never a password\n"
"      or its hash).\n"
"  help\n"
"      This text (also: idpctl --help, idpctl COMMAND --help).\n"
"\n"
"Exit status: 0 done, 1 failed (database, file, refused), 2 bad usage.\n";

struct ctl_cmd {
	const char	*words[3];	/* NULL-terminated when shorter */
	int		(*fn)(struct ctl *, int, char **);
};

static const struct ctl_cmd ctl_cmds[] = {
	{ { "migrate", NULL, NULL }, ctl_migrate },
	{ { "kek", "generate", NULL }, ctl_kek_generate },
	{ { "client", "add", NULL }, ctl_client_add },
	{ { "client", "list", NULL }, ctl_client_list },
	{ { "client", "show", NULL }, ctl_client_show },
	{ { "client", "disable", NULL }, ctl_client_able },
	{ { "client", "enable", NULL }, ctl_client_able },
	{ { "client", "secret", "add" }, ctl_client_secret_add },
	{ { "client", "secret", "revoke" }, ctl_client_secret_revoke },
	{ { "keys", "list", NULL }, ctl_keys_list },
	{ { "keys", "rotate", NULL }, ctl_keys_rotate },
	{ { "user", "add", NULL }, ctl_user_add },
	{ { "user", "passwd", NULL }, ctl_user_passwd },
	{ { "user", "disable", NULL }, ctl_user_able },
	{ { "user", "enable", NULL }, ctl_user_able },
	{ { "user", "role", "add" }, ctl_user_role },
	{ { "user", "role", "remove" }, ctl_user_role },
	{ { "user", "list", NULL }, ctl_user_list },
	{ { "user", "show", NULL }, ctl_user_show },
};

void
ctl_json_print(const json_t *v)
{
	char *s;

	if ((s = json_dumps(v, JSON_INDENT(2))) == NULL)
		fatalx("json_dumps: out of memory");
	fputs(s, stdout);
	fputc('\n', stdout);
	sodium_memzero(s, strlen(s));
	free(s);
}

json_t *
ctl_json_column(const PGresult *res, int row, int col)
{
	json_t *v;

	if (PQgetisnull(res, row, col) ||
	    (v = json_loads(PQgetvalue(res, row, col), JSON_DECODE_ANY, NULL)) == NULL)
		return json_null();
	return v;
}

json_t *
ctl_json_text(const PGresult *res, int row, int col)
{
	json_t *v;

	if (PQgetisnull(res, row, col) ||
	    (v = json_string(PQgetvalue(res, row, col))) == NULL)
		return json_null();
	return v;
}

json_t *
ctl_json_row(const PGresult *res, int row, const struct ctl_col *cols)
{
	json_t *o, *v;
	int i;

	o = json_object();
	for (i = 0; cols[i].name != NULL; i++) {
		switch (cols[i].type) {
		case CTL_COL_BOOL:
			v = json_boolean(ctl_bool(res, row, i));
			break;
		case CTL_COL_INT:
			v = json_integer(strtoll(PQgetvalue(res, row, i), NULL, 10));
			break;
		case CTL_COL_JSON:
			v = ctl_json_column(res, row, i);
			break;
		default:
			v = ctl_json_text(res, row, i);
			break;
		}
		json_object_set_new(o, cols[i].name, v);
	}
	return o;
}

json_t *
ctl_json_rows(const PGresult *res, const struct ctl_col *cols)
{
	json_t *arr;
	int i;

	arr = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr, ctl_json_row(res, i, cols));
	return arr;
}

void
ctl_json_print_rows(const PGresult *res, const struct ctl_col *cols)
{
	json_t *arr;

	arr = ctl_json_rows(res, cols);
	ctl_json_print(arr);
	json_decref(arr);
}

char *
ctl_json_join(const json_t *arr, const char *sep)
{
	const json_t *v;
	char *s, *t;
	size_t i;

	if (json_array_size(arr) == 0)
		return xstrdup("-");
	s = xstrdup("");
	json_array_foreach(arr, i, v) {
		t = xasprintf("%s%s%s", s, i > 0 ? sep : "",
		    json_string_value(v) != NULL ? json_string_value(v) : "?");
		free(s);
		s = t;
	}
	return s;
}

const char *
ctl_text_or_dash(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "-" : PQgetvalue(res, row, col);
}

int
ctl_col_width(const PGresult *res, int col, int min)
{
	int i, w = min;

	for (i = 0; i < PQntuples(res); i++)
		if (PQgetlength(res, i, col) > w)
			w = PQgetlength(res, i, col);
	return w;
}

int
ctl_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && strcmp(PQgetvalue(res, row, col), "t") == 0;
}

char *
ctl_new_id(void)
{
	char *id;

	while ((id = secret_random_b64url(CTL_ID_BYTES))[0] == '-')
		free(id);
	return id;
}

int
ctl_stdout_ok(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		log_warn("write to standard output");
		return 0;
	}
	return 1;
}

/* 1 if argv has --help (or -h) before a "--". */
static int
ctl_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

/* The command argv names, or NULL with the number of words that did match in *depth. */
static const struct ctl_cmd *
ctl_find(int argc, char **argv, int *depth)
{
	const struct ctl_cmd *cmd;
	size_t i;
	int w, matched;

	*depth = 0;
	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++) {
		cmd = &ctl_cmds[i];
		for (w = 0; w < 3 && cmd->words[w] != NULL; w++)
			if (w >= argc || strcmp(cmd->words[w], argv[w]) != 0)
				break;
		matched = w;
		if (w == 3 || cmd->words[w] == NULL) {
			*depth = matched;
			return cmd;
		}
		if (matched > *depth)
			*depth = matched;
	}
	return NULL;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct ctl_cmd *cmd;
	struct ctl c;
	char *name, *tmp;
	int ch, depth, rv, i;

	log_init("idpctl", LOG_LVL_INFO);
	secret_init();
	memset(&c, 0, sizeof(c));

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, "+:c:d:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			c.config_file = optarg;
			break;
		case 'd':
			c.conninfo = optarg;
			break;
		case 'h':
			fputs(ctl_help_text, stdout);
			return ctl_stdout_ok() ? CTL_OK : CTL_FAIL;
		default:
			return ctl_badopt(NULL, ch, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return ctl_usage(NULL, "missing command");
	if (strcmp(argv[0], "help") == 0) {
		fputs(ctl_help_text, stdout);
		return ctl_stdout_ok() ? CTL_OK : CTL_FAIL;
	}
	if ((cmd = ctl_find(argc, argv, &depth)) == NULL) {
		name = xstrdup(argv[0]);
		for (i = 1; i <= depth && i < argc; i++) {
			tmp = xasprintf("%s %s", name, argv[i]);
			free(name);
			name = tmp;
		}
		if (depth >= argc)
			rv = ctl_usage(NULL, "incomplete command '%s'", name);
		else
			rv = ctl_usage(NULL, "unknown command '%s'", name);
		free(name);
		return rv;
	}
	for (depth = 1; depth < 3 && cmd->words[depth] != NULL; depth++)
		;
	argc -= depth - 1;
	argv += depth - 1;
	if (ctl_wants_help(argc, argv)) {
		fputs(ctl_help_text, stdout);
		return ctl_stdout_ok() ? CTL_OK : CTL_FAIL;
	}
	rv = cmd->fn(&c, argc, argv);

	if (c.db != NULL) {
		ctl_db_rollback(&c);
		PQfinish(c.db);
	}
	free(c.cfg_database);
	if (!ctl_stdout_ok() && rv == CTL_OK)
		rv = CTL_FAIL;
	return rv;
}
