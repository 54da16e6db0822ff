/* ctl_db.c: idpctl's blocking libpq connection, statements, transactions and errors. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "idp.h"
#include "log.h"
#include "xalloc.h"

/*
 * idpctl is a one-shot tool, so it talks to PostgreSQL with blocking calls. What it
 * prints about the database is held to two rules: one line per error (libpq's
 * messages span several), and never the password. The password can reach a message
 * two ways: from a connection string libpq could not parse (it quotes the bad part,
 * which may be the password itself, as in 'invalid percent-encoded token: "..."'), and,
 * in principle, from a connection failure. The first is handled by blanking every
 * quoted part of the message that comes from the connection string and is not a
 * keyword; the second by blanking the parsed password wherever it appears.
 */

/* Make msg one line in place: runs of white space become one space, ends trimmed. */
static void
ctl_oneline(char *msg)
{
	char *r, *w;
	int space = 0;

	for (r = w = msg; *r != '\0'; r++) {
		if (isspace((unsigned char)*r) || iscntrl((unsigned char)*r)) {
			space = 1;
			continue;
		}
		if (space && w != msg)
			*w++ = ' ';
		space = 0;
		*w++ = *r;
	}
	*w = '\0';
}

/* 1 if s (of len bytes) is a libpq connection keyword. */
static int
ctl_db_is_keyword(const char *s, size_t len)
{
	PQconninfoOption *opts, *o;
	int found = 0;

	if ((opts = PQconndefaults()) == NULL)
		return 0;
	for (o = opts; o->keyword != NULL; o++)
		if (strlen(o->keyword) == len && strncmp(o->keyword, s, len) == 0)
			found = 1;
	PQconninfoFree(opts);
	return found;
}

/*
 * A new copy of libpq's message msg, one line, with every occurrence of password (if
 * not NULL or empty) and every double-quoted part that occurs in conninfo (if not
 * NULL) and is neither "=" nor a keyword replaced by "***". The caller frees it.
 */
static char *
ctl_db_scrub(const char *msg, const char *conninfo, const char *password)
{
	char *out, *p, *q, *hit, *tmp;
	size_t len, plen, off = 0;

	out = xstrdup(msg);
	if (password != NULL && (plen = strlen(password)) > 0) {
		/* Search on after each "***": the password may be "*". */
		while ((hit = strstr(out + off, password)) != NULL) {
			*hit = '\0';
			off = strlen(out) + 3;
			tmp = xasprintf("%s***%s", out, hit + plen);
			free(out);
			out = tmp;
		}
	}
	if (conninfo != NULL) {
		for (p = out; (p = strchr(p, '"')) != NULL; p = q + 1) {
			if ((q = strchr(p + 1, '"')) == NULL)
				break;
			len = (size_t)(q - p - 1);
			if (len == 0 || (len == 1 && p[1] == '=') ||
			    ctl_db_is_keyword(p + 1, len))
				continue;
			tmp = xstrndup(p + 1, len);
			hit = strstr(conninfo, tmp);
			free(tmp);
			if (hit == NULL)
				continue;
			*p = '\0';
			tmp = xasprintf("%s\"***%s", out, q);
			q = tmp + strlen(out) + 4;	/* the closing quote */
			free(out);
			out = tmp;
		}
	}
	ctl_oneline(out);
	return out;
}

/* Discard NOTICEs (CREATE ... IF NOT EXISTS says "skipping"); show WARNINGs. */
static void
ctl_db_notice(void *arg, const PGresult *res)
{
	const char *sev, *msg;
	char *line;

	sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (sev == NULL || msg == NULL || strcmp(sev, "WARNING") != 0)
		return;
	line = xstrdup(msg);
	ctl_oneline(line);
	log_warnx("database: %s", line);
	free(line);
}

/* Read the configuration file for its database key only: idpctl needs nothing else
 * from it, and a file the daemon would refuse for another reason must not stop idpctl.
 * IDP_DATABASE, as for idp, wins over the file: ctl_db_connect sees to it. */
static int
ctl_db_read_config(struct ctl *c)
{
	struct idp_config cfg;
	char err[512];

	memset(&cfg, 0, sizeof(cfg));
	if (config_load(idp_config_keys, idp_config_nkeys, &cfg, c->config_file, NULL,
	    err, sizeof(err)) == -1) {
		log_error("%s", err);
		return -1;
	}
	free(c->cfg_database);
	c->cfg_database = cfg.database;
	cfg.database = NULL;
	config_free(idp_config_keys, idp_config_nkeys, &cfg);
	return 0;
}

