/* keystore.c: the signer's signing keys in PostgreSQL: the key-encryption key, the
 * encrypted rows, the rotation schedule, and loading the key set to sign with. */

/*
 * Key rotation, as this file carries out the schedule described in idp.h.
 *
 * Every key row is born as "next" (published in the JWKS, not signing), becomes
 * "active" (signing), then "retired" (published, not signing) and is finally deleted.
 * Only the public JWK is stored in the clear; the private JWK is sealed with
 * XChaCha20-Poly1305 under the key-encryption key (KEK), with the kid as associated
 * data, so a row cannot be decrypted under another kid, and a swapped or altered
 * ciphertext fails to open instead of yielding some other key.
 *
 * Any number of idp instances may share the database. Each signer ticks on a timer and
 * on NOTIFY idp_keys; on a tick it tries pg_try_advisory_lock(IDP_ROTATION_LOCK) and,
 * when it wins, runs the schedule in one transaction over the rows it has locked with
 * SELECT ... FOR UPDATE. The decisions are taken here in C from the rows and the
 * database's clock (now() - created_at and friends), never from the local clock, so
 * instances with skewed clocks agree. Then every instance, winner or not, reloads the
 * set, and the signer pushes it to its workers when it changed.
 *
 * Two rules keep this honest. A tick that has nothing to do writes nothing: the
 * triggers on signing_keys fire per statement, even when no row changes, and every
 * write comes back to every signer as a NOTIFY, so an idle UPDATE would make the
 * signers wake each other forever. And before the first write, the active key must
 * open under our KEK: an instance started with the wrong KEK must not seal new keys the
 * others cannot open; it stops with a clear message instead.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <sodium.h>

#include "idp.h"
#include "jwk.h"
#include "keygen.h"
#include "keystore.h"
#include "log.h"
#include "xalloc.h"

_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == KEYSTORE_KEK_BYTES,
    "the KEK is an XChaCha20-Poly1305 key");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == 24,
    "the nonce column holds 24 bytes");

#define KS_WRONG_KEK	"cannot decrypt the signing keys: wrong key_encryption_key_file?"
#define KS_RSA_BITS	2048
#define KS_RSA_THREADS	2
#define KS_MAX_EVENTS	8

struct keystore {
	const struct idp_config	*conf;
	const unsigned char	*kek;
	PGconn			*conn;
};

enum ks_stmt {
	KS_LOCK,
	KS_UNLOCK,
	KS_ROWS,
	KS_REQUESTS,
	KS_INSERT,
	KS_RETIRE,
	KS_ACTIVATE,
	KS_DELETE,
	KS_DONE,
	KS_LOAD,
	KS_NSTMT
};

/* Every statement of the signer, prepared at connect time. */
static const struct {
	const char	*name;
	const char	*sql;
} ks_sql[KS_NSTMT] = {
	[KS_LOCK] = { "ks_lock", "SELECT pg_try_advisory_lock($1::bigint)" },
	[KS_UNLOCK] = { "ks_unlock", "SELECT pg_advisory_unlock($1::bigint)" },
	/* Columns: kid, state, private_enc, nonce, seconds published, seconds active
	 * (null if never), retired and past delete_after. */
	[KS_ROWS] = { "ks_rows",
	    "SELECT kid, state, private_enc, nonce, "
	    "extract(epoch FROM now() - created_at)::float8, "
	    "extract(epoch FROM now() - activated_at)::float8, "
	    "state = 'retired' AND delete_after IS NOT NULL AND delete_after <= now() "
	    "FROM signing_keys ORDER BY created_at, kid FOR UPDATE" },
	[KS_REQUESTS] = { "ks_requests",
	    "SELECT id, emergency FROM key_rotation_requests WHERE done_at IS NULL "
	    "ORDER BY id FOR UPDATE" },
	[KS_INSERT] = { "ks_insert",
	    /* clock_timestamp(), not now(): the transaction may have begun well
	     * before (key generation runs inside it), and a key counts as
	     * published from its insertion, just before the commit. */
	    "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_enc, nonce, "
	    "created_at, activated_at) VALUES ($1, $2, $3::text, $4::jsonb, $5, $6, "
	    "clock_timestamp(), CASE WHEN $3::text = 'active' THEN now() END)" },
	/* $2: seconds the key stays published; $3: withdraw it from the JWKS now. */
	[KS_RETIRE] = { "ks_retire",
	    "UPDATE signing_keys SET state = 'retired', retired_at = now(), "
	    "delete_after = now() + make_interval(secs => $2::float8), "
	    "withdrawn = withdrawn OR $3::boolean WHERE kid = $1" },
	[KS_ACTIVATE] = { "ks_activate",
	    "UPDATE signing_keys SET state = 'active', activated_at = now() "
	    "WHERE kid = $1 AND state = 'next'" },
	[KS_DELETE] = { "ks_delete",
	    "DELETE FROM signing_keys WHERE kid = $1 AND state = 'retired'" },
	[KS_DONE] = { "ks_done",
	    "UPDATE key_rotation_requests SET done_at = now() "
	    "WHERE done_at IS NULL AND id <= $1::bigint" },
	/* The published keys, active first; the ciphertext of the active one only. */
	[KS_LOAD] = { "ks_load",
	    "SELECT kid, alg, state, public_jwk::text, "
	    "CASE WHEN state = 'active' THEN private_enc END, nonce, "
	    "floor(extract(epoch FROM created_at))::bigint, "
	    "floor(extract(epoch FROM activated_at))::bigint "
	    "FROM signing_keys WHERE NOT withdrawn "
	    "ORDER BY CASE state WHEN 'active' THEN 0 WHEN 'next' THEN 1 ELSE 2 END, "
	    "created_at DESC, kid" },
};

