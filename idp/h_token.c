/* h_token.c: POST /token, the token endpoint (RFC 6749 section 3.2): client
 * authentication (clientauth.c), then one of the grants client_credentials,
 * authorization_code (with PKCE, RFC 7636), refresh_token (rotating) and password
 * (legacy), and JWT access tokens (RFC 9068), ID tokens (OIDC Core) and refresh tokens.
 *
 * Every step that waits (client, database, Argon2id, signer) leaves the request
 * asynchronous, and a client that goes away cancels the wait. Every reply carries
 * Cache-Control: no-store (set for the route by the dispatcher); errors are RFC 6749
 * section 5.2 JSON.
 *
 * Authorization codes (sql/002_users.sql has the table). One atomic UPDATE consumes a
 * live code of the authenticated client and, in the same statement, records the jti
 * and expiry of the access token about to be issued from it and starts its
 * refresh-token family. Recording before signing closes the race with a replay: a
 * second redemption of the code, whenever it comes, finds what to revoke (the family,
 * and the jti into revoked_jtis). A code of another client is not consumed (that
 * client cannot use it, and must not be able to burn it); a used code is a replay,
 * answered invalid_grant after the revocation. redirect_uri must equal the one
 * /authorize stored, and code_verifier must match the stored challenge (S256, or plain
 * where the code says so): the verifier is hashed and compared in constant time.
 *
 * Refresh tokens are 32 random bytes in base64url, stored as the SHA-256 of those 43
 * characters. Every use rotates: the token is marked used and its successor inserted
 * in one statement, which only succeeds while the token is unused, unexpired and its
 * family unrevoked. The tokens are signed BEFORE that statement, and the whole response
 * (access, ID and refresh token) goes into the old row's successor_enc, encrypted
 * (XChaCha20-Poly1305) under a key derived from the presented token with keyed BLAKE2b.
 * So a request that presents an already-rotated token within refresh_reuse_grace
 * seconds (two tabs refreshing at once) gets exactly the response the first one got,
 * while nobody who reads the database can decrypt it: the database holds only the
 * token's SHA-256. Later than the grace window, a used token is reuse (a stolen token,
 * or its thief's copy racing the owner): the whole family is revoked, with the access
 * tokens issued from it. The scope may be narrowed on refresh, never widened; the
 * successor keeps the original scope (RFC 6749 section 6). A refresh token is issued
 * with every authorization_code and password grant of a client that has the
 * refresh_token grant; the offline_access scope is not needed.
 *
 * The password grant (RFC 6749 section 4.3) is legacy, for clients that an
 * administrator explicitly gives it: the user's password goes through the client.
 * It uses the login page's checks and throttle (users.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "b64url.h"
#include "clientauth.h"
#include "clients.h"
#include "form.h"
#include "httputil.h"
#include "idp.h"
#include "idtoken.h"
#include "log.h"
#include "metrics.h"
#include "secret.h"
#include "signclient.h"
#include "store.h"
#include "token.h"
#include "users.h"
#include "worker.h"
#include "xalloc.h"

#define GRANT_CLIENT_CREDENTIALS	"client_credentials"
#define GRANT_AUTHORIZATION_CODE	"authorization_code"
#define GRANT_REFRESH_TOKEN		"refresh_token"
#define GRANT_PASSWORD			"password"
#define TOKEN_MAX_AUDIENCES		8
#define TOKEN_MAX_CODE			512
#define TOKEN_REFRESH_BYTES		32
#define TOKEN_REFRESH_LEN		43	/* base64url of 32 bytes */
#define TOKEN_FAMILY_BYTES		16
#define TOKEN_HASH_SIZE			SECRET_SHA256_HEX
#define TOKEN_JTI_SIZE \
	sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
/* The successor key: BLAKE2b-256 keyed with the presented refresh token's 32 bytes. */
#define TOKEN_SUCCESSOR_CONTEXT		"idp refresh successor v1"

enum token_grant {
	TG_CLIENT_CREDENTIALS,
	TG_AUTHORIZATION_CODE,
	TG_REFRESH_TOKEN,
	TG_PASSWORD,
};

struct token_req {
	struct wreq		*r;
	struct worker		*w;
	struct form		 form;
	enum token_grant	 grant;
	const char		*aud_req[TOKEN_MAX_AUDIENCES];	/* owned by form */
	size_t			 naud;
	struct client_entry	*ce;
	const struct client	*c;
	/* What the request waits for, one at a time. */
	struct clientauth	*auth;
	struct store_query	*q;
	struct sign_req		*sign;
	struct users_login	*login;

	/* The tokens to issue. */
	char			*scope;		/* of the access token ("" for none) */
	json_t			*aud;		/* of the access token */
	struct idtoken_user	 user;		/* user grants */
	long long		 now;
	long long		 auth_time;
	char			*nonce;
	char			 jti[TOKEN_JTI_SIZE];
	long long		 at_exp;
	char			*family;	/* a new family (code, password), or NULL */
	char			*refresh;	/* the refresh token to issue, or NULL */
	char			 refresh_hash[TOKEN_HASH_SIZE];
	char			*refresh_scope;	/* its scope */
	char			*access_token;
	char			*id_token;
	enum jws_alg		 id_alg;	/* the alg at_hash was made for */
	int			 id_signs;

	/* authorization_code */
	char			 code_hash[TOKEN_HASH_SIZE];
	/* refresh_token: the presented token */
	unsigned char		 presented[TOKEN_REFRESH_BYTES];
	char			 presented_hash[TOKEN_HASH_SIZE];
	int			 rotate_lost;
};

static void	token_sign_access(struct token_req *);