/* 1 if libpq would read s as a connection string or URI rather than a database name. */
static int
ctl_db_is_conninfo(const char *s)
{
	return strchr(s, '=') != NULL || strncmp(s, "postgresql://", 13) == 0 ||
	    strncmp(s, "postgres://", 11) == 0;
}

int
ctl_db_connect(struct ctl *c)
{
	/* Ours first: what the connection string says overrides them. */
	static const char *keys[] = { "fallback_application_name", "client_encoding",
	    "dbname", NULL };
	PQconninfoOption *opts = NULL, *o;
	const char *conninfo, *source, *password = NULL, *vals[4];
	char *perr = NULL, *msg, srcbuf[256];

	if (c->conninfo == NULL && c->config_file != NULL &&
	    ctl_db_read_config(c) == -1)
		return -1;
	if (c->conninfo != NULL) {
		conninfo = c->conninfo;
		source = "-d";
	} else if ((conninfo = getenv("IDP_DATABASE")) != NULL && *conninfo != '\0') {
		/* As for idp itself: the environment overrides the file. */
		source = "IDP_DATABASE";
	} else if (c->cfg_database != NULL && *c->cfg_database != '\0') {
		conninfo = c->cfg_database;
		snprintf(srcbuf, sizeof(srcbuf), "database in %s", c->config_file);
		source = srcbuf;
	} else {
		conninfo = "";
		source = "libpq defaults";
	}

	if (ctl_db_is_conninfo(conninfo)) {
		if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
			msg = ctl_db_scrub(perr != NULL ? perr : "out of memory",
			    conninfo, NULL);
			log_error("bad connection string (%s): %s", source, msg);
			free(msg);
			PQfreemem(perr);
			return -1;
		}
		for (o = opts; o->keyword != NULL; o++)
			if (strcmp(o->keyword, "password") == 0)
				password = o->val;
	}

	vals[0] = "idpctl";
	vals[1] = "UTF8";
	vals[2] = conninfo;
	vals[3] = NULL;
	c->db = PQconnectdbParams(keys, vals, 1);
	if (c->db == NULL)
		fatalx("PQconnectdbParams: out of memory");
	if (PQstatus(c->db) != CONNECTION_OK) {
		msg = ctl_db_scrub(PQerrorMessage(c->db), NULL, password);
		log_error("cannot connect to the database (%s): %s", source, msg);
		free(msg);
		PQfinish(c->db);
		c->db = NULL;
		if (opts != NULL)
			PQconninfoFree(opts);
		return -1;
	}
	if (opts != NULL)
		PQconninfoFree(opts);
	PQsetNoticeReceiver(c->db, ctl_db_notice, NULL);
	return 0;
}

void
ctl_db_error(struct ctl *c, const char *what, const PGresult *res)
{
	const char *primary = NULL, *detail = NULL, *state = NULL, *hint = "";
	char *msg;

	if (res != NULL) {
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	}
	if (primary == NULL)
		primary = PQerrorMessage(c->db);
	/* 42P01 undefined_table, 42703 undefined_column: an old or empty schema. */
	if (state != NULL && (strcmp(state, "42P01") == 0 ||
	    strcmp(state, "42703") == 0))
		hint = " (has 'idpctl migrate' been run with this idpctl?)";
	if (detail != NULL)
		msg = xasprintf("%s: %s (%s)%s", what, primary, detail, hint);
	else
		msg = xasprintf("%s: %s%s", what, primary, hint);
	ctl_oneline(msg);
	log_error("%s", msg);
	free(msg);
}

PGresult *
ctl_db_exec(struct ctl *c, const char *what, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res;
	ExecStatusType st;

	res = PQexecParams(c->db, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	ctl_db_error(c, what, res);
	PQclear(res);
	return NULL;
}

PGresult *
ctl_db_query(struct ctl *c, const char *what, const char *sql, int nparams,
    const char *const *params)
{
	if (c->db == NULL && ctl_db_connect(c) == -1)
		return NULL;
	return ctl_db_exec(c, what, sql, nparams, params);
}

int
ctl_db_cmd(struct ctl *c, const char *what, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res;

	if ((res = ctl_db_exec(c, what, sql, nparams, params)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
ctl_db_begin(struct ctl *c)
{
	return ctl_db_cmd(c, "begin", "BEGIN", 0, NULL);
}

int
ctl_db_commit(struct ctl *c)
{
	return ctl_db_cmd(c, "commit", "COMMIT", 0, NULL);
}

void
ctl_db_rollback(struct ctl *c)
{
	PGresult *res;

	if (c->db == NULL || PQtransactionStatus(c->db) == PQTRANS_IDLE)
		return;
	res = PQexec(c->db, "ROLLBACK");
	PQclear(res);
}