/* What a transaction did, logged once it committed. */
struct ks_events {
	int	n;
	struct {
		char		 kid[64];
		const char	*what;
	} ev[KS_MAX_EVENTS];
};

unsigned char *
keystore_kek_load(const char *path)
{
	unsigned char *kek, extra;
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		fatal("key_encryption_key_file %s", path);
	if (fstat(fd, &st) == -1)
		fatal("key_encryption_key_file %s", path);
	if (!S_ISREG(st.st_mode) || st.st_size != KEYSTORE_KEK_BYTES)
		fatalx("key_encryption_key_file %s must be a file of exactly %d bytes "
		    "(idpctl kek generate FILE makes one)", path, KEYSTORE_KEK_BYTES);
	if ((st.st_mode & 077) != 0)
		fatalx("key_encryption_key_file %s is readable or writable by others "
		    "(mode %03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
	if ((kek = sodium_malloc(KEYSTORE_KEK_BYTES)) == NULL)
		fatalx("%s: out of memory", __func__);
	while (got < KEYSTORE_KEK_BYTES) {
		if ((n = read(fd, kek + got, KEYSTORE_KEK_BYTES - got)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("key_encryption_key_file %s", path);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	/* The file may have changed between fstat and read. */
	if (got != KEYSTORE_KEK_BYTES || read(fd, &extra, 1) != 0)
		fatalx("key_encryption_key_file %s must be a file of exactly %d bytes",
		    path, KEYSTORE_KEK_BYTES);
	close(fd);
	if (sodium_mprotect_readonly(kek) != 0)
		fatal("sodium_mprotect_readonly");
	return kek;
}

unsigned char *
keystore_encrypt(const unsigned char *kek, const char *kid, const void *plain,
    size_t len, unsigned char nonce[24], size_t *enclen)
{
	unsigned char *enc;
	unsigned long long clen;

	enc = xmalloc(len + crypto_aead_xchacha20poly1305_ietf_ABYTES);
	randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(enc, &clen, plain, len,
	    (const unsigned char *)kid, strlen(kid), NULL, nonce, kek);
	*enclen = (size_t)clen;
	return enc;
}

char *
keystore_decrypt(const unsigned char *kek, const char *kid, const unsigned char *enc,
    size_t enclen, const unsigned char *nonce, size_t noncelen, size_t *len)
{
	unsigned long long plen;
	unsigned char *plain;

	if (noncelen != crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ||
	    enclen < crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return NULL;
	if ((plain = sodium_malloc(enclen - crypto_aead_xchacha20poly1305_ietf_ABYTES +
	    1)) == NULL)
		fatalx("%s: out of memory", __func__);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, enc, enclen,
	    (const unsigned char *)kid, strlen(kid), nonce, kek) != 0) {
		sodium_free(plain);
		return NULL;
	}
	plain[plen] = '\0';
	*len = (size_t)plen;
	return (char *)plain;
}

/* Log libpq's message for what failed, without its trailing newline. */
static void
ks_log_pqerror(const char *what, const char *msg)
{
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	log_warnx("database: %s: %.*s", what, (int)n, msg);
}

static void
ks_notice(void *arg, const char *msg)
{
	log_debug("database notice: %s", msg);
}

struct keystore *
keystore_new(const struct idp_config *conf, const unsigned char *kek)
{
	struct keystore *ks = xcalloc(1, sizeof(*ks));

	ks->conf = conf;
	ks->kek = kek;
	return ks;
}

static void
ks_disconnect(struct keystore *ks)
{
	if (ks->conn != NULL)
		PQfinish(ks->conn);
	ks->conn = NULL;
}

void
keystore_free(struct keystore *ks)
{
	if (ks == NULL)
		return;
	ks_disconnect(ks);
	free(ks);
}

/* Run a command without parameters; 0 or -1 (logged). */
static int
ks_command(struct keystore *ks, const char *sql)
{
	PGresult *res;
	int rv = 0;

	res = PQexec(ks->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		ks_log_pqerror(sql, PQerrorMessage(ks->conn));
		rv = -1;
	}
	PQclear(res);
	return rv;
}

int
keystore_connect(struct keystore *ks, const char **errstr)
{
	/* dbname last: what the configured connection string says wins. */
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "10", "idp-signer", ks->conf->database, NULL };
	PGresult *res;
	size_t i;

	ks_disconnect(ks);
	if ((ks->conn = PQconnectdbParams(keys, vals, 1)) == NULL)
		fatalx("%s: out of memory", __func__);
	if (PQstatus(ks->conn) != CONNECTION_OK) {
		ks_log_pqerror("connect", PQerrorMessage(ks->conn));
		*errstr = "cannot connect to the database";
		goto fail;
	}
	PQsetNoticeProcessor(ks->conn, ks_notice, NULL);
	if (ks_command(ks, "LISTEN idp_keys") == -1) {
		*errstr = "cannot LISTEN idp_keys";
		goto fail;
	}
	for (i = 0; i < KS_NSTMT; i++) {
		res = PQprepare(ks->conn, ks_sql[i].name, ks_sql[i].sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			ks_log_pqerror(ks_sql[i].name, PQerrorMessage(ks->conn));
			PQclear(res);
			*errstr = "cannot prepare the signer's statements (schema not "
			    "migrated?)";
			goto fail;
		}
		PQclear(res);
	}
	return 0;
 fail:
	ks_disconnect(ks);
	return -1;
}

int
keystore_connected(struct keystore *ks)
{
	return ks->conn != NULL && PQstatus(ks->conn) == CONNECTION_OK;
}

int
keystore_socket(struct keystore *ks)
{
	return keystore_connected(ks) ? PQsocket(ks->conn) : -1;
}

int
keystore_notified(struct keystore *ks)
{
	PGnotify *n;
	int count = 0;

	if (!keystore_connected(ks))
		return -1;
	if (PQconsumeInput(ks->conn) == 0) {
		ks_log_pqerror("connection", PQerrorMessage(ks->conn));
		ks_disconnect(ks);
		return -1;
	}
	while ((n = PQnotifies(ks->conn)) != NULL) {
		count++;
		PQfreemem(n);
	}
	return count;
}

/* Run a prepared statement with text parameters (formats NULL) or some binary ones.
 * Returns the result, or NULL after logging when its status is not want. */
static PGresult *
ks_exec(struct keystore *ks, enum ks_stmt s, int n, const char *const *values,
    const int *lengths, const int *formats, ExecStatusType want)
{
	PGresult *res;

	res = PQexecPrepared(ks->conn, ks_sql[s].name, n, values, lengths, formats, 0);
	if (PQresultStatus(res) != want) {
		ks_log_pqerror(ks_sql[s].name, PQerrorMessage(ks->conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Run a prepared statement that returns no rows; 0 or -1 (logged). */
static int
ks_run(struct keystore *ks, enum ks_stmt s, int n, const char *const *values)
{
	PGresult *res;

	if ((res = ks_exec(ks, s, n, values, NULL, NULL, PGRES_COMMAND_OK)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static void
ks_event(struct ks_events *ev, const char *kid, const char *what)
{
	if (ev->n == KS_MAX_EVENTS)
		return;
	snprintf(ev->ev[ev->n].kid, sizeof(ev->ev[ev->n].kid), "%s", kid);
	ev->ev[ev->n++].what = what;
}

/* Make a key for signing_alg, seal it and insert it in state ("next" or "active").
 * The new kid is copied into kid. 0 or -1 with *errstr. */
static int
ks_insert_key(struct keystore *ks, const char *state, char *kid, size_t kidlen,
    const char **errstr)
{
	enum jws_alg alg = jws_alg_from_name(ks->conf->signing_alg);
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned char *enc = NULL;
	const char *values[6];
	int lengths[6] = { 0 }, formats[6] = { 0 };
	char *thumb = NULL, *pubtext = NULL, *privtext = NULL;
	json_t *pub = NULL, *priv = NULL;
	EVP_PKEY *pkey;
	PGresult *res;
	size_t enclen;
	int rv = -1;

	if (alg == JWS_ALG_RS256 || alg == JWS_ALG_PS256)
		pkey = keygen_rsa(KS_RSA_BITS, KS_RSA_THREADS, errstr);
	else
		pkey = jwk_generate(alg, errstr);
	if (pkey == NULL)
		return -1;
	if ((pub = jwk_from_pkey(pkey, 0, errstr)) == NULL ||
	    (priv = jwk_from_pkey(pkey, 1, errstr)) == NULL ||
	    (thumb = jwk_thumbprint(pub, errstr)) == NULL)
		goto done;
	json_object_set_new(pub, "kid", json_string(thumb));
	json_object_set_new(pub, "alg", json_string(ks->conf->signing_alg));
	json_object_set_new(pub, "use", json_string("sig"));
	if ((pubtext = json_dumps(pub, JSON_COMPACT)) == NULL ||
	    (privtext = json_dumps(priv, JSON_COMPACT)) == NULL)
		fatalx("%s: out of memory", __func__);
	enc = keystore_encrypt(ks->kek, thumb, privtext, strlen(privtext), nonce,
	    &enclen);

	values[0] = thumb;
	values[1] = ks->conf->signing_alg;
	values[2] = state;
	values[3] = pubtext;
	values[4] = (const char *)enc;
	lengths[4] = (int)enclen;
	formats[4] = 1;
	values[5] = (const char *)nonce;
	lengths[5] = (int)sizeof(nonce);
	formats[5] = 1;
	if ((res = ks_exec(ks, KS_INSERT, 6, values, lengths, formats,
	    PGRES_COMMAND_OK)) == NULL) {
		*errstr = "cannot store a new key";
		goto done;
	}
	PQclear(res);
	snprintf(kid, kidlen, "%s", thumb);
	rv = 0;
 done:
	if (privtext != NULL) {
		sodium_memzero(privtext, strlen(privtext));
		free(privtext);
	}
	free(pubtext);
	free(thumb);
	free(enc);
	json_decref(pub);
	json_decref(priv);
	EVP_PKEY_free(pkey);
	return rv;
}

/* 1 if row i of a KS_ROWS result opens under our KEK. */
static int
ks_row_opens(struct keystore *ks, PGresult *rows, int i)
{
	unsigned char *enc, *nonce;
	size_t enclen, noncelen, plen;
	char *plain;

	enc = PQunescapeBytea((const unsigned char *)PQgetvalue(rows, i, 2), &enclen);
	nonce = PQunescapeBytea((const unsigned char *)PQgetvalue(rows, i, 3), &noncelen);
	if (enc == NULL || nonce == NULL)
		fatalx("%s: out of memory", __func__);
	plain = keystore_decrypt(ks->kek, PQgetvalue(rows, i, 0), enc, enclen, nonce,
	    noncelen, &plen);
	PQfreemem(enc);
	PQfreemem(nonce);
	if (plain == NULL)
		return 0;
	sodium_free(plain);
	return 1;
}

/* Seconds from column col of row i, -1 when null. */
static double
ks_seconds(PGresult *res, int i, int col)
{
	if (PQgetisnull(res, i, col))
		return -1;
	return strtod(PQgetvalue(res, i, col), NULL);
}

/* Retire key kid (withdrawn: out of the JWKS at once); it stays published, unless
 * withdrawn, as long as a token it signed may live and a cached JWKS may be stale. */
static int
ks_retire(struct keystore *ks, const char *kid, int withdrawn)
{
	char secs[32];
	const char *values[3];

	snprintf(secs, sizeof(secs), "%ld", ks->conf->access_token_ttl +
	    ks->conf->jwks_max_age + ks->conf->key_publish_margin);
	values[0] = kid;
	values[1] = secs;
	values[2] = withdrawn ? "true" : "false";
	return ks_run(ks, KS_RETIRE, 3, values);
}

enum ks_action {
	KS_NONE,		/* the active key keeps signing */
	KS_PROMOTE,		/* next -> active, active -> retired */
	KS_EMERGENCY,		/* active -> retired and withdrawn, next -> active */
	KS_TAKE_NEXT,		/* no active key: next -> active at once */
	KS_FIRST,		/* no active key and no next key: a new active key */
};

/* Apply the schedule in one transaction (the caller holds the rotation lock). */
static int
ks_schedule(struct keystore *ks, const char **errstr)
{
	const struct idp_config *c = ks->conf;
	double publish = (double)(c->jwks_max_age + c->key_publish_margin);
	PGresult *rows = NULL, *reqs = NULL;
	struct ks_events ev;
	enum ks_action action;
	const char *maxreq = NULL, *values[1];
	char kid[64];
	int i, n, active = -1, next = -1, emergency = 0, expired = 0, checked = 0;
	int rv = -1, need_next;

	memset(&ev, 0, sizeof(ev));
	if (ks_command(ks, "BEGIN") == -1) {
		*errstr = "cannot begin the rotation transaction";
		return -1;
	}
	*errstr = "cannot read the signing keys";
	if ((rows = ks_exec(ks, KS_ROWS, 0, NULL, NULL, NULL, PGRES_TUPLES_OK)) == NULL ||
	    (reqs = ks_exec(ks, KS_REQUESTS, 0, NULL, NULL, NULL,
	    PGRES_TUPLES_OK)) == NULL)
		goto fail;
	n = PQntuples(rows);
	for (i = 0; i < n; i++) {
		if (strcmp(PQgetvalue(rows, i, 1), "active") == 0)
			active = i;
		else if (strcmp(PQgetvalue(rows, i, 1), "next") == 0)
			next = i;
		else if (strcmp(PQgetvalue(rows, i, 6), "t") == 0)
			expired++;
	}
	for (i = 0; i < PQntuples(reqs); i++) {
		if (strcmp(PQgetvalue(reqs, i, 1), "t") == 0)
			emergency = 1;
		maxreq = PQgetvalue(reqs, i, 0);
	}

 decide:
	if (active == -1)
		action = next != -1 ? KS_TAKE_NEXT : KS_FIRST;
	else if (emergency)
		action = KS_EMERGENCY;
	else if (next != -1 && ks_seconds(rows, next, 4) >= publish &&
	    (maxreq != NULL ||
	    ks_seconds(rows, active, 5) >= (double)c->key_rotation_interval))
		action = KS_PROMOTE;
	else
		action = KS_NONE;
	need_next = next == -1 || action != KS_NONE;
	if (action == KS_NONE && !need_next && expired == 0) {
		/* Nothing to write: no statement that would NOTIFY. */
		PQclear(rows);
		PQclear(reqs);
		*errstr = "cannot end the rotation transaction";
		return ks_command(ks, "COMMIT");
	}

	/* Before the first write: the keys must open under our KEK. */
	if (!checked) {
		checked = 1;
		if (active != -1 && !ks_row_opens(ks, rows, active)) {
			log_warnx("key %s (active) cannot be decrypted",
			    PQgetvalue(rows, active, 0));
			fatalx(KS_WRONG_KEK);
		}
		if (active == -1 && next == -1 && n > 0) {
			/* Only retired keys: one of them must open. */
			for (i = 0; i < n && !ks_row_opens(ks, rows, i); i++)
				;
			if (i == n)
				fatalx(KS_WRONG_KEK);
		}
		if (next != -1 && !ks_row_opens(ks, rows, next)) {
			if (active == -1)
				fatalx(KS_WRONG_KEK);
			/* The active key opens, so this row is damaged: replace it. */
			log_warnx("key %s (next) cannot be decrypted; withdrawing it",
			    PQgetvalue(rows, next, 0));
			if (ks_retire(ks, PQgetvalue(rows, next, 0), 1) == -1)
				goto fail;
			ks_event(&ev, PQgetvalue(rows, next, 0),
			    "next -> retired and withdrawn (cannot be decrypted)");
			next = -1;
			goto decide;
		}
	}

	*errstr = "cannot rotate the signing keys";
	switch (action) {
	case KS_EMERGENCY:
		if (ks_retire(ks, PQgetvalue(rows, active, 0), 1) == -1)
			goto fail;
		ks_event(&ev, PQgetvalue(rows, active, 0),
		    "active -> retired and withdrawn (emergency rotation)");
		if (next == -1) {
			if (ks_insert_key(ks, "active", kid, sizeof(kid), errstr) == -1)
				goto fail;
			ks_event(&ev, kid, "new key, active at once (emergency rotation)");
			break;
		}
		values[0] = PQgetvalue(rows, next, 0);
		if (ks_run(ks, KS_ACTIVATE, 1, values) == -1)
			goto fail;
		ks_event(&ev, values[0], "next -> active (emergency rotation)");
		break;
	case KS_PROMOTE:
		if (ks_retire(ks, PQgetvalue(rows, active, 0), 0) == -1)
			goto fail;
		ks_event(&ev, PQgetvalue(rows, active, 0), "active -> retired");
		values[0] = PQgetvalue(rows, next, 0);
		if (ks_run(ks, KS_ACTIVATE, 1, values) == -1)
			goto fail;
		ks_event(&ev, values[0], "next -> active");
		break;
	case KS_TAKE_NEXT:
		values[0] = PQgetvalue(rows, next, 0);
		if (ks_run(ks, KS_ACTIVATE, 1, values) == -1)
			goto fail;
		ks_event(&ev, values[0], "next -> active (there was no active key)");
		break;
	case KS_FIRST:
		if (ks_insert_key(ks, "active", kid, sizeof(kid), errstr) == -1)
			goto fail;
		ks_event(&ev, kid, "new key, active at once (no key to rotate from)");
		break;
	case KS_NONE:
		break;
	}
	if (need_next) {
		if (ks_insert_key(ks, "next", kid, sizeof(kid), errstr) == -1)
			goto fail;
		ks_event(&ev, kid, "new next key (published, not signing)");
	}
	/* Any change of the active key answers every request made before it. */
	if (action != KS_NONE && maxreq != NULL) {
		values[0] = maxreq;
		if (ks_run(ks, KS_DONE, 1, values) == -1)
			goto fail;
	}
	for (i = 0; i < n && expired > 0; i++) {
		if (strcmp(PQgetvalue(rows, i, 1), "retired") != 0 ||
		    strcmp(PQgetvalue(rows, i, 6), "t") != 0)
			continue;
		values[0] = PQgetvalue(rows, i, 0);
		if (ks_run(ks, KS_DELETE, 1, values) == -1)
			goto fail;
		ks_event(&ev, values[0], "retired -> deleted");
	}
	if (ks_command(ks, "COMMIT") == -1) {
		*errstr = "cannot commit the key rotation";
		goto done;
	}
	for (i = 0; i < ev.n; i++)
		log_info("key %s: %s", ev.ev[i].kid, ev.ev[i].what);
	rv = 0;
	goto done;
 fail:
	if (keystore_connected(ks))
		ks_command(ks, "ROLLBACK");
 done:
	PQclear(rows);
	PQclear(reqs);
	return rv;
}

int
keystore_rotate(struct keystore *ks, const char **errstr)
{
	PGresult *res;
	const char *values[1];
	char lock[16];
	int rv, locked;

	if (!keystore_connected(ks)) {
		*errstr = "not connected to the database";
		return -1;
	}
	snprintf(lock, sizeof(lock), "%d", IDP_ROTATION_LOCK);
	values[0] = lock;
	if ((res = ks_exec(ks, KS_LOCK, 1, values, NULL, NULL,
	    PGRES_TUPLES_OK)) == NULL) {
		*errstr = "cannot try the rotation lock";
		return -1;
	}
	locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!locked) {
		log_debug("another instance holds the rotation lock");
		return 0;
	}
	rv = ks_schedule(ks, errstr);
	if ((res = ks_exec(ks, KS_UNLOCK, 1, values, NULL, NULL,
	    PGRES_TUPLES_OK)) == NULL) {
		/* The server drops a session's locks when the session ends. */
		if (rv == 0)
			*errstr = "cannot release the rotation lock";
		return -1;
	}
	PQclear(res);
	return rv;
}

void
keyset_free(struct keyset *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->nkeys; i++) {
		free(set->keys[i].kid);
		free(set->keys[i].state);
		json_decref(set->keys[i].public_jwk);
	}
	free(set->keys);
	free(set->active_kid);
	EVP_PKEY_free(set->active_pkey);
	free(set->payload);
	free(set);
}

/* Open the active key of row i of a KS_LOAD result: fatalx if it does not decrypt,
 * NULL with *errstr if what it holds is not the key its kid names. */
static EVP_PKEY *
ks_open_active(struct keystore *ks, PGresult *res, int i, enum jws_alg alg,
    const char **errstr)
{
	const char *kid = PQgetvalue(res, i, 0);
	unsigned char *enc, *nonce;
	size_t enclen, noncelen, plen;
	EVP_PKEY *pkey = NULL;
	json_t *priv = NULL, *pub = NULL;
	json_error_t jerr;
	char *plain, *thumb = NULL;

	enc = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &enclen);
	nonce = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 5), &noncelen);
	if (enc == NULL || nonce == NULL)
		fatalx("%s: out of memory", __func__);
	plain = keystore_decrypt(ks->kek, kid, enc, enclen, nonce, noncelen, &plen);
	PQfreemem(enc);
	PQfreemem(nonce);
	if (plain == NULL) {
		log_warnx("key %s (active) cannot be decrypted", kid);
		fatalx(KS_WRONG_KEK);
	}
	priv = json_loadb(plain, plen, JSON_REJECT_DUPLICATES, &jerr);
	sodium_free(plain);
	if (priv == NULL) {
		*errstr = "the decrypted key is not JSON";
		goto done;
	}
	if ((pkey = jwk_to_pkey(priv, 1, errstr)) == NULL)
		goto done;
	pub = jwk_public(priv);
	if (!jws_alg_fits_key(alg, pkey) || (thumb = jwk_thumbprint(pub, errstr)) == NULL ||
	    strcmp(thumb, kid) != 0) {
		*errstr = "the decrypted key does not match its kid and alg";
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
 done:
	free(thumb);
	json_decref(pub);
	json_decref(priv);
	return pkey;
}

/* The public JWK of row i, checked against its kid, with "kid", "alg" and "use" set
 * and nothing private; NULL with *errstr. */
static json_t *
ks_public_jwk(PGresult *res, int i, const char **errstr)
{
	const char *kid = PQgetvalue(res, i, 0);
	json_t *stored, *pub;
	json_error_t jerr;
	char *thumb;

	stored = json_loads(PQgetvalue(res, i, 3), JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(stored)) {
		json_decref(stored);
		*errstr = "public_jwk is not a JSON object";
		return NULL;
	}
	pub = jwk_public(stored);
	json_decref(stored);
	if ((thumb = jwk_thumbprint(pub, errstr)) == NULL || strcmp(thumb, kid) != 0) {
		if (thumb != NULL)
			*errstr = "public_jwk does not match its kid";
		free(thumb);
		json_decref(pub);
		return NULL;
	}
	free(thumb);
	json_object_set_new(pub, "kid", json_string(kid));
	json_object_set_new(pub, "alg", json_string(PQgetvalue(res, i, 1)));
	json_object_set_new(pub, "use", json_string("sig"));
	return pub;
}

struct keyset *
keystore_load(struct keystore *ks, const struct keyset *prev, const char **errstr)
{
	struct keyset *set;
	struct keystore_key *k;
	PGresult *res;
	const char *kid, *state, *rowerr;
	json_t *pub;
	int i, n;

	if (!keystore_connected(ks)) {
		*errstr = "not connected to the database";
		return NULL;
	}
	if ((res = ks_exec(ks, KS_LOAD, 0, NULL, NULL, NULL, PGRES_TUPLES_OK)) == NULL) {
		*errstr = "cannot read the signing keys";
		return NULL;
	}
	n = PQntuples(res);
	set = xcalloc(1, sizeof(*set));
	atomic_init(&set->refs, 1);
	set->keys = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*set->keys));
	for (i = 0; i < n; i++) {
		kid = PQgetvalue(res, i, 0);
		state = PQgetvalue(res, i, 2);
		if ((pub = ks_public_jwk(res, i, &rowerr)) == NULL) {
			log_warnx("key %s: %s; not publishing it", kid, rowerr);
			continue;
		}
		k = &set->keys[set->nkeys++];
		k->kid = xstrdup(kid);
		k->state = xstrdup(state);
		k->public_jwk = pub;
		k->created_at = strtoll(PQgetvalue(res, i, 6), NULL, 10);
		k->activated_at = PQgetisnull(res, i, 7) ? -1 :
		    strtoll(PQgetvalue(res, i, 7), NULL, 10);
		if (strcmp(state, "active") != 0 || set->active_kid != NULL)
			continue;

		if ((set->active_alg = jws_alg_from_name(PQgetvalue(res, i, 1))) ==
		    JWS_ALG_UNKNOWN) {
			log_warnx("key %s: unsupported alg", kid);
			continue;
		}
		if (prev != NULL && prev->active_kid != NULL &&
		    strcmp(prev->active_kid, kid) == 0 &&
		    prev->active_alg == set->active_alg) {
			/* The same key: no need to open it again. */
			EVP_PKEY_up_ref(prev->active_pkey);
			set->active_pkey = prev->active_pkey;
		} else if ((set->active_pkey = ks_open_active(ks, res, i,
		    set->active_alg, &rowerr)) == NULL) {
			log_warnx("key %s: %s; not signing with it", kid, rowerr);
			continue;
		}
		set->active_kid = xstrdup(kid);
	}
	PQclear(res);
	if (set->active_kid == NULL) {
		keyset_free(set);
		*errstr = "no usable active key in the database yet";
		return NULL;
	}
	return set;
}
