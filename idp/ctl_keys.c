/* ctl_keys.c: idpctl's key commands: kek generate, keys list and keys rotate. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "ctl.h"
#include "log.h"

/*
 * idpctl never sees a signing key's private part nor the key-encryption key once it
 * has written it: the signer of a running idp alone reads both. So rotation is a
 * request, a row in key_rotation_requests whose trigger NOTIFYs the signer, and the
 * key list shows only what the database holds in the clear.
 */

/* The key-encryption key is a key of the AEAD the signer seals private keys with. */
#define CTL_KEK_BYTES	crypto_aead_xchacha20poly1305_ietf_KEYBYTES

static const char ctl_sql_keys[] =
	"SELECT kid, alg, state, " CTL_TS("created_at") ", " CTL_TS("activated_at")
	", " CTL_TS("retired_at") ", " CTL_TS("delete_after") ", withdrawn"
	" FROM signing_keys ORDER BY created_at, kid";
/* --json: a row of ctl_sql_keys. */
static const struct ctl_col ctl_key_cols[] = {
	{ "kid", CTL_COL_TEXT },
	{ "alg", CTL_COL_TEXT },
	{ "state", CTL_COL_TEXT },
	{ "created_at", CTL_COL_TEXT },
	{ "activated_at", CTL_COL_TEXT },
	{ "retired_at", CTL_COL_TEXT },
	{ "delete_after", CTL_COL_TEXT },
	{ "withdrawn", CTL_COL_BOOL },
	{ NULL, 0 },
};
static const char ctl_sql_pending[] =
	"SELECT count(*), COALESCE(bool_or(emergency), false)"
	" FROM key_rotation_requests WHERE done_at IS NULL";
static const char ctl_sql_rotate[] =
	"INSERT INTO key_rotation_requests (emergency) VALUES ($1::boolean)"
	" RETURNING id, " CTL_TS("requested_at");

/* Write len bytes of buf to fd; 0 or -1 with errno set. */
static int
ctl_write_all(int fd, const unsigned char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ctl_kek_generate(struct ctl *c, int argc, char **argv)
{
	unsigned char *key;
	const char *path;
	int fd, rv;

	if ((rv = ctl_opts("kek generate", argc, argv, NULL, 1,
	    "needs exactly one FILE")) != CTL_OK)
		return rv;
	rv = CTL_FAIL;
	path = argv[optind];

	/* O_EXCL: an existing key-encryption key is never replaced (the keys in the
	 * database would be lost with it); O_NOFOLLOW: nor is a symlink's target. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			log_error("%s exists: refusing to overwrite it (the signing keys "
			    "in the database are encrypted under a key-encryption key)",
			    path);
		else
			log_warn("%s", path);
		return CTL_FAIL;
	}
	if ((key = sodium_malloc(CTL_KEK_BYTES)) == NULL)
		fatalx("sodium_malloc: out of memory");
	randombytes_buf(key, CTL_KEK_BYTES);
	/* fchmod: the umask may have taken the owner's bits; the signer wants 0600. */
	if (fchmod(fd, 0600) == -1 || ctl_write_all(fd, key, CTL_KEK_BYTES) == -1 ||
	    fsync(fd) == -1) {
		log_warn("%s", path);
		close(fd);
		goto done;
	}
	if (close(fd) == -1) {
		log_warn("%s", path);
		goto done;
	}
	printf("wrote a new %d-byte key-encryption key to %s (mode 0600)\n",
	    (int)CTL_KEK_BYTES, path);
	printf("point key_encryption_key_file at it, make it readable by the user idp "
	    "runs as, and back it up apart from the database: without it the signing "
	    "keys stored there cannot be decrypted\n");
	rv = CTL_OK;

 done:
	sodium_free(key);
	if (rv != CTL_OK && unlink(path) == -1)
		log_warn("unlink %s", path);
	return rv;
}

int
ctl_keys_list(struct ctl *c, int argc, char **argv)
{
	PGresult *res, *pend;
	int json = 0, i, n, w, rv;

	if ((rv = ctl_opts_json("keys list", argc, argv, &json, 0,
	    "takes no arguments")) != CTL_OK)
		return rv;
	if ((res = ctl_db_query(c, "keys list", ctl_sql_keys, 0, NULL)) == NULL)
		return CTL_FAIL;
	n = PQntuples(res);

	if (json) {
		ctl_json_print_rows(res, ctl_key_cols);
		PQclear(res);
		return CTL_OK;
	}

	if (n == 0)
		printf("no signing keys yet (a running idp's signer makes them)\n");
	else {
		w = ctl_col_width(res, 0, 3);
		printf("%-*s  %-5s  %-7s  %-20s  %-20s  %-20s  %s\n", w, "KID", "ALG",
		    "STATE", "CREATED", "ACTIVATED", "RETIRED", "WITHDRAWN");
		for (i = 0; i < n; i++)
			printf("%-*s  %-5s  %-7s  %-20s  %-20s  %-20s  %s\n", w,
			    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			    PQgetvalue(res, i, 2), ctl_text_or_dash(res, i, 3),
			    ctl_text_or_dash(res, i, 4), ctl_text_or_dash(res, i, 5),
			    ctl_bool(res, i, 7) ? "yes" : "no");
	}
	PQclear(res);

	if ((pend = ctl_db_exec(c, "keys list", ctl_sql_pending, 0, NULL)) == NULL)
		return CTL_FAIL;
	if (strcmp(PQgetvalue(pend, 0, 0), "0") != 0)
		printf("rotation requests pending: %s%s\n", PQgetvalue(pend, 0, 0),
		    ctl_bool(pend, 0, 1) ?
		    " (including an emergency)" : "");
	PQclear(pend);
	return CTL_OK;
}

int
ctl_keys_rotate(struct ctl *c, int argc, char **argv)
{
	const char *params[1];
	PGresult *res;
	int emergency = 0, rv;
	struct ctl_opt opts[] = {
		{ "emergency", CTL_OPT_FLAG, &emergency, NULL },
		{ NULL, 0, NULL, NULL },
	};

	if ((rv = ctl_opts("keys rotate", argc, argv, opts, 0,
	    "takes no arguments")) != CTL_OK)
		return rv;
	if (ctl_db_connect(c) == -1)
		return CTL_FAIL;

	if (emergency)
		log_warnx("emergency rotation: the active signing key is withdrawn from "
		    "the JWKS at once and the next key signs at once; tokens signed "
		    "with the old key stop verifying, and relying parties holding a "
		    "cached JWKS may fail to verify new tokens for up to jwks_max_age");
	params[0] = emergency ? "true" : "false";
	if ((res = ctl_db_exec(c, "keys rotate", ctl_sql_rotate, 1, params)) == NULL)
		return CTL_FAIL;
	printf("%srotation request %s recorded at %s\n", emergency ? "emergency " : "",
	    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	if (emergency)
		printf("the running idp's signer carries it out at once "
		    "(if no idp is running, the first to start does)\n");
	else
		printf("the running idp's signer carries it out: the next key signs as "
		    "soon as it has been published for jwks_max_age + "
		    "key_publish_margin, and a new next key is made (if no idp is "
		    "running, the first to start does)\n");
	PQclear(res);
	return CTL_OK;
}
