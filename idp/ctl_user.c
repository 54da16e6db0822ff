/* ctl_user.c: idpctl's user commands: add, passwd, disable, enable, roles, list, show. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "ctl.h"
#include "log.h"
#include "secret.h"
#include "xalloc.h"

/*
 * A password reaches idpctl only on standard input (--password-stdin): never in argv,
 * which every user of the host can read in /proc, nor in the environment. It is read
 * with read(2) straight into sodium_malloc'd memory (stdio would keep a copy in its
 * buffer), never echoed (on a terminal, echo is turned off while it is typed), hashed
 * with Argon2id before the database is even connected, and zeroed at once. The
 * database sees only the crypto_pwhash_str string.
 *
 * A user is named on the command line by username (case-insensitive, as the unique
 * index on lower(username) has it) or by id. An id match wins: ids are random and
 * shown by user add, and user add refuses a username that is another user's id.
 *
 * Disabling a user or setting a new password also signs the user out everywhere: the
 * user's sessions end, refresh-token families are revoked, and access tokens the
 * database knows of go into revoked_jtis (sql/002_users.sql).
 */

#define CTL_PW_MAX		1024	/* bytes */
#define CTL_USERNAME_MAX	100
#define CTL_EMAIL_MAX		254	/* RFC 5321's path limit, less the brackets */
#define CTL_NAME_MAX		200
#define CTL_ROLE_MAX		100

static const char ctl_sql_user_insert[] =
	"INSERT INTO users (id, username, email, email_verified, name, password_hash,"
	" roles)"
	" SELECT $1, $2, $3, $4::boolean, $5, $6,"
	" ARRAY(SELECT r FROM jsonb_array_elements_text($7::jsonb) WITH ORDINALITY"
	" AS t(r, n) ORDER BY n)";
static const char ctl_sql_user_is_id[] =
	"SELECT 1 FROM users WHERE id = $1";
/* $1 is a username or an id; an id match first. */
static const char ctl_sql_user_lock[] =
	"SELECT id, username, $2 = ANY (roles) FROM users"
	" WHERE id = $1 OR lower(username) = lower($1)"
	" ORDER BY id = $1 DESC LIMIT 1 FOR UPDATE";
static const char ctl_sql_user_passwd[] =
	"UPDATE users SET password_hash = $2, password_changed_at = now(),"
	" updated_at = now() WHERE id = $1";
static const char ctl_sql_user_able[] =
	"UPDATE users SET disabled = $2::boolean, updated_at = now() WHERE id = $1";
static const char ctl_sql_role_add[] =
	"UPDATE users SET roles = array_append(roles, $2), updated_at = now()"
	" WHERE id = $1";
static const char ctl_sql_role_remove[] =
	"UPDATE users SET roles = array_remove(roles, $2), updated_at = now()"
	" WHERE id = $1";
/* End user $1's sessions, revoke its refresh families (reason $2) and the access
 * tokens recorded as issued to it that have not expired. Counts of each. */
static const char ctl_sql_user_signout[] =
	"WITH s AS (UPDATE sessions SET ended_at = now()"
	"  WHERE user_id = $1 AND ended_at IS NULL AND absolute_expires_at > now()"
	"  RETURNING 1),"
	" f AS (UPDATE refresh_families SET revoked_at = now(), revoke_reason = $2"
	"  WHERE user_id = $1 AND revoked_at IS NULL RETURNING 1),"
	" a AS (SELECT access_jti, client_id, access_expires_at FROM refresh_tokens"
	"  WHERE user_id = $1 AND access_jti IS NOT NULL AND access_expires_at > now()"
	"  UNION SELECT access_jti, client_id, access_expires_at FROM auth_codes"
	"  WHERE user_id = $1 AND access_jti IS NOT NULL AND access_expires_at > now()),"
	" j AS (INSERT INTO revoked_jtis (jti, client_id, expires_at)"
	"  SELECT access_jti, client_id, access_expires_at FROM a"
	"  ON CONFLICT (jti) DO NOTHING RETURNING 1)"
	" SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM f),"
	" (SELECT count(*) FROM j)";
static const char ctl_sql_user_list[] =
	"SELECT id, username, email, name, to_json(roles), disabled, "
	CTL_TS("created_at") " FROM users ORDER BY lower(username), id";
