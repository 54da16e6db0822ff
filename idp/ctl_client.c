/* ctl_client.c: idpctl's client commands: add, list, show, disable, enable, secrets. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "ctl.h"
#include "log.h"
#include "secret.h"
#include "xalloc.h"

/*
 * A client secret exists in the clear exactly once: in this process, between
 * secret_random_b64url and the one line (or JSON object) that shows it. The database
 * gets its Argon2id hash. The secret is printed before the transaction that stores the
 * hash commits, so that a secret nobody saw is never valid: if stdout fails the client
 * is not made, and if the commit fails the user is told to discard what was shown.
 *
 * Two live secrets at most: one to rotate to while the old one is still in use.
 * Changes to a client's secrets are serialized by locking the client's row.
 */

#define CTL_SECRET_BYTES	32	/* 256 bits */
#define CTL_MAX_SECRETS		2
#define CTL_MAX_NAME		200

/* A list of distinct strings, copies the list owns. */
struct ctl_strs {
	char	**v;
	size_t	  n;
};

static const char *ctl_grants[] = {
	"client_credentials", "authorization_code", "refresh_token", "password",
};

static const char ctl_sql_client_insert[] =
	"INSERT INTO clients (id, name, public, first_party, grants, scopes,"
	" default_scopes, audiences, default_audience, redirect_uris,"
	" post_logout_redirect_uris, allow_plain_pkce)"
	" VALUES ($1, $2, $3::boolean, $4::boolean, $5::text[], $6::text[], $7::text[],"
	" $8::text[], $9, $10::text[], $11::text[], $12::boolean)";
static const char ctl_sql_secret_insert[] =
	"INSERT INTO client_secrets (client_id, hash) VALUES ($1, $2) RETURNING id";
static const char ctl_sql_client_list[] =
	"SELECT c.id, c.name, c.public, c.disabled, " CTL_TS("c.created_at") ","
	" (SELECT count(*) FROM client_secrets s"
	"  WHERE s.client_id = c.id AND s.revoked_at IS NULL)"
	" FROM clients c ORDER BY c.created_at, c.id";
static const char ctl_sql_client_show[] =
	"SELECT id, name, public, first_party, disabled, to_json(grants),"
	" to_json(scopes), to_json(default_scopes), to_json(audiences),"
	" default_audience, to_json(redirect_uris), to_json(post_logout_redirect_uris),"
	" " CTL_TS("created_at") ", " CTL_TS("updated_at")
	" FROM clients WHERE id = $1";
static const char ctl_sql_client_secrets[] =
	"SELECT id, " CTL_TS("created_at") " FROM client_secrets"
	" WHERE client_id = $1 AND revoked_at IS NULL ORDER BY id";
static const char ctl_sql_client_revoked[] =
	"SELECT count(*) FROM client_secrets"
	" WHERE client_id = $1 AND revoked_at IS NOT NULL";
static const char ctl_sql_client_able[] =
	"UPDATE clients SET disabled = $2::boolean, updated_at = now()"
	" WHERE id = $1 RETURNING id";
static const char ctl_sql_client_lock[] =
	"SELECT public FROM clients WHERE id = $1 FOR UPDATE";
static const char ctl_sql_secret_count[] =
	"SELECT count(*) FROM client_secrets WHERE client_id = $1 AND revoked_at IS NULL";
static const char ctl_sql_secret_state[] =
	"SELECT revoked_at IS NOT NULL FROM client_secrets"
	" WHERE client_id = $1 AND id = $2::bigint";
static const char ctl_sql_secret_revoke[] =
	"UPDATE client_secrets SET revoked_at = now()"
	" WHERE client_id = $1 AND id = $2::bigint AND revoked_at IS NULL";