/* Random bytes for jti, drawn 4 KiB at a time: one getrandom per 256 tokens, not one
 * per token. Bytes are wiped as they are used. Filled first after the fork. */
static unsigned char	jti_pool[4096];
static size_t		jti_used = sizeof(jti_pool);

/* A new jti: 128 random bits, base64url (22 characters). */
static void
token_jti(char out[TOKEN_JTI_SIZE])
{
	if (jti_used + 16 > sizeof(jti_pool)) {
		randombytes_buf(jti_pool, sizeof(jti_pool));
		jti_used = 0;
	}
	sodium_bin2base64(out, TOKEN_JTI_SIZE, jti_pool + jti_used, 16,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(jti_pool + jti_used, 16);
	jti_used += 16;
}

static void
token_free(struct token_req *t)
{
	clientauth_form_free(&t->form);
	clients_release(t->ce);
	free(t->scope);
	json_decref(t->aud);
	idtoken_user_clear(&t->user);
	free(t->nonce);
	free(t->family);
	if (t->refresh != NULL) {
		sodium_memzero(t->refresh, strlen(t->refresh));
		free(t->refresh);
	}
	free(t->refresh_scope);
	free(t->access_token);
	free(t->id_token);
	sodium_memzero(t->presented, sizeof(t->presented));
	t->r->hctx = NULL;
	free(t);
}

/* The outcomes a token request can end in besides a token: only token_error turns
 * them into responses (RFC 6749 section 5.2, RFC 8707 section 2). */
enum token_err {
	TE_INVALID_REQUEST,
	TE_INVALID_GRANT,
	TE_UNAUTHORIZED_CLIENT,
	TE_UNSUPPORTED_GRANT_TYPE,
	TE_INVALID_SCOPE,
	TE_INVALID_TARGET,
	TE_TOO_MANY_FAILURES,		/* a throttle refuses */
	TE_UNAVAILABLE,			/* database, signer or hash pool */
};

static const struct {
	int		 status;
	const char	*error;
} token_errors[] = {
	[TE_INVALID_REQUEST] = { 400, "invalid_request" },
	[TE_INVALID_GRANT] = { 400, "invalid_grant" },
	[TE_UNAUTHORIZED_CLIENT] = { 400, "unauthorized_client" },
	[TE_UNSUPPORTED_GRANT_TYPE] = { 400, "unsupported_grant_type" },
	[TE_INVALID_SCOPE] = { 400, "invalid_scope" },
	[TE_INVALID_TARGET] = { 400, "invalid_target" },
	[TE_TOO_MANY_FAILURES] = { 429, "temporarily_unavailable" },
	[TE_UNAVAILABLE] = { 503, "temporarily_unavailable" },
};

/* End with an error response. */
static void
token_error(struct token_req *t, enum token_err e, const char *description)
{
	struct wreq *r = t->r;

	if (e == TE_UNAVAILABLE)
		wreq_header(r, "Retry-After", "1");
	token_free(t);
	wreq_reply_error(r, token_errors[e].status, token_errors[e].error, description);
}

static void
token_unavailable(struct token_req *t, const char *description)
{
	token_error(t, TE_UNAVAILABLE, description);
}

/* The client went away while we waited: the reply is only for the log. */
static void
token_gone(struct token_req *t)
{
	struct wreq *r = t->r;

	token_free(t);
	wreq_reply_empty(r, 499);
}

static void
token_cancel(struct wreq *r)
{
	struct token_req *t = r->hctx;

	if (t == NULL)
		return;
	/* Each of these calls back with a "cancelled" outcome, which ends the request
	 * (but for Argon2id runs, which finish so that failures count). */
	if (t->auth != NULL)
		clientauth_cancel(t->auth);
	else if (t->q != NULL)
		store_cancel(t->q);
	else if (t->sign != NULL)
		signclient_cancel(t->sign);
	else if (t->login != NULL)
		users_login_cancel(t->login);
}

/* Run statement stmt; its callback gets t. 0, or -1 after replying 503. */
static int
token_query(struct token_req *t, enum store_stmt stmt, int nparams,
    const char *const *params, store_cb *cb)
{
	if ((t->q = store_exec(worker_store(t->w), stmt, nparams, params, cb,
	    t)) == NULL) {
		token_unavailable(t, "the database is unavailable");
		return -1;
	}
	return 0;
}

/* Fire and forget: revoke a family that will get no token (a rejected code). */
static void
token_revoke_done(enum store_status s, const PGresult *res, void *arg)
{
}

static void
token_family_revoke(struct token_req *t, const char *family, const char *reason)
{
	const char *params[2] = { family, reason };

	store_exec(worker_store(t->w), STORE_TK_FAMILY_REVOKE, 2, params,
	    token_revoke_done, NULL);
}

/* ---- the response -------------------------------------------------------------- */

/* The response of a user grant: access token, scope, refresh and ID token. */
static json_t *
token_user_response(struct token_req *t, long long expires_in)
{
	json_t *resp = token_response(t->access_token, expires_in);

	json_object_set_new(resp, "scope", json_string(t->scope));
	if (t->refresh != NULL)
		json_object_set_new(resp, "refresh_token", json_string(t->refresh));
	if (t->id_token != NULL)
		json_object_set_new(resp, "id_token", json_string(t->id_token));
	return resp;
}

static void
token_reply(struct token_req *t, json_t *resp, enum metrics_grant g)
{
	struct wreq *r = t->r;

	metrics_token_issued(worker_metrics_slot(t->w), g);
	token_free(t);
	wreq_reply_json(r, 200, resp);
}

static void
token_reply_user(struct token_req *t)
{
	static const enum metrics_grant grants[] = {
		[TG_CLIENT_CREDENTIALS] = MG_CLIENT_CREDENTIALS,
		[TG_AUTHORIZATION_CODE] = MG_AUTHORIZATION_CODE,
		[TG_REFRESH_TOKEN] = MG_REFRESH_TOKEN,
		[TG_PASSWORD] = MG_PASSWORD,
	};

	token_reply(t, token_user_response(t, t->at_exp - t->now), grants[t->grant]);
}

/* ---- client_credentials -------------------------------------------------------- */

static void
token_cc_signed(enum sign_status s, const char *jws, size_t len, void *arg)
{
	struct token_req *t = arg;
	json_t *resp;

	t->sign = NULL;
	switch (s) {
	case SIGN_CANCELLED:
		token_gone(t);
		return;
	case SIGN_ERROR:
		token_unavailable(t, "the token could not be signed");
		return;
	case SIGN_UNAVAILABLE:
		token_unavailable(t, "the signer did not answer in time");
		return;
	case SIGN_OK:
		break;
	}
	resp = token_response(jws, worker_conf(t->w)->access_token_ttl);
	if (*t->scope != '\0')
		json_object_set_new(resp, "scope", json_string(t->scope));
	token_reply(t, resp, MG_CLIENT_CREDENTIALS);
}

static void
token_client_credentials(struct token_req *t)
{
	const struct idp_config *conf = worker_conf(t->w);
	const struct client *c = t->c;
	const char *errstr;
	json_t *claims, *aud;
	char jti[TOKEN_JTI_SIZE];
	char *s;
	long long now;

	if (client_scope_select(c, clientauth_param(&t->form, "scope"), &t->scope,
	    &errstr) == -1) {
		token_error(t, TE_INVALID_SCOPE, errstr);
		return;
	}
	if ((aud = client_audience_select(c, t->aud_req, t->naud, conf->issuer,
	    &errstr)) == NULL) {
		token_error(t, TE_INVALID_TARGET, errstr);
		return;
	}

	/* RFC 9068 section 2.2, in this order. */
	now = (long long)time(NULL);
	token_jti(jti);
	claims = json_object();
	json_object_set_new(claims, "iss", json_string(conf->issuer));
	json_object_set_new(claims, "sub", json_string(c->id));
	json_object_set_new(claims, "aud", aud);
	json_object_set_new(claims, "exp", json_integer(now + conf->access_token_ttl));
	json_object_set_new(claims, "iat", json_integer(now));
	json_object_set_new(claims, "jti", json_string(jti));
	json_object_set_new(claims, "client_id", json_string(c->id));
	if (*t->scope != '\0')
		json_object_set_new(claims, "scope", json_string(t->scope));
	if ((s = json_dumps(claims, JSON_COMPACT)) == NULL)
		fatalx("token: json_dumps");
	json_decref(claims);
	t->sign = signclient_sign(worker_signer(t->w), conf->access_token_typ, s,
	    strlen(s),
	    token_cc_signed, t);
	free(s);
	if (t->sign == NULL)
		token_unavailable(t, "too many tokens are waiting for the signer");
}

/* ---- issuing a user's tokens: access token, ID token, then persisting ---------- */

/* A new refresh token into t->refresh and its hash. */
static void
token_new_refresh(struct token_req *t)
{
	unsigned char raw[TOKEN_REFRESH_BYTES];

	randombytes_buf(raw, sizeof(raw));
	t->refresh = b64url_encode(raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	secret_sha256_hex(t->refresh, t->refresh_hash);
}

/* A new family id into t->family. */
static void
token_new_family(struct token_req *t)
{
	t->family = secret_random_b64url(TOKEN_FAMILY_BYTES);
}

/* Start the tokens of a user grant: jti, times; the caller has set user, scope, aud,
 * auth_time, nonce. */
static void
token_plan(struct token_req *t)
{
	t->now = (long long)time(NULL);
	token_jti(t->jti);
	t->at_exp = t->now + worker_conf(t->w)->access_token_ttl;
}

static void
token_refresh_first_done(enum store_status s, const PGresult *res, void *arg)
{
	struct token_req *t = arg;

	t->q = NULL;
	if (s == STORE_CANCELLED) {
		token_gone(t);
		return;
	}
	if (s != STORE_OK) {
		token_unavailable(t, "the database is unavailable");
		return;
	}
	if (strcmp(PQcmdTuples((PGresult *)res), "1") != 0) {
		/* The family was revoked since the code was redeemed: a replay. */
		token_error(t, TE_INVALID_GRANT, "the authorization code was used twice");
		return;
	}
	token_reply_user(t);
}

/* Encrypt the response for a concurrent refresh of the presented token: nonce ||
 * XChaCha20-Poly1305(JSON, ad = the presented token's hash) under a key only the
 * holder of the presented token can derive. Returns a new hex string. */
static char *
token_successor_seal(struct token_req *t)
{
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char *box;
	unsigned long long clen;
	json_t *o = json_object();
	char *s, *hex;
	size_t len, boxlen;

	json_object_set_new(o, "access_token", json_string(t->access_token));
	json_object_set_new(o, "expires_at", json_integer(t->at_exp));
	json_object_set_new(o, "scope", json_string(t->scope));
	json_object_set_new(o, "refresh_token", json_string(t->refresh));
	if (t->id_token != NULL)
		json_object_set_new(o, "id_token", json_string(t->id_token));
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("token: json_dumps");
	json_decref(o);
	len = strlen(s);
	crypto_generichash(key, sizeof(key), (const unsigned char *)TOKEN_SUCCESSOR_CONTEXT,
	    sizeof(TOKEN_SUCCESSOR_CONTEXT) - 1, t->presented, sizeof(t->presented));
	boxlen = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + len +
	    crypto_aead_xchacha20poly1305_ietf_ABYTES;
	box = xmalloc(boxlen);
	randombytes_buf(box, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(box +
	    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, (unsigned char *)s, len,
	    (const unsigned char *)t->presented_hash, strlen(t->presented_hash), NULL,
	    box, key);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(s, len);
	free(s);
	hex = xmalloc(boxlen * 2 + 1);
	sodium_bin2hex(hex, boxlen * 2 + 1, box, boxlen);
	free(box);
	return hex;
}

/* Open what token_successor_seal made (hex), with the presented token. Returns a new
 * JSON object, or NULL. */
static json_t *
token_successor_open(struct token_req *t, const char *hex)
{
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char *box, *plain;
	unsigned long long plen;
	size_t boxlen, hexlen = strlen(hex);
	json_t *o = NULL;

	boxlen = hexlen / 2;
	if (boxlen < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
	    crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return NULL;
	box = xmalloc(boxlen);
	if (sodium_hex2bin(box, boxlen, hex, hexlen, NULL, &boxlen, NULL) != 0) {
		free(box);
		return NULL;
	}
	crypto_generichash(key, sizeof(key), (const unsigned char *)TOKEN_SUCCESSOR_CONTEXT,
	    sizeof(TOKEN_SUCCESSOR_CONTEXT) - 1, t->presented, sizeof(t->presented));
	plain = xmalloc(boxlen + 1);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL,
	    box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    boxlen - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    (const unsigned char *)t->presented_hash, strlen(t->presented_hash), box,
	    key) == 0)
		o = json_loadb((const char *)plain, (size_t)plen, JSON_REJECT_DUPLICATES,
		    NULL);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(plain, boxlen + 1);
	free(plain);
	free(box);
	if (!json_is_object(o) ||
	    !json_is_string(json_object_get(o, "access_token")) ||
	    !json_is_string(json_object_get(o, "refresh_token")) ||
	    !json_is_integer(json_object_get(o, "expires_at"))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void	token_refresh_lookup(struct token_req *);

static void
token_rotated(enum store_status s, const PGresult *res, void *arg)
{
	struct token_req *t = arg;

	t->q = NULL;
	if (s == STORE_CANCELLED) {
		token_gone(t);
		return;
	}
	if (s != STORE_OK) {
		token_unavailable(t, "the database is unavailable");
		return;
	}
	if (strcmp(PQcmdTuples((PGresult *)res), "1") == 0) {
		token_reply_user(t);
		return;
	}
	/* A concurrent request rotated it first (or it was revoked meanwhile): look
	 * again, which finds its successor within the grace window. */
	if (t->rotate_lost++ > 0) {
		token_error(t, TE_INVALID_GRANT, "the refresh token is not valid");
		return;
	}
	free(t->access_token);
	free(t->id_token);
	t->access_token = t->id_token = NULL;
	t->id_signs = 0;
	idtoken_user_clear(&t->user);
	free(t->refresh_scope);
	t->refresh_scope = NULL;
	json_decref(t->aud);
	t->aud = NULL;
	free(t->scope);
	t->scope = NULL;
	sodium_memzero(t->refresh, strlen(t->refresh));
	free(t->refresh);
	t->refresh = NULL;
	token_refresh_lookup(t);
}

/* Both tokens are signed: store what must be stored, then reply. */
static void
token_persist(struct token_req *t)
{
	const struct idp_config *conf = worker_conf(t->w);
	char ttl[32], auth_time[32], at_exp[32], *enc;
	const char *params[9];

	if (t->r->gone) {
		token_gone(t);
		return;
	}
	snprintf(ttl, sizeof(ttl), "%ld", conf->refresh_token_ttl);
	snprintf(auth_time, sizeof(auth_time), "%lld", t->auth_time);
	snprintf(at_exp, sizeof(at_exp), "%lld", t->at_exp);
	switch (t->grant) {
	case TG_AUTHORIZATION_CODE:
		if (t->refresh == NULL)
			break;
		params[0] = t->refresh_hash;
		params[1] = t->family;
		params[2] = t->c->id;
		params[3] = t->user.id;
		params[4] = t->refresh_scope;
		params[5] = auth_time;
		params[6] = ttl;
		token_query(t, STORE_TK_REFRESH_FIRST, 7, params,
		    token_refresh_first_done);
		return;
	case TG_PASSWORD:
		if (t->refresh == NULL)
			break;
		params[0] = t->family;
		params[1] = t->c->id;
		params[2] = t->user.id;
		params[3] = t->refresh_hash;
		params[4] = t->refresh_scope;
		params[5] = auth_time;
		params[6] = ttl;
		params[7] = t->jti;
		params[8] = at_exp;
		/* The family is new: nothing can have revoked it. */
		token_query(t, STORE_TK_FAMILY_START, 9, params,
		    token_refresh_first_done);
		return;
	case TG_REFRESH_TOKEN:
		enc = token_successor_seal(t);
		params[0] = t->presented_hash;
		params[1] = t->refresh_hash;
		params[2] = enc;
		params[3] = ttl;
		params[4] = t->jti;
		params[5] = at_exp;
		token_query(t, STORE_TK_REFRESH_ROTATE, 6, params, token_rotated);
		free(enc);
		return;
	case TG_CLIENT_CREDENTIALS:
		break;
	}
	token_reply_user(t);
}

static void	token_sign_id(struct token_req *);

static void
token_id_signed(enum sign_status s, const char *jws, size_t len, void *arg)
{
	struct token_req *t = arg;
	enum jws_alg alg;

	t->sign = NULL;
	switch (s) {
	case SIGN_CANCELLED:
		token_gone(t);
		return;
	case SIGN_ERROR:
		token_unavailable(t, "the ID token could not be signed");
		return;
	case SIGN_UNAVAILABLE:
		token_unavailable(t, "the signer did not answer in time");
		return;
	case SIGN_OK:
		break;
	}
	/* at_hash depends on the alg, which is the signing key's: should a rotation to
	 * a key of another alg have come between the two signatures, sign again. */
	if ((alg = idtoken_jws_alg(jws)) != t->id_alg) {
		if (t->id_signs >= 2 || alg == JWS_ALG_UNKNOWN) {
			token_unavailable(t, "the signing key changed; try again");
			return;
		}
		t->id_alg = alg;
		token_sign_id(t);
		return;
	}
	t->id_token = xstrdup(jws);
	token_persist(t);
}

static void
token_sign_id(struct token_req *t)
{
	const struct idp_config *conf = worker_conf(t->w);
	json_t *claims;
	char *at_hash, *s;

	if ((at_hash = token_half_hash(t->id_alg, t->access_token)) == NULL) {
		token_unavailable(t, "unsupported signing alg");
		return;
	}
	claims = idtoken_claims(conf->issuer, &t->user, t->c->id, t->scope, t->now,
	    conf->id_token_ttl, t->auth_time, t->nonce, at_hash);
	free(at_hash);
	if ((s = json_dumps(claims, JSON_COMPACT)) == NULL)
		fatalx("token: json_dumps");
	json_decref(claims);
	t->id_signs++;
	t->sign = signclient_sign(worker_signer(t->w), "JWT", s, strlen(s),
	    token_id_signed, t);
	free(s);
	if (t->sign == NULL)
		token_unavailable(t, "too many tokens are waiting for the signer");
}

static void
token_access_signed(enum sign_status s, const char *jws, size_t len, void *arg)
{
	struct token_req *t = arg;

	t->sign = NULL;
	switch (s) {
	case SIGN_CANCELLED:
		token_gone(t);
		return;
	case SIGN_ERROR:
		token_unavailable(t, "the token could not be signed");
		return;
	case SIGN_UNAVAILABLE:
		token_unavailable(t, "the signer did not answer in time");
		return;
	case SIGN_OK:
		break;
	}
	t->access_token = xstrdup(jws);
	if (!idtoken_scope_has(t->scope, "openid")) {
		token_persist(t);
		return;
	}
	t->id_alg = idtoken_jws_alg(jws);
	token_sign_id(t);
}

/* The access token of a user grant (RFC 9068 section 2.2): as for client_credentials,
 * with the user as sub, auth_time, and the user's roles. */
static void
token_sign_access(struct token_req *t)
{
	const struct idp_config *conf = worker_conf(t->w);
	json_t *claims;
	char *s;

	if (t->r->gone) {
		token_gone(t);
		return;
	}
	claims = json_object();
	json_object_set_new(claims, "iss", json_string(conf->issuer));
	json_object_set_new(claims, "sub", json_string(t->user.id));
	json_object_set_new(claims, "aud", json_incref(t->aud));
	json_object_set_new(claims, "exp", json_integer(t->at_exp));
	json_object_set_new(claims, "iat", json_integer(t->now));
	json_object_set_new(claims, "jti", json_string(t->jti));
	json_object_set_new(claims, "client_id", json_string(t->c->id));
	if (*t->scope != '\0')
		json_object_set_new(claims, "scope", json_string(t->scope));
	json_object_set_new(claims, "auth_time", json_integer(t->auth_time));
	if (json_array_size(t->user.roles) > 0)
		json_object_set_new(claims, "roles", json_deep_copy(t->user.roles));
	if ((s = json_dumps(claims, JSON_COMPACT)) == NULL)
		fatalx("token: json_dumps");
	json_decref(claims);
	t->sign = signclient_sign(worker_signer(t->w), conf->access_token_typ, s,
	    strlen(s),
	    token_access_signed, t);
	free(s);
	if (t->sign == NULL)
		token_unavailable(t, "too many tokens are waiting for the signer");
}

/* The audience of the access token, from resource/audience. 0, or -1 after replying. */
static int
token_audience(struct token_req *t)
{
	const char *errstr;

	if ((t->aud = client_audience_select(t->c, t->aud_req, t->naud,
	    worker_conf(t->w)->issuer, &errstr)) == NULL) {
		token_error(t, TE_INVALID_TARGET, errstr);
		return -1;
	}
	return 0;
}

/* Read the STORE_UC_* columns of row 0 into t->user. 0, or -1 after replying. */
static int
token_read_user(struct token_req *t, const PGresult *res)
{
	const char *values[STORE_UC__COUNT], *errstr;
	int i;

	for (i = 0; i < STORE_UC__COUNT; i++)
		values[i] = PQgetisnull(res, 0, i) ? NULL : PQgetvalue(res, 0, i);
	if (idtoken_user_read(&t->user, values, &errstr) == -1) {
		log_warnx("%s: %s", t->r->id, errstr);
		token_unavailable(t, "unreadable user");
		return -1;
	}
	return 0;
}

static const char *
token_col(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

/* ---- authorization_code -------------------------------------------------------- */

/* RFC 7636 section 4.1: 43 to 128 characters of [A-Za-z0-9-._~]. */
static int
token_verifier_ok(const char *v)
{
	size_t n = strlen(v);

	return n >= 43 && n <= 128 && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

/* 1 if verifier matches challenge under method (S256 or plain), in constant time:
 * both sides are hashed to equal length before they are compared. */
static int
token_pkce_ok(const char *verifier, const char *challenge, const char *method)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	char *computed;
	int ok;

	if (!token_verifier_ok(verifier))
		return 0;
	if (strcmp(method, "plain") == 0)
		return secret_str_equal(verifier, challenge);
	if (strcmp(method, "S256") != 0)
		return 0;
	if (!EVP_Q_digest(NULL, "SHA256", NULL, verifier, strlen(verifier), md, &mdlen))
		fatalx("SHA-256 unavailable");
	computed = b64url_encode(md, mdlen);
	ok = secret_str_equal(computed, challenge);
	free(computed);
	return ok;
}

static void
token_code_replay_done(enum store_status s, const PGresult *res, void *arg)
{
	struct token_req *t = arg;

	t->q = NULL;
	if (s == STORE_CANCELLED) {
		token_gone(t);
		return;
	}
	if (s == STORE_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_warnx("%s: client %s: authorization code replayed: %s families and "
		    "%s access tokens revoked", t->r->id, t->c->id, PQgetvalue(res, 0, 1),
		    PQgetvalue(res, 0, 2));
	token_error(t, TE_INVALID_GRANT,
	    "the authorization code is invalid, expired or already used");
}

static void
token_code_redeemed(enum store_status s, const PGresult *res, void *arg)
{
	struct token_req *t = arg;
	const char *redirect_uri = clientauth_param(&t->form, "redirect_uri");
	const char *verifier = clientauth_param(&t->form, "code_verifier");
	const char *stored_uri, *challenge, *method, *why = NULL;
	const char *params[1];

	t->q = NULL;
	if (s == STORE_CANCELLED) {
		token_gone(t);
		return;
	}
	if (s != STORE_OK) {
		token_unavailable(t, "the database is unavailable");
		return;
	}
	if (PQntuples(res) != 1) {
		/* Unknown, expired, another client's, or used: a replay revokes what was
		 * issued from the code. */
		params[0] = t->code_hash;
		token_query(t, STORE_TK_CODE_REPLAY, 1, params, token_code_replay_done);
		return;
	}
	if (token_read_user(t, res) == -1)
		return;
	stored_uri = token_col(res, STORE_CR_REDIRECT_URI);
	challenge = token_col(res, STORE_CR_CHALLENGE);
	method = token_col(res, STORE_CR_METHOD);
	if (redirect_uri == NULL || stored_uri == NULL ||
	    strcmp(redirect_uri, stored_uri) != 0)
		why = "redirect_uri does not match the authorization request";
	else if (challenge != NULL && verifier == NULL)
		why = "code_verifier is missing";
	else if (challenge != NULL && (method == NULL ||
	    !token_pkce_ok(verifier, challenge, method)))
		why = "code_verifier does not match the code_challenge";
	else if (challenge == NULL && (verifier != NULL || t->c->public))
		why = "the authorization request had no code_challenge";
	else if (t->user.disabled)
		why = "the user is disabled";
	if (why != NULL) {
		log_info("%s: client %s: code refused: %s", t->r->id, t->c->id, why);
		if (t->family != NULL)
			token_family_revoke(t, t->family, "code_rejected");
		token_error(t, TE_INVALID_GRANT, why);
		return;
	}
	t->scope = xstrdup(token_col(res, STORE_CR_SCOPE) != NULL ?
	    token_col(res, STORE_CR_SCOPE) : "");
	t->refresh_scope = xstrdup(t->scope);
	if (token_col(res, STORE_CR_NONCE) != NULL)
		t->nonce = xstrdup(token_col(res, STORE_CR_NONCE));
	t->auth_time = strtoll(token_col(res, STORE_CR_AUTH_TIME), NULL, 10);
	if (t->family != NULL)
		token_new_refresh(t);
	token_sign_access(t);
}

static void
token_authorization_code(struct token_req *t)
{
	const char *code = clientauth_param(&t->form, "code");
	const char *params[5];
	char at_exp[32];

	if (code == NULL) {
		token_error(t, TE_INVALID_REQUEST, "code is missing");
		return;
	}
	if (strlen(code) > TOKEN_MAX_CODE) {
		token_error(t, TE_INVALID_GRANT,
		    "the authorization code is invalid, expired or already used");
		return;
	}
	/* Checked before the code is spent. */
	if (token_audience(t) == -1)
		return;
	secret_sha256_hex(code, t->code_hash);
	token_plan(t);
	if (client_has_grant(t->c, GRANT_REFRESH_TOKEN))
		token_new_family(t);
	snprintf(at_exp, sizeof(at_exp), "%lld", t->at_exp);
	params[0] = t->code_hash;
	params[1] = t->c->id;
	params[2] = t->jti;
	params[3] = at_exp;
	params[4] = t->family != NULL ? t->family : "";
	token_query(t, STORE_TK_CODE_REDEEM, 5, params, token_code_redeemed);
}

/* ---- refresh_token ------------------------------------------------------------- */

/* 1 if every word of narrow is in wide. */
static int
token_scope_subset(const char *narrow, const char *wide)
{
	const char *p;
	size_t n;
	char *w;
	int ok = 1;

	for (p = narrow; ok && *p != '\0'; p += n) {
		p += strspn(p, " ");
		if ((n = strcspn(p, " ")) == 0)
			break;
		w = xstrndup(p, n);
		ok = idtoken_scope_has(wide, w);
		free(w);
	}
	return ok;
}

static void
token_reuse_done(enum store_status s, const PGresult *res, void *arg)
{
	struct token_req *t = arg;

	t->q = NULL;
	if (s == STORE_CANCELLED) {
		token_gone(t);
		return;
	}
	if (s == STORE_OK && PQntuples(res) == 1)
		log_warnx("%s: client %s: refresh token reused: %s families and %s access "
		    "tokens revoked", t->r->id, t->c->id, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1));
	token_error(t, TE_INVALID_GRANT, "the refresh token is not valid");
}

/* A concurrent refresh within the grace window: the response the first one got. */
static void
token_refresh_again(struct token_req *t, const char *enc)
{
	json_t *o, *resp, *v;
	long long exp, now = (long long)time(NULL);

	if (enc == NULL || (o = token_successor_open(t, enc)) == NULL) {
		token_error(t, TE_INVALID_GRANT, "the refresh token is not valid");
		return;
	}
	exp = (long long)json_integer_value(json_object_get(o, "expires_at"));
	resp = token_response(json_string_value(json_object_get(o, "access_token")),
	    exp > now ? exp - now : 0);
	if ((v = json_object_get(o, "scope")) != NULL)
		json_object_set(resp, "scope", v);
	json_object_set(resp, "refresh_token", json_object_get(o, "refresh_token"));
	if ((v = json_object_get(o, "id_token")) != NULL)
		json_object_set(resp, "id_token", v);
	json_decref(o);
	log_debug("%s: client %s: concurrent refresh answered with the same successor",
	    t->r->id, t->c->id);
	token_reply(t, resp, MG_REFRESH_TOKEN);
}

static void
token_refresh_found(enum store_status s, const PGresult *res, void *arg)
{
	struct token_req *t = arg;
	const struct idp_config *conf = worker_conf(t->w);
	const char *requested = clientauth_param(&t->form, "scope");
	const char *params[2], *client, *scope;
	int live, used;
	double age;

	t->q = NULL;
	if (s == STORE_CANCELLED) {
		token_gone(t);
		return;
	}
	if (s != STORE_OK) {
		token_unavailable(t, "the database is unavailable");
		return;
	}
	client = PQntuples(res) == 1 ? token_col(res, STORE_RG_CLIENT) : NULL;
	if (client == NULL || strcmp(client, t->c->id) != 0) {
		token_error(t, TE_INVALID_GRANT, "the refresh token is not valid");
		return;
	}
	live = token_col(res, STORE_RG_LIVE)[0] == 't';
	used = token_col(res, STORE_RG_USED)[0] == 't';
	age = strtod(token_col(res, STORE_RG_USED_AGE), NULL);
	if (used) {
		if (live && age <= (double)conf->refresh_reuse_grace) {
			token_refresh_again(t, token_col(res, STORE_RG_SUCCESSOR_ENC));
			return;
		}
		if (!live) {
			token_error(t, TE_INVALID_GRANT, "the refresh token is not valid");
			return;
		}
		params[0] = token_col(res, STORE_RG_FAMILY);
		params[1] = "reuse";
		token_query(t, STORE_TK_FAMILY_REVOKE, 2, params, token_reuse_done);
		return;
	}
	if (!live) {
		token_error(t, TE_INVALID_GRANT, "the refresh token is not valid");
		return;
	}
	if (token_read_user(t, res) == -1)
		return;
	if (t->user.disabled) {
		token_error(t, TE_INVALID_GRANT, "the user is disabled");
		return;
	}
	scope = token_col(res, STORE_RG_SCOPE) != NULL ? token_col(res, STORE_RG_SCOPE) :
	    "";
	if (requested != NULL && !token_scope_subset(requested, scope)) {
		token_error(t, TE_INVALID_SCOPE,
		    "the scope exceeds the scope of the refresh token");
		return;
	}
	t->refresh_scope = xstrdup(scope);
	t->scope = xstrdup(requested != NULL ? requested : scope);
	t->auth_time = strtoll(token_col(res, STORE_RG_AUTH_TIME), NULL, 10);
	if (token_audience(t) == -1)
		return;
	token_plan(t);
	token_new_refresh(t);
	token_sign_access(t);
}

static void
token_refresh_lookup(struct token_req *t)
{
	const char *params[1] = { t->presented_hash };

	token_query(t, STORE_TK_REFRESH_GET, 1, params, token_refresh_found);
}

static void
token_refresh_token(struct token_req *t)
{
	const char *rt = clientauth_param(&t->form, "refresh_token");
	const char *requested = clientauth_param(&t->form, "scope");
	size_t n;

	if (rt == NULL) {
		token_error(t, TE_INVALID_REQUEST, "refresh_token is missing");
		return;
	}
	if (requested != NULL && strspn(requested, " ") == strlen(requested))
		requested = NULL;
	if (strlen(rt) != TOKEN_REFRESH_LEN ||
	    sodium_base642bin(t->presented, sizeof(t->presented), rt, strlen(rt), NULL,
	    &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != TOKEN_REFRESH_BYTES) {
		token_error(t, TE_INVALID_GRANT, "the refresh token is not valid");
		return;
	}
	secret_sha256_hex(rt, t->presented_hash);
	token_refresh_lookup(t);
}

/* ---- password ------------------------------------------------------------------ */

static void
token_password_user(enum store_status s, const PGresult *res, void *arg)
{
	struct token_req *t = arg;

	t->q = NULL;
	if (s == STORE_CANCELLED) {
		token_gone(t);
		return;
	}
	if (s != STORE_OK) {
		token_unavailable(t, "the database is unavailable");
		return;
	}
	if (PQntuples(res) != 1) {
		token_error(t, TE_INVALID_GRANT, "wrong username or password");
		return;
	}
	if (token_read_user(t, res) == -1)
		return;
	if (t->user.disabled) {
		token_error(t, TE_INVALID_GRANT, "wrong username or password");
		return;
	}
	token_plan(t);
	t->auth_time = t->now;
	if (client_has_grant(t->c, GRANT_REFRESH_TOKEN)) {
		token_new_family(t);
		token_new_refresh(t);
		t->refresh_scope = xstrdup(t->scope);
	}
	token_sign_access(t);
}

static void
token_password_checked(const struct users_outcome *o, void *arg)
{
	struct token_req *t = arg;
	const char *params[1];
	char buf[32];

	t->login = NULL;
	switch (o->result) {
	case USERS_OK:
		if (t->r->gone) {
			token_gone(t);
			return;
		}
		params[0] = o->user_id;
		token_query(t, STORE_TK_USER_GET, 1, params, token_password_user);
		return;
	case USERS_BAD:
	case USERS_DISABLED:
		token_error(t, TE_INVALID_GRANT, "wrong username or password");
		return;
	case USERS_THROTTLED:
		snprintf(buf, sizeof(buf), "%ld", o->retry_after);
		wreq_header(t->r, "Retry-After", buf);
		token_error(t, TE_TOO_MANY_FAILURES,
		    "too many failed attempts; try again later");
		return;
	case USERS_UNAVAILABLE:
		token_unavailable(t, "the user database is unavailable");
		return;
	case USERS_CANCELLED:
		token_gone(t);
		return;
	}
}

static void
token_password(struct token_req *t)
{
	const char *username = clientauth_param(&t->form, "username");
	const char *password = clientauth_param(&t->form, "password");
	const char *errstr;

	if (username == NULL || password == NULL) {
		token_error(t, TE_INVALID_REQUEST, "username and password are required");
		return;
	}
	if (client_scope_select(t->c, clientauth_param(&t->form, "scope"), &t->scope,
	    &errstr) == -1) {
		token_error(t, TE_INVALID_SCOPE, errstr);
		return;
	}
	if (token_audience(t) == -1)
		return;
	if (strlen(username) > USERS_LOGIN_MAX || strlen(password) > USERS_PASSWORD_MAX) {
		token_error(t, TE_INVALID_GRANT, "wrong username or password");
		return;
	}
	t->login = users_login(t->w, username, password, t->r->addr,
	    token_password_checked, t);
}

/* ---- the request --------------------------------------------------------------- */

static void
token_authenticated(const struct clientauth_result *res, void *arg)
{
	struct token_req *t = arg;
	struct wreq *r = t->r;

	t->auth = NULL;
	if (res->status != CLIENTAUTH_OK) {
		token_free(t);
		clientauth_reply(r, res);
		return;
	}
	t->ce = res->ce;
	t->c = res->client;
	if (!client_has_grant(t->c, form_get(&t->form, "grant_type", NULL)) ||
	    (t->c->public && (t->grant == TG_CLIENT_CREDENTIALS ||
	    t->grant == TG_PASSWORD))) {
		token_error(t, TE_UNAUTHORIZED_CLIENT,
		    "the client may not use this grant type");
		return;
	}
	switch (t->grant) {
	case TG_CLIENT_CREDENTIALS:
		token_client_credentials(t);
		break;
	case TG_AUTHORIZATION_CODE:
		token_authorization_code(t);
		break;
	case TG_REFRESH_TOKEN:
		token_refresh_token(t);
		break;
	case TG_PASSWORD:
		token_password(t);
		break;
	}
}

/* Read and check the parameters. 0, or -1 after replying. */
static int
token_params(struct token_req *t)
{
	static const char *const repeatable[] = { "resource", NULL };
	static const struct {
		const char		*name;
		enum token_grant	 grant;
	} grants[] = {
		{ GRANT_CLIENT_CREDENTIALS, TG_CLIENT_CREDENTIALS },
		{ GRANT_AUTHORIZATION_CODE, TG_AUTHORIZATION_CODE },
		{ GRANT_REFRESH_TOKEN, TG_REFRESH_TOKEN },
		{ GRANT_PASSWORD, TG_PASSWORD },
	};
	const char *errstr, *grant, *name, *v;
	size_t i, n;

	if (clientauth_form(t->r, &t->form, repeatable, &errstr) == -1) {
		token_error(t, TE_INVALID_REQUEST, errstr);
		return -1;
	}
	if ((grant = clientauth_param(&t->form, "grant_type")) == NULL) {
		token_error(t, TE_INVALID_REQUEST, "grant_type is missing");
		return -1;
	}
	for (i = 0; i < sizeof(grants) / sizeof(grants[0]); i++)
		if (strcmp(grant, grants[i].name) == 0)
			break;
	if (i == sizeof(grants) / sizeof(grants[0])) {
		token_error(t, TE_UNSUPPORTED_GRANT_TYPE, "unsupported grant_type");
		return -1;
	}
	t->grant = grants[i].grant;
	for (i = 0; i < t->form.nparams; i++) {
		name = t->form.params[i].name;
		v = t->form.params[i].value;
		if ((strcmp(name, "resource") != 0 && strcmp(name, "audience") != 0) ||
		    *v == '\0')
			continue;
		if (strcmp(name, "resource") == 0) {
			/* RFC 8707: an absolute URI without a fragment. */
			n = strcspn(v, ":/?#");
			if (n == 0 || v[n] != ':' || strchr(v, '#') != NULL) {
				token_error(t, TE_INVALID_TARGET,
				    "resource must be an absolute URI without a fragment");
				return -1;
			}
		}
		if (t->naud == TOKEN_MAX_AUDIENCES) {
			token_error(t, TE_INVALID_TARGET, "too many audiences");
			return -1;
		}
		t->aud_req[t->naud++] = v;
	}
	return 0;
}

void
h_token(struct wreq *r)
{
	struct token_req *t = xcalloc(1, sizeof(*t));

	t->r = r;
	t->w = r->w;
	r->hctx = t;
	if (token_params(t) == -1)
		return;
	wreq_async(r, token_cancel);
	t->auth = clientauth_start(r, &t->form, CLIENTAUTH_ALLOW_PUBLIC,
	    token_authenticated, t);
}