static const char ctl_sql_user_show[] =
	"SELECT u.id, u.username, u.email, u.email_verified, u.name, to_json(u.roles),"
	" u.disabled, " CTL_TS("u.created_at") ", " CTL_TS("u.updated_at") ","
	" " CTL_TS("u.password_changed_at") ","
	" (SELECT count(*) FROM sessions s WHERE s.user_id = u.id"
	"  AND s.ended_at IS NULL AND s.absolute_expires_at > now()),"
	" (SELECT count(*) FROM refresh_families f WHERE f.user_id = u.id"
	"  AND f.revoked_at IS NULL),"
	" (SELECT COALESCE(json_agg(json_build_object('client_id', c.client_id,"
	"  'scopes', c.scopes, 'granted_at', " CTL_TS("c.granted_at") ")"
	"  ORDER BY c.client_id), '[]') FROM consents c WHERE c.user_id = u.id)"
	" FROM users u WHERE u.id = $1 OR lower(u.username) = lower($1)"
	" ORDER BY u.id = $1 DESC LIMIT 1";

/* --json of user list: a row of ctl_sql_user_list. */
static const struct ctl_col ctl_user_list_cols[] = {
	{ "user_id", CTL_COL_TEXT },
	{ "username", CTL_COL_TEXT },
	{ "email", CTL_COL_TEXT },
	{ "name", CTL_COL_TEXT },
	{ "roles", CTL_COL_JSON },
	{ "disabled", CTL_COL_BOOL },
	{ "created_at", CTL_COL_TEXT },
	{ NULL, 0 },
};
/* user show: the row of ctl_sql_user_show. */
static const struct ctl_col ctl_user_show_cols[] = {
	{ "user_id", CTL_COL_TEXT },
	{ "username", CTL_COL_TEXT },
	{ "email", CTL_COL_TEXT },
	{ "email_verified", CTL_COL_BOOL },
	{ "name", CTL_COL_TEXT },
	{ "roles", CTL_COL_JSON },
	{ "disabled", CTL_COL_BOOL },
	{ "created_at", CTL_COL_TEXT },
	{ "updated_at", CTL_COL_TEXT },
	{ "password_changed_at", CTL_COL_TEXT },
	{ "live_sessions", CTL_COL_INT },
	{ "live_refresh_families", CTL_COL_INT },
	{ "consents", CTL_COL_JSON },
	{ NULL, 0 },
};

/* What a command that names one user says when it gets another count of operands. */
#define CTL_NEED_USER	"needs a USER (username or id)"

/* 1 if s (len bytes) is well-formed UTF-8: no overlong forms, surrogates or code
 * points above U+10FFFF. */
static int
ctl_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	unsigned long cp, min;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/*
 * Check a text option: at most max bytes, UTF-8, no control characters and, if
 * no_space, no spaces. Returns NULL or why it is refused.
 */
static const char *
ctl_text_check(const char *s, size_t max, int no_space)
{
	const unsigned char *p;

	if (*s == '\0')
		return "is empty";
	if (strlen(s) > max)
		return "is too long";
	if (!ctl_utf8_valid((const unsigned char *)s, strlen(s)))
		return "is not UTF-8";
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || (no_space && *p == ' '))
			return no_space ? "has spaces or control characters" :
			    "has control characters";
	return NULL;
}

/* Check a username. NULL or why it is refused. */
static const char *
ctl_username_check(const char *s)
{
	const char *why;

	if ((why = ctl_text_check(s, CTL_USERNAME_MAX, 1)) != NULL)
		return why;
	if (strchr(s, '@') != NULL)
		return "has an '@' (an email goes in --email; usernames and emails are "
		    "kept apart so that one login field takes either)";
	if (*s == '-')
		return "begins with '-'";
	return NULL;
}

/* Check an email address (no full RFC 5322 parse: something@something). NULL or why
 * it is refused. */
static const char *
ctl_email_check(const char *s)
{
	const char *why, *at;

	if ((why = ctl_text_check(s, CTL_EMAIL_MAX, 1)) != NULL)
		return why;
	if ((at = strrchr(s, '@')) == NULL || at == s || at[1] == '\0')
		return "is not an address (local@domain)";
	return NULL;
}

