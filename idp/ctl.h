/* ctl.h: what idpctl's command files share: run state, options, database and output
 * helpers. */
#ifndef IDP_CTL_H
#define IDP_CTL_H

#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

/* Exit statuses: 0 done, 1 failed (database, file, refused), 2 bad usage. */
#define CTL_OK		0
#define CTL_FAIL	1
#define CTL_USAGE	2

/* pg_advisory_xact_lock key that serializes `idpctl migrate` runs (idp.h has the
 * rotation lock, 726175). */
#define CTL_MIGRATE_LOCK	"726176"

/* SQL for a timestamptz column as ISO 8601 UTC text ("2025-01-31T12:00:00Z"); NULL stays
 * NULL. A constant expression pasted into constant statements. */
#define CTL_TS(col) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* One run of idpctl: the global options and, once a command connects, the database. */
struct ctl {
	const char	*config_file;	/* -c, NULL = none */
	const char	*conninfo;	/* -d; NULL: file, IDP_DATABASE, libpq */
	char		*cfg_database;	/* the file's "database"; NULL, "" = unset */
	PGconn		*db;		/* NULL until ctl_db_connect */
};

/* One embedded migration: a sql/NNN_name.sql file's name and text (sql/embed.py
 * generates the table, in file name order, at build time). */
struct ctl_migration {
	const char	*name;
	const char	*sql;
};
extern const struct ctl_migration	ctl_migrations[];
extern const size_t			ctl_nmigrations;

/* Command handlers. argv[0] is the last word of the command ("add" for client secret
 * add): a handler that serves two commands (ctl_client_able for client disable and
 * client enable) tells them apart by it. Each returns an exit status (CTL_OK,
 * CTL_FAIL, CTL_USAGE) and leaves c->db for main to close. */
int	ctl_migrate(struct ctl *c, int argc, char **argv);
int	ctl_kek_generate(struct ctl *c, int argc, char **argv);
int	ctl_client_add(struct ctl *c, int argc, char **argv);
int	ctl_client_list(struct ctl *c, int argc, char **argv);
int	ctl_client_show(struct ctl *c, int argc, char **argv);
int	ctl_client_able(struct ctl *c, int argc, char **argv);
int	ctl_client_secret_add(struct ctl *c, int argc, char **argv);
int	ctl_client_secret_revoke(struct ctl *c, int argc, char **argv);
int	ctl_keys_list(struct ctl *c, int argc, char **argv);
int	ctl_keys_rotate(struct ctl *c, int argc, char **argv);
int	ctl_user_add(struct ctl *c, int argc, char **argv);
int	ctl_user_passwd(struct ctl *c, int argc, char **argv);
int	ctl_user_able(struct ctl *c, int argc, char **argv);
int	ctl_user_role(struct ctl *c, int argc, char **argv);
int	ctl_user_list(struct ctl *c, int argc, char **argv);
int	ctl_user_show(struct ctl *c, int argc, char **argv);

/* One long option of a command ("--name"; a value follows as the next word or after
 * '='), for ctl_opts. A table of them ends with a NULL name. */
enum ctl_opt_type {
	CTL_OPT_FLAG,	/* no value: *(int *)dst = 1; repeating is fine */
	CTL_OPT_ONCE,	/* a value, at most once: *(const char **)dst borrows it */
	CTL_OPT_EACH,	/* a value, repeatable: fn(cmd, value, dst) takes each */
};

struct ctl_opt {
	const char		*name;
	enum ctl_opt_type	 type;
	void			*dst;
	/* CTL_OPT_EACH: CTL_OK, or CTL_USAGE when it refuses the value (reported). */
	int			(*fn)(const char *cmd, const char *value, void *dst);
};

/* Parse the options of command cmd (argv[0] is its last word) with the table opts
 * (NULL: none), then check that exactly nargs operands are left, which are then
 * argv[optind] on. Reports the first problem on one line: an unknown option, a
 * missing value, a CTL_OPT_ONCE option given twice, a value fn refused, or a wrong
 * count of operands (as "<cmd>: <wrong>", or with wrong NULL, for nargs 0, as
 * "unexpected argument 'X'"). CTL_OK or CTL_USAGE. */
int	ctl_opts(const char *cmd, int argc, char **argv, const struct ctl_opt *opts,
	    int nargs, const char *wrong);
/* ctl_opts for the many commands whose one option is --json (sets *json). */
int	ctl_opts_json(const char *cmd, int argc, char **argv, int *json, int nargs,
	    const char *wrong);
