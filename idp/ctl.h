/* ctl.h: what idpctl's command files share: run state, database and output helpers. */
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
 * add), so getopt_long can run on argc/argv after ctl_getopt_reset. Each returns an
 * exit status (CTL_OK, CTL_FAIL, CTL_USAGE) and leaves c->db for main to close. */
int	ctl_migrate(struct ctl *c, int argc, char **argv);
int	ctl_kek_generate(struct ctl *c, int argc, char **argv);
int	ctl_client_add(struct ctl *c, int argc, char **argv);
int	ctl_client_list(struct ctl *c, int argc, char **argv);
int	ctl_client_show(struct ctl *c, int argc, char **argv);
int	ctl_client_disable(struct ctl *c, int argc, char **argv);
int	ctl_client_enable(struct ctl *c, int argc, char **argv);
int	ctl_client_secret_add(struct ctl *c, int argc, char **argv);
int	ctl_client_secret_revoke(struct ctl *c, int argc, char **argv);
int	ctl_keys_list(struct ctl *c, int argc, char **argv);
int	ctl_keys_rotate(struct ctl *c, int argc, char **argv);
int	ctl_user_add(struct ctl *c, int argc, char **argv);
int	ctl_user_passwd(struct ctl *c, int argc, char **argv);
int	ctl_user_disable(struct ctl *c, int argc, char **argv);
int	ctl_user_enable(struct ctl *c, int argc, char **argv);
int	ctl_user_role_add(struct ctl *c, int argc, char **argv);
int	ctl_user_role_remove(struct ctl *c, int argc, char **argv);
int	ctl_user_list(struct ctl *c, int argc, char **argv);
int	ctl_user_show(struct ctl *c, int argc, char **argv);

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
/* Column col of row as text, or "-" when it is SQL NULL (borrowed from res). */
const char *ctl_text_or_dash(const PGresult *res, int row, int col);
/* 1 if boolean column col of row is true. */
int	ctl_bool(const PGresult *res, int row, int col);
/* 1 if stdout could be written so far (fflush and check); otherwise prints an error. */
int	ctl_stdout_ok(void);

#endif