/* Check a role: a scope-like token (RFC 6749 section 3.3's characters: printable
 * ASCII but space, '"' and '\'). NULL or why it is refused. */
static const char *
ctl_role_check(const char *s)
{
	const char *p;

	if (*s == '\0')
		return "is empty";
	if (strlen(s) > CTL_ROLE_MAX)
		return "is too long";
	for (p = s; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
			return "may hold only printable ASCII without spaces, '\"' or '\\'";
	return NULL;
}

/*
 * Read the password from standard input: all of it up to end of file (or, from a
 * terminal, one line, typed without echo), then one trailing "\n" or "\r\n" removed.
 * It must then be one line of 1 to CTL_PW_MAX bytes of UTF-8 without NUL. On success
 * *pw is a sodium_malloc'd, NUL-terminated buffer (the caller frees it with
 * sodium_free, which zeroes it) and *len the password's length; returns 0. Otherwise
 * prints why and returns -1.
 */
static int
ctl_password_read(const char *cmd, const char *who, char **pw, size_t *len)
{
	const size_t cap = CTL_PW_MAX + 3;	/* "\r\n", and one byte to see excess */
	struct termios old, quiet;
	char *buf;
	size_t n = 0;
	ssize_t r;
	int tty, echo_off = 0, err = 0;

	*pw = NULL;
	*len = 0;
	if ((buf = sodium_malloc(cap + 1)) == NULL)
		fatalx("sodium_malloc: out of memory");
	if ((tty = isatty(STDIN_FILENO)) && tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0)
			echo_off = 1;
		fprintf(stderr, "Password for %s (not echoed): ", who);
		fflush(stderr);
	}
	while (n < cap) {
		if ((r = read(STDIN_FILENO, buf + n, cap - n)) == -1) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (tty && buf[n - 1] == '\n')
			break;
	}
	if (echo_off) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}

	if (err != 0) {
		log_error("%s: reading the password from standard input: %s", cmd,
		    strerror(err));
		goto fail;
	}
	if (n == cap) {
		log_error("%s: the password is longer than %d bytes", cmd, CTL_PW_MAX);
		goto fail;
	}
	if (n > 0 && buf[n - 1] == '\n') {
		n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
	}
	buf[n] = '\0';
	if (n == 0) {
		log_error("%s: the password is empty (it is read from standard input)",
		    cmd);
		goto fail;
	}
	if (n > CTL_PW_MAX) {
		log_error("%s: the password is longer than %d bytes", cmd, CTL_PW_MAX);
		goto fail;
	}
	if (memchr(buf, '\n', n) != NULL || memchr(buf, '\r', n) != NULL) {
		log_error("%s: standard input holds more than one line (give the "
		    "password alone, on one line)", cmd);
		goto fail;
	}
	if (memchr(buf, '\0', n) != NULL) {
		log_error("%s: the password holds a NUL byte", cmd);
		goto fail;
	}
	if (!ctl_utf8_valid((const unsigned char *)buf, n)) {
		log_error("%s: the password is not UTF-8 (browsers send UTF-8, so it "
		    "could never match)", cmd);
		goto fail;
	}
	*pw = buf;
	*len = n;
	return 0;

 fail:
	sodium_memzero(buf, cap + 1);
	sodium_free(buf);
	return -1;
}

/* Read the password (ctl_password_read) and hash it into hash; the password is zeroed
 * and freed here whatever happens. 0, or -1 (reported). */
static int
ctl_password_hash(const char *cmd, const char *who, char hash[SECRET_HASH_MAX])
{
	char *pw;
	size_t len;
	int rv;

	if (ctl_password_read(cmd, who, &pw, &len) == -1)
		return -1;
	rv = secret_hash(pw, len, 0, 0, hash);
	sodium_memzero(pw, len);
	sodium_free(pw);
	if (rv == -1)
		log_error("%s: hashing the password failed (out of memory?)", cmd);
	return rv;
}

/* Report that --password-stdin is missing from cmd. Returns CTL_USAGE. */
static int
ctl_need_pwstdin(const char *cmd)
{
	return ctl_usage(cmd, "--password-stdin is required (the password is read from "
	    "standard input, never from the command line)");
}