/* Prepare getopt_long for a new argument vector (opterr off: ctl_badopt reports). */
void	ctl_getopt_reset(void);
/* Report the option getopt_long just refused (ch is its '?' or ':' return) for command
 * cmd on one line. Returns CTL_USAGE. */
int	ctl_badopt(const char *cmd, int ch, char **argv);
/* Print "idpctl: error: <cmd>: <message> (see 'idpctl help')" and return CTL_USAGE. */
int	ctl_usage(const char *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Connect c->db from -d, else the config file's database, else IDP_DATABASE, else
 * libpq's defaults. On failure prints one line that never holds the password and
 * returns -1; 0 on success. */
int	ctl_db_connect(struct ctl *c);
/* ctl_db_exec, connecting c->db first (ctl_db_connect) if it is not yet connected. */
PGresult *ctl_db_query(struct ctl *c, const char *what, const char *sql, int nparams,
	    const char *const *params);
/* Run one statement with $n text parameters (NULL = SQL NULL) and return its result if
 * its status is PGRES_COMMAND_OK or PGRES_TUPLES_OK; the caller PQclears it. Otherwise
 * prints "<what>: <the server's message>", clears the result and returns NULL. */
PGresult *ctl_db_exec(struct ctl *c, const char *what, const char *sql, int nparams,
	    const char *const *params);
/* ctl_db_exec for a statement whose result is not needed: 0 on success, -1 on error. */
int	ctl_db_cmd(struct ctl *c, const char *what, const char *sql, int nparams,
	    const char *const *params);
/* Print "<what>: <the server's message>" for the failed result res (NULL: the
 * connection's message) on one line, never the statement. */
void	ctl_db_error(struct ctl *c, const char *what, const PGresult *res);
/* BEGIN, COMMIT: 0 or -1 (reported). ctl_db_rollback ends a transaction silently. */
int	ctl_db_begin(struct ctl *c);
int	ctl_db_commit(struct ctl *c);
void	ctl_db_rollback(struct ctl *c);

/* Print a JSON value on stdout (indented, one trailing newline), then zero the text (it
 * may hold a new secret). Borrows v. */
void	ctl_json_print(const json_t *v);
/* Parse the JSON text of a result column (to_json(...)); a new reference, never NULL
 * (JSON null on bad input). */
json_t	*ctl_json_column(const PGresult *res, int row, int col);
/* Column col of row as a new JSON string, or JSON null when it is SQL NULL. */
json_t	*ctl_json_text(const PGresult *res, int row, int col);
/* How ctl_json_row makes a result column into a member of a JSON object. */
enum ctl_col_type {
	CTL_COL_TEXT,		/* ctl_json_text */
	CTL_COL_BOOL,		/* ctl_bool */
	CTL_COL_INT,		/* a count or id */
	CTL_COL_JSON,		/* ctl_json_column */
};

/* One column of a result: the member it becomes. A table of them ends with a NULL
 * name. */
struct ctl_col {
	const char		*name;
	enum ctl_col_type	 type;
};

/* Row row of res as a new JSON object, column i as member cols[i], in that order. */
json_t	*ctl_json_row(const PGresult *res, int row, const struct ctl_col *cols);
/* Every row of res as a new JSON array of ctl_json_row objects. */
json_t	*ctl_json_rows(const PGresult *res, const struct ctl_col *cols);
/* ctl_json_print of ctl_json_rows: a list command's --json output. */
void	ctl_json_print_rows(const PGresult *res, const struct ctl_col *cols);
/* The strings of JSON array arr joined by sep (a non-string as "?"), or "-" when arr
 * is empty. The caller frees it. */
char	*ctl_json_join(const json_t *arr, const char *sep);
/* Column col of row as text, or "-" when it is SQL NULL (borrowed from res). */
const char *ctl_text_or_dash(const PGresult *res, int row, int col);
/* The width of a table column showing column col of res: its longest value, at least
 * min (the heading's width). */
int	ctl_col_width(const PGresult *res, int col, int min);
/* 1 if boolean column col of row is true. */
int	ctl_bool(const PGresult *res, int row, int col);
/* A new id for a client or a user: 128 random bits in base64url, never beginning with
 * '-' (so that it can follow a command on any command line without "--"). The caller
 * frees it. */
char	*ctl_new_id(void);
/* 1 if stdout could be written so far (fflush and check); otherwise prints an error. */
int	ctl_stdout_ok(void);

#endif
