/* ctl_migrate.c: `idpctl migrate`: apply the embedded sql/NNN_*.sql migrations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "log.h"
#include "xalloc.h"

/*
 * Each migration runs in its own transaction, which first takes a transaction-scoped
 * advisory lock, then creates schema_migrations if it is missing, then checks whether
 * the migration is recorded there: so two idpctl runs at once (two hosts deploying)
 * queue on the lock and the second one finds the work done. The migration and the row
 * that records it commit together or not at all. A migration file must therefore not
 * contain BEGIN/COMMIT of its own; one that ends the transaction is caught and rolled
 * back as far as PostgreSQL still can.
 */

static const char ctl_sql_lock[] =
	"SELECT pg_advisory_xact_lock($1::bigint)";
static const char ctl_sql_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" version text PRIMARY KEY,"
	" applied_at timestamptz NOT NULL DEFAULT now())";
static const char ctl_sql_applied[] =
	"SELECT 1 FROM schema_migrations WHERE version = $1";
static const char ctl_sql_record[] =
	"INSERT INTO schema_migrations (version) VALUES ($1)";
static const char ctl_sql_unknown[] =
	"SELECT version FROM schema_migrations"
	" WHERE version <> ALL ($1::text[]) ORDER BY version";

/* Apply migration m unless it is recorded. 1 if applied, 0 if it was there, -1 on
 * error (reported; the transaction is rolled back). */
static int
ctl_migrate_one(struct ctl *c, const struct ctl_migration *m)
{
	const char *lock[1] = { CTL_MIGRATE_LOCK }, *name[1] = { m->name };
	PGresult *res;
	char what[128];
	int done;

	if (ctl_db_begin(c) == -1)
		return -1;
	if (ctl_db_cmd(c, "migrate: lock", ctl_sql_lock, 1, lock) == -1 ||
	    ctl_db_cmd(c, "migrate: schema_migrations", ctl_sql_table, 0, NULL) == -1 ||
	    (res = ctl_db_exec(c, "migrate: schema_migrations", ctl_sql_applied, 1,
	    name)) == NULL)
		goto fail;
	done = PQntuples(res) > 0;
	PQclear(res);
	if (done) {
		ctl_db_rollback(c);
		return 0;
	}

	/* The simple query protocol: a migration is many statements, no parameters. */
	res = PQexec(c->db, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_EMPTY_QUERY) {	/* only comments */
		snprintf(what, sizeof(what), "migrate: %s", m->name);
		ctl_db_error(c, what, res);
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	if (PQtransactionStatus(c->db) != PQTRANS_INTRANS) {
		log_error("migrate: %s ends the transaction itself (BEGIN/COMMIT in a "
		    "migration file is not allowed)", m->name);
		goto fail;
	}
	if (ctl_db_cmd(c, "migrate: record", ctl_sql_record, 1, name) == -1 ||
	    ctl_db_commit(c) == -1)
		goto fail;
	return 1;

 fail:
	ctl_db_rollback(c);
	return -1;
}

/* The text[] literal of every embedded migration name (names are [0-9a-z_.], which
 * need no quoting); the caller frees it. */
static char *
ctl_migrate_names(void)
{
	char *s, *t;
	size_t i;

	s = xstrdup("{");
	for (i = 0; i < ctl_nmigrations; i++) {
		t = xasprintf("%s%s%s", s, i > 0 ? "," : "", ctl_migrations[i].name);
		free(s);
		s = t;
	}
	t = xasprintf("%s}", s);
	free(s);
	return t;
}

int
ctl_migrate(struct ctl *c, int argc, char **argv)
{
	const char *params[1];
	PGresult *res;
	size_t i, napplied = 0;
	char *names;
	int r;

	if ((r = ctl_opts("migrate", argc, argv, NULL, 0,
	    "takes no arguments")) != CTL_OK)
		return r;
	if (ctl_db_connect(c) == -1)
		return CTL_FAIL;

	for (i = 0; i < ctl_nmigrations; i++) {
		if ((r = ctl_migrate_one(c, &ctl_migrations[i])) == -1)
			return CTL_FAIL;
		if (r == 1) {
			printf("applied %s\n", ctl_migrations[i].name);
			napplied++;
		}
	}
	if (napplied == 0)
		printf("schema up to date (%s)\n",
		    ctl_migrations[ctl_nmigrations - 1].name);

	/* A database migrated by a newer idpctl: say so, it is not an error. */
	names = ctl_migrate_names();
	params[0] = names;
	res = ctl_db_exec(c, "migrate: schema_migrations", ctl_sql_unknown, 1, params);
	free(names);
	if (res == NULL)
		return CTL_FAIL;
	for (r = 0; r < PQntuples(res); r++)
		log_warnx("the database has migration %s, which this idpctl does not "
		    "know (made by a newer version?)", PQgetvalue(res, r, 0));
	PQclear(res);
	return CTL_OK;
}