/* A user that ctl_user_lock found and locked; the strings are its own. */
struct ctl_user {
	char	*id, *username;
	int	 has_role;
};

/*
 * Connect, begin a transaction and in it find and lock user who (a username, any
 * case, or an id) into u, with whether it has role (may be NULL). The caller ends it
 * with ctl_user_unlock whatever this returns: 0, or -1 when that failed or there is
 * no such user (reported).
 */
static int
ctl_user_lock(struct ctl *c, const char *cmd, const char *who, const char *role,
    struct ctl_user *u)
{
	const char *params[2] = { who, role };
	PGresult *res;

	memset(u, 0, sizeof(*u));
	if (ctl_db_connect(c) == -1 || ctl_db_begin(c) == -1 ||
	    (res = ctl_db_exec(c, cmd, ctl_sql_user_lock, 2, params)) == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		log_error("no such user: %s", who);
		PQclear(res);
		return -1;
	}
	u->id = xstrdup(PQgetvalue(res, 0, 0));
	u->username = xstrdup(PQgetvalue(res, 0, 1));
	u->has_role = ctl_bool(res, 0, 2);
	PQclear(res);
	return 0;
}

/* End what ctl_user_lock began: roll back the transaction unless it was committed,
 * and free u's strings. */
static void
ctl_user_unlock(struct ctl *c, struct ctl_user *u)
{
	ctl_db_rollback(c);
	free(u->id);
	free(u->username);
	memset(u, 0, sizeof(*u));
}

/* "s" unless n is 1. */
static const char *
ctl_plural(long long n)
{
	return n == 1 ? "" : "s";
}

/*
 * Sign user id out everywhere (ctl_sql_user_signout, reason for the families) inside
 * the caller's transaction, and put what was done into msg. 0, or -1 (reported).
 */
static int
ctl_user_signout(struct ctl *c, const char *cmd, const char *id, const char *reason,
    char *msg, size_t msglen)
{
	const char *params[2] = { id, reason };
	PGresult *res;
	long long s, f, j;

	if ((res = ctl_db_exec(c, cmd, ctl_sql_user_signout, 2, params)) == NULL)
		return -1;
	s = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	f = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	j = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	snprintf(msg, msglen, "ended %lld session%s, revoked %lld refresh token "
	    "famil%s and %lld access token%s", s, ctl_plural(s), f, f == 1 ? "y" : "ies",
	    j, ctl_plural(j));
	return 0;
}

/* Options of user add, as given. roles is a JSON array of distinct strings. */
struct ctl_user_add {
	const char	*username, *email, *name;
	json_t		*roles;
	int		 email_verified, pwstdin, json;
};

/* Check a's options. CTL_OK or CTL_USAGE (reported). */
static int
ctl_user_add_check(const struct ctl_user_add *a)
{
	static const char cmd[] = "user add";
	const char *why;

	if (a->username == NULL)
		return ctl_usage(cmd, "--username is required");
	if ((why = ctl_username_check(a->username)) != NULL)
		return ctl_usage(cmd, "--username %s", why);
	if (a->email != NULL && (why = ctl_email_check(a->email)) != NULL)
		return ctl_usage(cmd, "--email %s", why);
	if (a->email == NULL && a->email_verified)
		return ctl_usage(cmd, "--email-verified needs --email");
	if (a->name != NULL && (why = ctl_text_check(a->name, CTL_NAME_MAX, 0)) != NULL)
		return ctl_usage(cmd, "--name %s", why);
	if (!a->pwstdin)
		return ctl_need_pwstdin(cmd);
	return CTL_OK;
}

/* A ctl_opts CTL_OPT_EACH taker for --role: check it and add it to the roles of the
 * struct ctl_user_add a unless it is there. */
static int
ctl_role_opt(const char *cmd, const char *role, void *a)
{
	json_t *roles = ((struct ctl_user_add *)a)->roles;
	const json_t *v;
	const char *why;
	size_t i;

	if ((why = ctl_role_check(role)) != NULL)
		return ctl_usage(cmd, "--role '%s' %s", role, why);
	json_array_foreach(roles, i, v)
		if (strcmp(json_string_value(v), role) == 0)
			return CTL_OK;
	json_array_append_new(roles, json_string(role));
	return CTL_OK;
}