/* Append a copy of s unless it is there already. */
static void
ctl_strs_add(struct ctl_strs *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

/* A ctl_opts CTL_OPT_EACH taker: value into the struct ctl_strs l. */
static int
ctl_strs_opt(const char *cmd, const char *value, void *l)
{
	ctl_strs_add(l, value);
	return CTL_OK;
}

/* 1 if the list holds s. */
static int
ctl_strs_has(const struct ctl_strs *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

/*
 * A ctl_opts CTL_OPT_EACH taker for --scope and --default-scope: split value at
 * spaces into the struct ctl_strs l. Refuses the first word that is not a scope
 * token (RFC 6749 section 3.3: %x21 / %x23-5B / %x5D-7E).
 */
static int
ctl_scopes_opt(const char *cmd, const char *value, void *l)
{
	const char *p, *end;
	char *w;
	int rv = CTL_OK;

	for (p = value; *p != '\0' && rv == CTL_OK; p = end) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		for (end = p; *end != '\0' && *end != ' '; end++)
			;
		w = xstrndup(p, (size_t)(end - p));
		if (strspn(w, "!#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "[]^_`abcdefghijklmnopqrstuvwxyz{|}~") != strlen(w))
			rv = ctl_usage(cmd, "'%s' is not a valid scope", w);
		else
			ctl_strs_add(l, w);
		free(w);
	}
	return rv;
}

/* Free the strings and the array. */
static void
ctl_strs_free(struct ctl_strs *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The list as a PostgreSQL text[] literal ("{}", "{\"a\",\"b\"}"): every element
 * double-quoted, with '"' and '\' escaped. The caller frees it. */
static char *
ctl_pg_array(const struct ctl_strs *l)
{
	size_t i, len = 3;
	const char *p;
	char *out, *w;

	for (i = 0; i < l->n; i++)
		len += 2 * strlen(l->v[i]) + 3;
	w = out = xmalloc(len);
	*w++ = '{';
	for (i = 0; i < l->n; i++) {
		if (i > 0)
			*w++ = ',';
		*w++ = '"';
		for (p = l->v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*w++ = '\\';
			*w++ = *p;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	return out;
}

/* 1 if s has a byte below 0x21 (space and control characters) or DEL. */
static int
ctl_has_space_or_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/*
 * Check a redirect URI: absolute (a scheme, and a host for http and https), no
 * fragment (RFC 6749 section 3.1.2), no spaces or control characters. Private-use
 * schemes of native apps (com.example.app:/cb, RFC 8252) are fine. Returns NULL or
 * why it is refused.
 */
static const char *
ctl_uri_check(const char *uri)
{
	struct evhttp_uri *u;
	const char *scheme, *host, *why = NULL;

	if (ctl_has_space_or_ctl(uri))
		return "has spaces or control characters";
	if (strchr(uri, '#') != NULL)
		return "has a fragment ('#')";
	if ((u = evhttp_uri_parse_with_flags(uri, 0)) == NULL)
		return "is not a valid URI";
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	if (scheme == NULL)
		why = "is not absolute (no scheme)";
	else if ((strcasecmp(scheme, "https") == 0 || strcasecmp(scheme, "http") == 0) &&
	    (host == NULL || *host == '\0'))
		why = "has no host";
	evhttp_uri_free(u);
	return why;
}

/* 1 if the http URI's host is a loopback address or localhost. */
static int
ctl_uri_loopback(const char *uri)
{
	struct evhttp_uri *u;
	const char *host;
	int lo = 0;

	if ((u = evhttp_uri_parse_with_flags(uri, 0)) == NULL)
		return 0;
	if ((host = evhttp_uri_get_host(u)) != NULL)
		lo = strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
		    strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
	evhttp_uri_free(u);
	return lo;
}

/* A new secret into *secret (caller zeroes and frees it with ctl_secret_free) and its
 * Argon2id hash into hash. 0, or -1 (reported). */
static int
ctl_new_secret(char **secret, char hash[SECRET_HASH_MAX])
{
	*secret = secret_random_b64url(CTL_SECRET_BYTES);
	if (secret_hash(*secret, strlen(*secret), 0, 0, hash) == -1) {
		log_error("hashing the new secret failed (out of memory?)");
		sodium_memzero(*secret, strlen(*secret));
		free(*secret);
		*secret = NULL;
		return -1;
	}
	return 0;
}

/* Zero and free a secret from ctl_new_secret (NULL is fine). */
static void
ctl_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	sodium_memzero(secret, strlen(secret));
	free(secret);
}

/*
 * Commit the transaction that stores a secret already printed: not if stdout failed
 * (nobody may have seen it), and if the commit fails, the user is told to discard
 * what was shown. what is "client" or "secret". 0, or -1 (reported).
 */
static int
ctl_commit_shown(struct ctl *c, const char *cmd, const char *what)
{
	if (!ctl_stdout_ok()) {
		log_error("%s: the %s was not saved", cmd, what);
		return -1;
	}
	if (ctl_db_commit(c) == -1) {
		log_error("%s: the %s was not saved; discard what was shown", cmd, what);
		return -1;
	}
	return 0;
}

/* Options of client add, as given. */
struct ctl_add {
	const char	*name;
	struct ctl_strs	 grants, scopes, default_scopes, audiences;
	struct ctl_strs	 redirect_uris, post_logout_uris;
	const char	*default_audience;	/* borrowed, from argv or audiences */
	int		 first_party, public, allow_plain_pkce, json;
};

/* Check a's options and fill in the defaults. CTL_OK or CTL_USAGE (reported). */
static int
ctl_add_check(struct ctl_add *a)
{
	static const char cmd[] = "client add";
	const char *why;
	size_t i, j;

	if (a->name == NULL || *a->name == '\0')
		return ctl_usage(cmd, "--name is required");
	if (strlen(a->name) > CTL_MAX_NAME)
		return ctl_usage(cmd, "--name is longer than %d bytes", CTL_MAX_NAME);
	for (i = 0; a->name[i] != '\0'; i++)
		if ((unsigned char)a->name[i] < 0x20 || a->name[i] == 0x7f)
			return ctl_usage(cmd, "--name has control characters");

	for (i = 0; i < a->grants.n; i++) {
		for (j = 0; j < sizeof(ctl_grants) / sizeof(ctl_grants[0]); j++)
			if (strcmp(a->grants.v[i], ctl_grants[j]) == 0)
				break;
		if (j == sizeof(ctl_grants) / sizeof(ctl_grants[0]))
			return ctl_usage(cmd, "unknown grant '%s' (want "
			    "client_credentials, authorization_code, refresh_token or "
			    "password)", a->grants.v[i]);
	}
	if (a->grants.n == 0)
		ctl_strs_add(&a->grants, a->public ? "authorization_code" :
		    "client_credentials");
	if (a->public) {
		if (!ctl_strs_has(&a->grants, "authorization_code"))
			return ctl_usage(cmd, "a --public client needs the "
			    "authorization_code grant");
		if (ctl_strs_has(&a->grants, "client_credentials") ||
		    ctl_strs_has(&a->grants, "password"))
			return ctl_usage(cmd, "a --public client cannot have the "
			    "client_credentials or password grant (it has no secret)");
	}
	if (ctl_strs_has(&a->grants, "refresh_token") &&
	    !ctl_strs_has(&a->grants, "authorization_code") &&
	    !ctl_strs_has(&a->grants, "password"))
		return ctl_usage(cmd, "the refresh_token grant needs authorization_code "
		    "or password (refresh tokens come from those)");
	if (ctl_strs_has(&a->grants, "authorization_code") && a->redirect_uris.n == 0)
		return ctl_usage(cmd, "the authorization_code grant needs at least one "
		    "--redirect-uri");

	for (i = 0; i < a->default_scopes.n; i++)
		if (!ctl_strs_has(&a->scopes, a->default_scopes.v[i]))
			return ctl_usage(cmd, "default scope '%s' is not one of the "
			    "allowed --scope", a->default_scopes.v[i]);
	if (a->default_scopes.n == 0)
		for (i = 0; i < a->scopes.n; i++)
			ctl_strs_add(&a->default_scopes, a->scopes.v[i]);

	for (i = 0; i < a->audiences.n; i++)
		if (*a->audiences.v[i] == '\0' || ctl_has_space_or_ctl(a->audiences.v[i]))
			return ctl_usage(cmd, "--audience must be non-empty, without "
			    "spaces or control characters");
	if (a->default_audience != NULL) {
		if (!ctl_strs_has(&a->audiences, a->default_audience))
			return ctl_usage(cmd, "--default-audience '%s' is not one of the "
			    "allowed --audience", a->default_audience);
	} else if (a->audiences.n > 0)
		a->default_audience = a->audiences.v[0];

	for (i = 0; i < a->redirect_uris.n; i++) {
		if ((why = ctl_uri_check(a->redirect_uris.v[i])) != NULL)
			return ctl_usage(cmd, "--redirect-uri '%s' %s",
			    a->redirect_uris.v[i], why);
		if (strncasecmp(a->redirect_uris.v[i], "http:", 5) == 0 &&
		    !ctl_uri_loopback(a->redirect_uris.v[i]))
			log_warnx("--redirect-uri %s is plain http on a host that is "
			    "not loopback: codes travel in the clear",
			    a->redirect_uris.v[i]);
	}
	for (i = 0; i < a->post_logout_uris.n; i++)
		if ((why = ctl_uri_check(a->post_logout_uris.v[i])) != NULL)
			return ctl_usage(cmd, "--post-logout-redirect-uri '%s' %s",
			    a->post_logout_uris.v[i], why);
	return CTL_OK;
}

/* Print a new client (human lines or a JSON object); secret is NULL for a public one. */
static void
ctl_add_print(const struct ctl_add *a, const char *id, const char *secret)
{
	json_t *o;

	if (a->json) {
		o = json_object();
		json_object_set_new(o, "client_id", json_string(id));
		if (secret != NULL)
			json_object_set_new(o, "client_secret", json_string(secret));
		json_object_set_new(o, "name", json_string(a->name));
		ctl_json_print(o);
		json_decref(o);
		return;
	}
	printf("client_id:     %s\n", id);
	if (secret != NULL)
		printf("client_secret: %s\n", secret);
	printf("name:          %s\n", a->name);
	if (secret != NULL)
		printf("The client secret is shown only this once: store it now. "
		    "idp keeps only a hash of it.\n");
	else
		printf("A public client: no secret; it must use PKCE.\n");
}

int
ctl_client_add(struct ctl *c, int argc, char **argv)
{
	static const char cmd[] = "client add";
	struct ctl_add a;
	const char *params[12];
	char *id = NULL, *secret = NULL, *arrays[6], hash[SECRET_HASH_MAX];
	PGresult *res;
	size_t i;
	int rv;
	struct ctl_opt opts[] = {
		{ "name", CTL_OPT_ONCE, &a.name, NULL },
		{ "grant", CTL_OPT_EACH, &a.grants, ctl_strs_opt },
		{ "scope", CTL_OPT_EACH, &a.scopes, ctl_scopes_opt },
		{ "default-scope", CTL_OPT_EACH, &a.default_scopes, ctl_scopes_opt },
		{ "audience", CTL_OPT_EACH, &a.audiences, ctl_strs_opt },
		{ "default-audience", CTL_OPT_ONCE, &a.default_audience, NULL },
		{ "redirect-uri", CTL_OPT_EACH, &a.redirect_uris, ctl_strs_opt },
		{ "post-logout-redirect-uri", CTL_OPT_EACH, &a.post_logout_uris,
		    ctl_strs_opt },
		{ "first-party", CTL_OPT_FLAG, &a.first_party, NULL },
		{ "public", CTL_OPT_FLAG, &a.public, NULL },
		{ "allow-plain-pkce", CTL_OPT_FLAG, &a.allow_plain_pkce, NULL },
		{ "json", CTL_OPT_FLAG, &a.json, NULL },
		{ NULL, 0, NULL, NULL },
	};

	memset(&a, 0, sizeof(a));
	memset(arrays, 0, sizeof(arrays));
	rv = ctl_opts(cmd, argc, argv, opts, 0, NULL);
	if (rv == CTL_OK)
		rv = ctl_add_check(&a);
	if (rv != CTL_OK)
		goto done;
	rv = CTL_FAIL;
	if (ctl_db_connect(c) == -1)
		goto done;

	id = ctl_new_id();
	if (!a.public && ctl_new_secret(&secret, hash) == -1)
		goto done;
	arrays[0] = ctl_pg_array(&a.grants);
	arrays[1] = ctl_pg_array(&a.scopes);
	arrays[2] = ctl_pg_array(&a.default_scopes);
	arrays[3] = ctl_pg_array(&a.audiences);
	arrays[4] = ctl_pg_array(&a.redirect_uris);
	arrays[5] = ctl_pg_array(&a.post_logout_uris);
	params[0] = id;
	params[1] = a.name;
	params[2] = a.public ? "true" : "false";
	params[3] = a.first_party ? "true" : "false";
	params[4] = arrays[0];
	params[5] = arrays[1];
	params[6] = arrays[2];
	params[7] = arrays[3];
	params[8] = a.default_audience;
	params[9] = arrays[4];
	params[10] = arrays[5];
	params[11] = a.allow_plain_pkce ? "true" : "false";

	if (ctl_db_begin(c) == -1 ||
	    ctl_db_cmd(c, cmd, ctl_sql_client_insert, 12, params) == -1)
		goto done;
	if (secret != NULL) {
		params[1] = hash;
		if ((res = ctl_db_exec(c, cmd, ctl_sql_secret_insert, 2, params)) == NULL)
			goto done;
		PQclear(res);
	}
	ctl_add_print(&a, id, secret);
	if (ctl_commit_shown(c, cmd, "client") == -1)
		goto done;
	rv = CTL_OK;

 done:
	ctl_db_rollback(c);
	sodium_memzero(hash, sizeof(hash));
	ctl_secret_free(secret);
	free(id);
	for (i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
		free(arrays[i]);
	ctl_strs_free(&a.grants);
	ctl_strs_free(&a.scopes);
	ctl_strs_free(&a.default_scopes);
	ctl_strs_free(&a.audiences);
	ctl_strs_free(&a.redirect_uris);
	ctl_strs_free(&a.post_logout_uris);
	return rv;
}

/* --json of client list: a row of ctl_sql_client_list. */
static const struct ctl_col ctl_client_list_cols[] = {
	{ "client_id", CTL_COL_TEXT },
	{ "name", CTL_COL_TEXT },
	{ "public", CTL_COL_BOOL },
	{ "disabled", CTL_COL_BOOL },
	{ "created_at", CTL_COL_TEXT },
	{ "live_secrets", CTL_COL_INT },
	{ NULL, 0 },
};

/* client show: the row of ctl_sql_client_show, and each of ctl_sql_client_secrets. */
static const struct ctl_col ctl_client_show_cols[] = {
	{ "client_id", CTL_COL_TEXT },
	{ "name", CTL_COL_TEXT },
	{ "public", CTL_COL_BOOL },
	{ "first_party", CTL_COL_BOOL },
	{ "disabled", CTL_COL_BOOL },
	{ "grants", CTL_COL_JSON },
	{ "scopes", CTL_COL_JSON },
	{ "default_scopes", CTL_COL_JSON },
	{ "audiences", CTL_COL_JSON },
	{ "default_audience", CTL_COL_TEXT },
	{ "redirect_uris", CTL_COL_JSON },
	{ "post_logout_redirect_uris", CTL_COL_JSON },
	{ "created_at", CTL_COL_TEXT },
	{ "updated_at", CTL_COL_TEXT },
	{ NULL, 0 },
};
static const struct ctl_col ctl_client_secret_cols[] = {
	{ "id", CTL_COL_INT },
	{ "created_at", CTL_COL_TEXT },
	{ NULL, 0 },
};

int
ctl_client_list(struct ctl *c, int argc, char **argv)
{
	PGresult *res;
	int json = 0, i, n, w, rv;

	if ((rv = ctl_opts_json("client list", argc, argv, &json, 0,
	    "needs no arguments")) != CTL_OK)
		return rv;
	if ((res = ctl_db_query(c, "client list", ctl_sql_client_list, 0,
	    NULL)) == NULL)
		return CTL_FAIL;
	n = PQntuples(res);
	if (json) {
		ctl_json_print_rows(res, ctl_client_list_cols);
	} else if (n == 0)
		printf("no clients (add one with: idpctl client add --name NAME)\n");
	else {
		w = ctl_col_width(res, 0, 9);
		printf("%-*s  %-12s  %-8s  %-7s  %-20s  %s\n", w, "CLIENT_ID", "TYPE",
		    "STATE", "SECRETS", "CREATED", "NAME");
		for (i = 0; i < n; i++)
			printf("%-*s  %-12s  %-8s  %-7s  %-20s  %s\n", w,
			    PQgetvalue(res, i, 0),
			    ctl_bool(res, i, 2) ? "public" : "confidential",
			    ctl_bool(res, i, 3) ? "disabled" : "enabled",
			    PQgetvalue(res, i, 5), PQgetvalue(res, i, 4),
			    PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return CTL_OK;
}

/* Print "label: a b c" for a JSON array of strings (URIs: one per line, under each
 * other). */
static void
ctl_print_list(const char *label, const json_t *arr, int one_per_line)
{
	char *sep, *s;

	sep = xasprintf(one_per_line ? "\n%-27s" : " ", "");
	s = ctl_json_join(arr, sep);
	printf("%-27s%s\n", label, s);
	free(s);
	free(sep);
}

int
ctl_client_show(struct ctl *c, int argc, char **argv)
{
	PGresult *res = NULL, *sec = NULL, *rev = NULL;
	const char *params[1];
	json_t *o = NULL;
	int json = 0, i, n, rv;

	if ((rv = ctl_opts_json("client show", argc, argv, &json, 1,
	    "needs a client ID")) != CTL_OK)
		return rv;
	params[0] = argv[optind];
	rv = CTL_FAIL;
	if ((res = ctl_db_query(c, "client show", ctl_sql_client_show, 1,
	    params)) == NULL)
		goto done;
	if (PQntuples(res) == 0) {
		log_error("no such client: %s", params[0]);
		goto done;
	}
	if ((sec = ctl_db_exec(c, "client show", ctl_sql_client_secrets, 1,
	    params)) == NULL ||
	    (rev = ctl_db_exec(c, "client show", ctl_sql_client_revoked, 1,
	    params)) == NULL)
		goto done;

	o = ctl_json_row(res, 0, ctl_client_show_cols);
	n = PQntuples(sec);
	json_object_set_new(o, "live_secrets", json_integer(n));
	json_object_set_new(o, "revoked_secrets",
	    json_integer(strtoll(PQgetvalue(rev, 0, 0), NULL, 10)));
	json_object_set_new(o, "secrets", ctl_json_rows(sec, ctl_client_secret_cols));

	if (json)
		ctl_json_print(o);
	else {
		printf("%-27s%s\n", "client_id:", PQgetvalue(res, 0, 0));
		printf("%-27s%s\n", "name:", PQgetvalue(res, 0, 1));
		printf("%-27s%s\n", "type:", ctl_bool(res, 0, 2) ? "public (no secret, "
		    "PKCE)" : "confidential");
		printf("%-27s%s\n", "first party:", ctl_bool(res, 0, 3) ? "yes" : "no");
		printf("%-27s%s\n", "state:", ctl_bool(res, 0, 4) ? "disabled" :
		    "enabled");
		ctl_print_list("grants:", json_object_get(o, "grants"), 0);
		ctl_print_list("scopes:", json_object_get(o, "scopes"), 0);
		ctl_print_list("default scopes:",
		    json_object_get(o, "default_scopes"), 0);
		ctl_print_list("audiences:", json_object_get(o, "audiences"), 0);
		printf("%-27s%s\n", "default audience:", PQgetisnull(res, 0, 9) ?
		    "- (the issuer)" : PQgetvalue(res, 0, 9));
		ctl_print_list("redirect URIs:", json_object_get(o, "redirect_uris"), 1);
		ctl_print_list("post-logout redirect URIs:",
		    json_object_get(o, "post_logout_redirect_uris"), 1);
		printf("%-27s%s\n", "created:", PQgetvalue(res, 0, 12));
		printf("%-27s%s\n", "updated:", PQgetvalue(res, 0, 13));
		printf("%-27s%d (%s revoked)\n", "live secrets:", n,
		    PQgetvalue(rev, 0, 0));
		for (i = 0; i < n; i++)
			printf("  secret %s, created %s\n", PQgetvalue(sec, i, 0),
			    PQgetvalue(sec, i, 1));
	}
	rv = CTL_OK;

 done:
	json_decref(o);
	PQclear(rev);
	PQclear(sec);
	PQclear(res);
	return rv;
}

/* client disable and client enable (argv[0] says which). */
int
ctl_client_able(struct ctl *c, int argc, char **argv)
{
	int disable = strcmp(argv[0], "disable") == 0;
	const char *cmd = disable ? "client disable" : "client enable";
	const char *params[2];
	PGresult *res;
	int rv;

	if ((rv = ctl_opts(cmd, argc, argv, NULL, 1, "needs a client ID")) != CTL_OK)
		return rv;
	params[0] = argv[optind];
	params[1] = disable ? "true" : "false";
	if ((res = ctl_db_query(c, cmd, ctl_sql_client_able, 2, params)) == NULL)
		return CTL_FAIL;
	if (PQntuples(res) == 0) {
		log_error("no such client: %s", params[0]);
		PQclear(res);
		return CTL_FAIL;
	}
	PQclear(res);
	printf("client %s %s\n", params[0], disable ? "disabled: it gets no tokens "
	    "until enabled again" : "enabled");
	return CTL_OK;
}

/*
 * In a transaction, lock client id's row and count its live secrets into *live.
 * Returns 0, or -1 when it failed or the client does not exist or is public (both
 * reported; the transaction is then rolled back by the caller's ctl_db_rollback).
 */
static int
ctl_client_lock(struct ctl *c, const char *cmd, const char *id, long long *live)
{
	const char *params[1] = { id };
	PGresult *res;
	int public;

	if (ctl_db_begin(c) == -1 ||
	    (res = ctl_db_exec(c, cmd, ctl_sql_client_lock, 1, params)) == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		log_error("no such client: %s", id);
		PQclear(res);
		return -1;
	}
	public = ctl_bool(res, 0, 0);
	PQclear(res);
	if (public) {
		log_error("client %s is public: it has no secrets", id);
		return -1;
	}
	if ((res = ctl_db_exec(c, cmd, ctl_sql_secret_count, 1, params)) == NULL)
		return -1;
	*live = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int
ctl_client_secret_add(struct ctl *c, int argc, char **argv)
{
	static const char cmd[] = "client secret add";
	const char *params[2];
	char *secret = NULL, hash[SECRET_HASH_MAX];
	PGresult *res = NULL;
	long long live;
	json_t *o;
	int json = 0, rv;

	if ((rv = ctl_opts_json(cmd, argc, argv, &json, 1,
	    "needs a client ID")) != CTL_OK)
		return rv;
	params[0] = argv[optind];
	if (ctl_db_connect(c) == -1)
		return CTL_FAIL;
	memset(hash, 0, sizeof(hash));
	rv = CTL_FAIL;
	if (ctl_client_lock(c, cmd, params[0], &live) == -1)
		goto done;
	if (live >= CTL_MAX_SECRETS) {
		log_error("client %s already has %d live secrets; revoke one first "
		    "(idpctl client show %s lists them; idpctl client secret revoke %s "
		    "SECRET_ID)", params[0], CTL_MAX_SECRETS, params[0], params[0]);
		goto done;
	}
	if (ctl_new_secret(&secret, hash) == -1)
		goto done;
	params[1] = hash;
	if ((res = ctl_db_exec(c, cmd, ctl_sql_secret_insert, 2, params)) == NULL)
		goto done;

	if (json) {
		o = json_object();
		json_object_set_new(o, "client_id", json_string(params[0]));
		json_object_set_new(o, "secret_id",
		    json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
		json_object_set_new(o, "client_secret", json_string(secret));
		ctl_json_print(o);
		json_decref(o);
	} else {
		printf("client_id:     %s\n", params[0]);
		printf("secret_id:     %s\n", PQgetvalue(res, 0, 0));
		printf("client_secret: %s\n", secret);
		printf("The client secret is shown only this once: store it now. The "
		    "client's other secret keeps working until you revoke it.\n");
	}
	if (ctl_commit_shown(c, cmd, "secret") == -1)
		goto done;
	rv = CTL_OK;

 done:
	ctl_db_rollback(c);
	PQclear(res);
	sodium_memzero(hash, sizeof(hash));
	ctl_secret_free(secret);
	return rv;
}

int
ctl_client_secret_revoke(struct ctl *c, int argc, char **argv)
{
	static const char cmd[] = "client secret revoke";
	const char *params[2], *sid;
	PGresult *res;
	long long live, v;
	char *end;
	int force = 0, revoked, rv;
	struct ctl_opt opts[] = {
		{ "force", CTL_OPT_FLAG, &force, NULL },
		{ NULL, 0, NULL, NULL },
	};

	if ((rv = ctl_opts(cmd, argc, argv, opts, 2,
	    "needs a client ID and a SECRET_ID")) != CTL_OK)
		return rv;
	params[0] = argv[optind];
	params[1] = sid = argv[optind + 1];
	errno = 0;
	v = strtoll(sid, &end, 10);
	if (*sid < '0' || *sid > '9' || *end != '\0' || errno == ERANGE || v <= 0)
		return ctl_usage(cmd, "SECRET_ID must be a secret's number, as client "
		    "show lists them");
	if (ctl_db_connect(c) == -1)
		return CTL_FAIL;
	rv = CTL_FAIL;
	if (ctl_client_lock(c, cmd, params[0], &live) == -1)
		goto done;
	if ((res = ctl_db_exec(c, cmd, ctl_sql_secret_state, 2, params)) == NULL)
		goto done;
	if (PQntuples(res) == 0) {
		log_error("client %s has no secret %s", params[0], sid);
		PQclear(res);
		goto done;
	}
	revoked = ctl_bool(res, 0, 0);
	PQclear(res);
	if (revoked) {
		log_error("secret %s of client %s is already revoked", sid, params[0]);
		goto done;
	}
	if (live <= 1 && !force) {
		log_error("refusing to revoke the last live secret of client %s: it "
		    "could no longer authenticate (add one first with idpctl client "
		    "secret add %s, or use --force)", params[0], params[0]);
		goto done;
	}
	if (ctl_db_cmd(c, cmd, ctl_sql_secret_revoke, 2, params) == -1 ||
	    ctl_db_commit(c) == -1)
		goto done;
	printf("secret %s of client %s revoked\n", sid, params[0]);
	if (live <= 1)
		log_warnx("client %s has no live secret now: it cannot authenticate "
		    "until you add one", params[0]);
	rv = CTL_OK;

 done:
	ctl_db_rollback(c);
	return rv;
}
