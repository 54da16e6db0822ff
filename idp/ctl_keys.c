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
	static const struct option longopts[] = {
		{ NULL, 0, NULL, 0 },
	};
	unsigned char *key;
	const char *path;
	int ch, fd, rv = CTL_FAIL;

	ctl_getopt_reset();
	if ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		return ctl_badopt("kek generate", ch, argv);
	if (argc - optind != 1)
		return ctl_usage("kek generate", "needs exactly one FILE");
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
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	PGresult *res, *pend;
	json_t *arr, *o;
	int ch, json = 0, i, n, w;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (ch != 'j')
			return ctl_badopt("keys list", ch, argv);
		json = 1;
	}
	if (optind != argc)
		return ctl_usage("keys list", "takes no arguments");
	if (ctl_db_connect(c) == -1)
		return CTL_FAIL;
	if ((res = ctl_db_exec(c, "keys list", ctl_sql_keys, 0, NULL)) == NULL)
		return CTL_FAIL;
	n = PQntuples(res);

	if (json) {
		arr = json_array();
		for (i = 0; i < n; i++) {
			o = json_object();
			json_object_set_new(o, "kid", ctl_json_text(res, i, 0));
			json_object_set_new(o, "alg", ctl_json_text(res, i, 1));
			json_object_set_new(o, "state", ctl_json_text(res, i, 2));
			json_object_set_new(o, "created_at", ctl_json_text(res, i, 3));
			json_object_set_new(o, "activated_at", ctl_json_text(res, i, 4));
			json_object_set_new(o, "retired_at", ctl_json_text(res, i, 5));
			json_object_set_new(o, "delete_after", ctl_json_text(res, i, 6));
			json_object_set_new(o, "withdrawn",
			    json_boolean(ctl_bool(res, i, 7)));
			json_array_append_new(arr, o);
		}
		ctl_json_print(arr);
		json_decref(arr);
		PQclear(res);
		return CTL_OK;
	}

	if (n == 0)
		printf("no signing keys yet (a running idp's signer makes them)\n");
	else {
		for (w = 3, i = 0; i < n; i++)
			if (PQgetlength(res, i, 0) > w)
				w = PQgetlength(res, i, 0);
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
	static const struct option longopts[] = {
		{ "emergency", no_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char *params[1];
	PGresult *res;
	int ch, emergency = 0;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (ch != 'e')
			return ctl_badopt("keys rotate", ch, argv);
		emergency = 1;
	}
	if (optind != argc)
		return ctl_usage("keys rotate", "takes no arguments");
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