/*
 * INSERT the new user (params as ctl_sql_user_insert has them), telling a taken
 * username or email apart from other failures. 0, or -1 (reported).
 */
static int
ctl_user_insert(struct ctl *c, const char *const *params)
{
	PGresult *res;
	const char *state, *constraint;
	int rv = -1;

	res = PQexecParams(c->db, ctl_sql_user_insert, 7, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		rv = 0;
	else if ((state = PQresultErrorField(res, PG_DIAG_SQLSTATE)) != NULL &&
	    strcmp(state, "23505") == 0 &&
	    (constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)) != NULL &&
	    strcmp(constraint, "users_username_lower") == 0)
		log_error("user add: a user named '%s' already exists (usernames are "
		    "case-insensitive)", params[1]);
	else if (state != NULL && strcmp(state, "23505") == 0 && constraint != NULL &&
	    strcmp(constraint, "users_email_lower") == 0)
		log_error("user add: another user has the email '%s' (emails are "
		    "case-insensitive)", params[2]);
	else
		ctl_db_error(c, "user add", res);
	PQclear(res);
	return rv;
}

int
ctl_user_add(struct ctl *c, int argc, char **argv)
{
	static const char cmd[] = "user add";
	struct ctl_user_add a;
	const char *params[7];
	char *id = NULL, *roles = NULL, hash[SECRET_HASH_MAX];
	PGresult *res;
	json_t *o;
	int rv, taken;
	struct ctl_opt opts[] = {
		{ "username", CTL_OPT_ONCE, &a.username, NULL },
		{ "email", CTL_OPT_ONCE, &a.email, NULL },
		{ "email-verified", CTL_OPT_FLAG, &a.email_verified, NULL },
		{ "name", CTL_OPT_ONCE, &a.name, NULL },
		{ "role", CTL_OPT_EACH, &a, ctl_role_opt },
		{ "password-stdin", CTL_OPT_FLAG, &a.pwstdin, NULL },
		{ "json", CTL_OPT_FLAG, &a.json, NULL },
		{ NULL, 0, NULL, NULL },
	};

	memset(&a, 0, sizeof(a));
	memset(hash, 0, sizeof(hash));
	a.roles = json_array();
	rv = ctl_opts(cmd, argc, argv, opts, 0, NULL);
	if (rv == CTL_OK)
		rv = ctl_user_add_check(&a);
	if (rv != CTL_OK)
		goto done;
	rv = CTL_FAIL;
	if (ctl_password_hash(cmd, a.username, hash) == -1)
		goto done;
	if (ctl_db_connect(c) == -1)
		goto done;

	id = ctl_new_id();
	if ((roles = json_dumps(a.roles, JSON_COMPACT)) == NULL)
		fatalx("json_dumps: out of memory");
	params[0] = id;
	params[1] = a.username;
	params[2] = a.email;
	params[3] = a.email_verified ? "true" : "false";
	params[4] = a.name;
	params[5] = hash;
	params[6] = roles;
	if (ctl_db_begin(c) == -1 ||
	    (res = ctl_db_exec(c, cmd, ctl_sql_user_is_id, 1, &a.username)) == NULL)
		goto done;
	taken = PQntuples(res) > 0;
	PQclear(res);
	if (taken) {
		log_error("%s: '%s' is another user's id and cannot be a username",
		    cmd, a.username);
		goto done;
	}
	if (ctl_user_insert(c, params) == -1 || ctl_db_commit(c) == -1)
		goto done;

	if (a.json) {
		o = json_object();
		json_object_set_new(o, "user_id", json_string(id));
		json_object_set_new(o, "username", json_string(a.username));
		ctl_json_print(o);
		json_decref(o);
	} else {
		printf("user_id:  %s\n", id);
		printf("username: %s\n", a.username);
	}
	rv = CTL_OK;

 done:
	ctl_db_rollback(c);
	sodium_memzero(hash, sizeof(hash));
	free(roles);
	free(id);
	json_decref(a.roles);
	return rv;
}

int
ctl_user_passwd(struct ctl *c, int argc, char **argv)
{
	static const char cmd[] = "user passwd";
	struct ctl_user u;
	const char *params[2];
	char hash[SECRET_HASH_MAX], msg[160];
	int pwstdin = 0, rv;
	struct ctl_opt opts[] = {
		{ "password-stdin", CTL_OPT_FLAG, &pwstdin, NULL },
		{ NULL, 0, NULL, NULL },
	};

	if ((rv = ctl_opts(cmd, argc, argv, opts, 1, CTL_NEED_USER)) != CTL_OK)
		return rv;
	if (!pwstdin)
		return ctl_need_pwstdin(cmd);
	memset(&u, 0, sizeof(u));
	memset(hash, 0, sizeof(hash));
	rv = CTL_FAIL;
	if (ctl_password_hash(cmd, argv[optind], hash) == -1 ||
	    ctl_user_lock(c, cmd, argv[optind], NULL, &u) == -1)
		goto done;
	params[0] = u.id;
	params[1] = hash;
	if (ctl_db_cmd(c, cmd, ctl_sql_user_passwd, 2, params) == -1 ||
	    ctl_user_signout(c, cmd, u.id, "password_changed", msg, sizeof(msg)) == -1 ||
	    ctl_db_commit(c) == -1)
		goto done;
	printf("password of user %s (%s) changed; %s\n", u.username, u.id, msg);
	rv = CTL_OK;

 done:
	ctl_user_unlock(c, &u);
	sodium_memzero(hash, sizeof(hash));
	return rv;
}

/* user disable and user enable (argv[0] says which). */
int
ctl_user_able(struct ctl *c, int argc, char **argv)
{
	int disable = strcmp(argv[0], "disable") == 0;
	const char *cmd = disable ? "user disable" : "user enable";
	struct ctl_user u;
	const char *params[2];
	char msg[160];
	int rv;

	if ((rv = ctl_opts(cmd, argc, argv, NULL, 1, CTL_NEED_USER)) != CTL_OK)
		return rv;
	rv = CTL_FAIL;
	if (ctl_user_lock(c, cmd, argv[optind], NULL, &u) == -1)
		goto done;
	params[0] = u.id;
	params[1] = disable ? "true" : "false";
	if (ctl_db_cmd(c, cmd, ctl_sql_user_able, 2, params) == -1 ||
	    (disable && ctl_user_signout(c, cmd, u.id, "user_disabled", msg,
	    sizeof(msg)) == -1) || ctl_db_commit(c) == -1)
		goto done;
	if (disable)
		printf("user %s (%s) disabled: cannot sign in until enabled again; "
		    "%s\n", u.username, u.id, msg);
	else
		printf("user %s (%s) enabled\n", u.username, u.id);
	rv = CTL_OK;

 done:
	ctl_user_unlock(c, &u);
	return rv;
}

/* user role add and user role remove (argv[0] says which): the end state is what
 * counts, so adding a role the user has, or removing one it lacks, changes nothing
 * and succeeds. */
int
ctl_user_role(struct ctl *c, int argc, char **argv)
{
	int add = strcmp(argv[0], "add") == 0;
	const char *cmd = add ? "user role add" : "user role remove";
	struct ctl_user u;
	const char *params[2], *why;
	int rv;

	if ((rv = ctl_opts(cmd, argc, argv, NULL, 2,
	    "needs a USER (username or id) and a ROLE")) != CTL_OK)
		return rv;
	params[1] = argv[optind + 1];
	if (add && (why = ctl_role_check(params[1])) != NULL)
		return ctl_usage(cmd, "ROLE '%s' %s", params[1], why);
	rv = CTL_FAIL;
	if (ctl_user_lock(c, cmd, argv[optind], params[1], &u) == -1)
		goto done;
	params[0] = u.id;
	if (add == u.has_role) {
		printf("user %s (%s) %s role %s; nothing changed\n", u.username, u.id,
		    add ? "already has" : "does not have", params[1]);
		rv = CTL_OK;
		goto done;
	}
	if (ctl_db_cmd(c, cmd, add ? ctl_sql_role_add : ctl_sql_role_remove, 2,
	    params) == -1 || ctl_db_commit(c) == -1)
		goto done;
	printf("user %s (%s): role %s %s\n", u.username, u.id, params[1],
	    add ? "added" : "removed");
	rv = CTL_OK;

 done:
	ctl_user_unlock(c, &u);
	return rv;
}

int
ctl_user_list(struct ctl *c, int argc, char **argv)
{
	PGresult *res;
	json_t *roles;
	char *rtext;
	int json = 0, i, n, w, rv;

	if ((rv = ctl_opts_json("user list", argc, argv, &json, 0,
	    "needs no arguments")) != CTL_OK)
		return rv;
	if ((res = ctl_db_query(c, "user list", ctl_sql_user_list, 0, NULL)) == NULL)
		return CTL_FAIL;
	n = PQntuples(res);
	if (json) {
		ctl_json_print_rows(res, ctl_user_list_cols);
	} else if (n == 0)
		printf("no users (add one with: idpctl user add --username U "
		    "--password-stdin)\n");
	else {
		w = ctl_col_width(res, 1, 8);
		printf("%-22s  %-*s  %-8s  %-20s  %-20s  %s\n", "USER_ID", w, "USERNAME",
		    "STATE", "CREATED", "ROLES", "EMAIL");
		for (i = 0; i < n; i++) {
			roles = ctl_json_column(res, i, 4);
			rtext = ctl_json_join(roles, " ");
			printf("%-22s  %-*s  %-8s  %-20s  %-20s  %s\n",
			    PQgetvalue(res, i, 0), w, PQgetvalue(res, i, 1),
			    ctl_bool(res, i, 5) ? "disabled" : "enabled",
			    PQgetvalue(res, i, 6), rtext, ctl_text_or_dash(res, i, 2));
			free(rtext);
			json_decref(roles);
		}
	}
	PQclear(res);
	return CTL_OK;
}

int
ctl_user_show(struct ctl *c, int argc, char **argv)
{
	PGresult *res;
	const char *params[1];
	const json_t *v;
	json_t *o, *consents;
	char *rtext;
	size_t i;
	int json = 0, rv;

	if ((rv = ctl_opts_json("user show", argc, argv, &json, 1,
	    CTL_NEED_USER)) != CTL_OK)
		return rv;
	params[0] = argv[optind];
	if ((res = ctl_db_query(c, "user show", ctl_sql_user_show, 1, params)) == NULL)
		return CTL_FAIL;
	if (PQntuples(res) == 0) {
		log_error("no such user: %s", params[0]);
		PQclear(res);
		return CTL_FAIL;
	}

	o = ctl_json_row(res, 0, ctl_user_show_cols);

	if (json)
		ctl_json_print(o);
	else {
		rtext = ctl_json_join(json_object_get(o, "roles"), " ");
		printf("%-24s%s\n", "user_id:", PQgetvalue(res, 0, 0));
		printf("%-24s%s\n", "username:", PQgetvalue(res, 0, 1));
		printf("%-24s%s%s\n", "email:", ctl_text_or_dash(res, 0, 2),
		    PQgetisnull(res, 0, 2) ? "" : ctl_bool(res, 0, 3) ? " (verified)" :
		    " (not verified)");
		printf("%-24s%s\n", "name:", ctl_text_or_dash(res, 0, 4));
		printf("%-24s%s\n", "roles:", rtext);
		printf("%-24s%s\n", "state:", ctl_bool(res, 0, 6) ? "disabled" :
		    "enabled");
		printf("%-24s%s\n", "created:", PQgetvalue(res, 0, 7));
		printf("%-24s%s\n", "updated:", PQgetvalue(res, 0, 8));
		printf("%-24s%s\n", "password changed:", PQgetvalue(res, 0, 9));
		printf("%-24s%s\n", "live sessions:", PQgetvalue(res, 0, 10));
		printf("%-24s%s\n", "live refresh families:", PQgetvalue(res, 0, 11));
		consents = json_object_get(o, "consents");
		printf("%-24s%s\n", "consents:", json_array_size(consents) == 0 ? "-" :
		    "");
		json_array_foreach(consents, i, v) {
			free(rtext);
			rtext = ctl_json_join(json_object_get(v, "scopes"), " ");
			printf("  client %s: %s\n", json_string_value(json_object_get(v,
			    "client_id")) != NULL ? json_string_value(json_object_get(v,
			    "client_id")) : "?", rtext);
		}
		free(rtext);
	}
	json_decref(o);
	PQclear(res);
	return CTL_OK;
}
