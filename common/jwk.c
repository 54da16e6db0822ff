/* jwk.c: JSON Web Keys (RFC 7517/7518/8037): export, import, generation, thumbprints (RFC 7638). */

/*
 * Keys cross this module in two shapes: OpenSSL's EVP_PKEY, and the JWK
 * object. Export reads the key's parameters by name (EVP_PKEY_get_bn_param,
 * EVP_PKEY_get_octet_string_param); import collects the same parameters with
 * OSSL_PARAM_BLD and hands them to EVP_PKEY_fromdata. Member names, parameter
 * names and the static error strings for RSA live in one table, in the order
 * the JWK carries them. Private bytes pass through buffers we clear before
 * freeing; what jansson keeps of them is the caller's to guard.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "b64url.h"
#include "jwk.h"
#include "keygen.h"
#include "jws.h"
#include "log.h"
#include "xalloc.h"

struct jwk_member {
	const char	*name;
	const char	*param;
	const char	*err;
};

/* RSA members in JWK order; the first two are public, the rest private. */
static const struct jwk_member jwk_rsa[] = {
	{ "n", OSSL_PKEY_PARAM_RSA_N, "missing or invalid member n" },
	{ "e", OSSL_PKEY_PARAM_RSA_E, "missing or invalid member e" },
	{ "d", OSSL_PKEY_PARAM_RSA_D, "missing or invalid member d" },
	{ "p", OSSL_PKEY_PARAM_RSA_FACTOR1, "missing or invalid member p" },
	{ "q", OSSL_PKEY_PARAM_RSA_FACTOR2, "missing or invalid member q" },
	{ "dp", OSSL_PKEY_PARAM_RSA_EXPONENT1, "missing or invalid member dp" },
	{ "dq", OSSL_PKEY_PARAM_RSA_EXPONENT2, "missing or invalid member dq" },
	{ "qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	    "missing or invalid member qi" },
};
#define JWK_RSA_N	0
#define JWK_RSA_E	1
#define JWK_RSA_D	2
#define JWK_RSA_P	3
#define JWK_RSA_Q	4
#define JWK_RSA_COUNT	(sizeof(jwk_rsa) / sizeof(jwk_rsa[0]))

struct jwk_curve {
	const char	*crv;		/* JWK name */
	const char	*group;		/* OpenSSL group name */
	size_t		 len;		/* bytes of x, y and d */
};

static const struct jwk_curve jwk_curves[] = {
	{ "P-256", "prime256v1", 32 },
	{ "P-384", "secp384r1", 48 },
	{ "P-521", "secp521r1", 66 },
};

#define ED25519_LEN	32

#define JWK_MISMATCH	"the private key does not match the public key"

/* Private JWK members, for jwk_public (RFC 7518 sections 6.2.2, 6.3.2, 6.4). */
static const char *const jwk_private_members[] = {
	"d", "p", "q", "dp", "dq", "qi", "oth", "k",
};

static const struct jwk_curve *
jwk_curve_by_crv(const char *crv)
{
	size_t i;

	for (i = 0; i < sizeof(jwk_curves) / sizeof(jwk_curves[0]); i++)
		if (strcmp(jwk_curves[i].crv, crv) == 0)
			return &jwk_curves[i];
	return NULL;
}

static const struct jwk_curve *
jwk_curve_by_group(const char *group)
{
	size_t i;

	for (i = 0; i < sizeof(jwk_curves) / sizeof(jwk_curves[0]); i++)
		if (strcmp(jwk_curves[i].group, group) == 0 ||
		    strcmp(jwk_curves[i].crv, group) == 0)
			return &jwk_curves[i];
	return NULL;
}

EVP_PKEY *
jwk_generate(enum jws_alg alg, const char **errstr)
{
	EVP_PKEY *key = NULL;

	switch (alg) {
	case JWS_ALG_RS256:
	case JWS_ALG_RS384:
	case JWS_ALG_RS512:
	case JWS_ALG_PS256:
	case JWS_ALG_PS384:
	case JWS_ALG_PS512:
		/* e = 65537; the two prime searches run side by side. */
		if ((key = keygen_rsa(2048, 2, errstr)) == NULL)
			return NULL;
		break;
	case JWS_ALG_ES256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case JWS_ALG_ES384:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case JWS_ALG_ES512:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
		break;
	case JWS_ALG_EDDSA:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	default:
		*errstr = "unsupported alg";
		return NULL;
	}
	if (key == NULL) {
		ERR_clear_error();
		*errstr = "key generation failed";
	}
	return key;
}

static json_t *
jwk_new_object(void)
{
	json_t *o;

	if ((o = json_object()) == NULL)
		fatalx("%s: out of memory", __func__);
	return o;
}

/* Set member name of o to the string s (ASCII, so only memory can fail). */
static void
jwk_set_string(json_t *o, const char *name, const char *s)
{
	if (json_object_set_new(o, name, json_string(s)) != 0)
		fatalx("%s: out of memory", __func__);
}

/* Set member name of o to the base64url of len bytes at buf. */
static void
jwk_set_b64(json_t *o, const char *name, const unsigned char *buf, size_t len)
{
	char *s = b64url_encode(buf, len);

	jwk_set_string(o, name, s);
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/*
 * Add the key's big-number parameter param to o as member name: padded to
 * pad bytes, or in as few bytes as it takes when pad is 0. Returns 1 when
 * added, 0 when the key lacks the parameter, -1 when it does not fit pad.
 */
static int
jwk_add_bn(json_t *o, const char *name, EVP_PKEY *key, const char *param,
    size_t pad)
{
	BIGNUM *bn = NULL;
	unsigned char *buf;
	size_t len;
	int rv = -1;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) {
		ERR_clear_error();
		return 0;
	}
	len = pad != 0 ? pad : (size_t)BN_num_bytes(bn);
	buf = xmalloc(len);
	if (BN_bn2binpad(bn, buf, (int)len) == (int)len) {
		jwk_set_b64(o, name, buf, len);
		rv = 1;
	}
	OPENSSL_cleanse(buf, len);
	free(buf);
	BN_clear_free(bn);
	return rv;
}

/* Add the key's octet-string parameter param (len bytes) as member name. */
static int
jwk_add_octets(json_t *o, const char *name, EVP_PKEY *key, const char *param,
    size_t len)
{
	unsigned char buf[ED25519_LEN];
	size_t got = 0;
	int rv = 0;

	if (len > sizeof(buf))
		return -1;
	if (EVP_PKEY_get_octet_string_param(key, param, buf, sizeof(buf),
	    &got) != 1) {
		ERR_clear_error();
		return 0;
	}
	if (got == len) {
		jwk_set_b64(o, name, buf, len);
		rv = 1;
	} else
		rv = -1;
	OPENSSL_cleanse(buf, sizeof(buf));
	return rv;
}

json_t *
jwk_from_pkey(EVP_PKEY *key, int include_private, const char **errstr)
{
	const struct jwk_curve *c;
	json_t *o;
	char group[64];
	size_t i;
	int r;

	if (key == NULL) {
		*errstr = "no key";
		return NULL;
	}
	o = jwk_new_object();
	if (EVP_PKEY_is_a(key, "RSA")) {
		jwk_set_string(o, "kty", "RSA");
		for (i = 0; i < JWK_RSA_COUNT; i++) {
			if (i >= JWK_RSA_D && !include_private)
				break;
			r = jwk_add_bn(o, jwk_rsa[i].name, key,
			    jwk_rsa[i].param, 0);
			/* Public keys end after e, keys without CRT after d. */
			if (r == 0 && i >= JWK_RSA_D)
				break;
			if (r != 1)
				goto fail;
		}
	} else if (EVP_PKEY_is_a(key, "EC")) {
		if (EVP_PKEY_get_group_name(key, group, sizeof(group),
		    NULL) != 1 || (c = jwk_curve_by_group(group)) == NULL) {
			json_decref(o);
			ERR_clear_error();
			*errstr = "unsupported curve";
			return NULL;
		}
		jwk_set_string(o, "kty", "EC");
		if (jwk_add_bn(o, "x", key, OSSL_PKEY_PARAM_EC_PUB_X,
		    c->len) != 1 ||
		    jwk_add_bn(o, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y,
		    c->len) != 1)
			goto fail;
		jwk_set_string(o, "crv", c->crv);
		if (include_private && jwk_add_bn(o, "d", key,
		    OSSL_PKEY_PARAM_PRIV_KEY, c->len) == -1)
			goto fail;
	} else if (EVP_PKEY_is_a(key, "ED25519")) {
		jwk_set_string(o, "crv", "Ed25519");
		if (include_private && jwk_add_octets(o, "d", key,
		    OSSL_PKEY_PARAM_PRIV_KEY, ED25519_LEN) == -1)
			goto fail;
		if (jwk_add_octets(o, "x", key, OSSL_PKEY_PARAM_PUB_KEY,
		    ED25519_LEN) != 1)
			goto fail;
		jwk_set_string(o, "kty", "OKP");
	} else {
		json_decref(o);
		*errstr = "unsupported key type";
		return NULL;
	}
	return o;
 fail:
	json_decref(o);
	*errstr = "cannot export the key";
	return NULL;
}

/*
 * Decode member name of jwk as strict, non-empty base64url. Returns the new
 * buffer (caller clears and frees) or NULL; *present tells an absent member
 * from an invalid one.
 */
static unsigned char *
jwk_get_b64(const json_t *jwk, const char *name, size_t *len, int *present)
{
	const json_t *v = json_object_get(jwk, name);

	*present = v != NULL;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return NULL;
	return b64url_decode(json_string_value(v), json_string_length(v), len);
}

static void
jwk_free_secret(unsigned char *buf, size_t len)
{
	if (buf == NULL)
		return;
	OPENSSL_cleanse(buf, len);
	free(buf);
}

/* Run EVP_PKEY_fromdata for keytype over the built parameters. */
static EVP_PKEY *
jwk_fromdata(const char *keytype, OSSL_PARAM_BLD *bld, int private)
{
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *key = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto done;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, keytype, NULL)) == NULL)
		goto done;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, private ? EVP_PKEY_KEYPAIR :
	    EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
 done:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return key;
}

/* 1 if the private half of key matches its public half. */
static int
jwk_pairwise_ok(EVP_PKEY *key)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL)
		return 0;
	ok = EVP_PKEY_pairwise_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static EVP_PKEY *
jwk_to_rsa(const json_t *jwk, int need_private, const char **errstr)
{
	BIGNUM *bn[JWK_RSA_COUNT] = { NULL };
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *key = NULL;
	BN_CTX *bctx = NULL;
	BIGNUM *pq = NULL;
	unsigned char *buf;
	size_t i, len, count;
	int present, private;

	if (json_object_get(jwk, "oth") != NULL) {
		*errstr = "multi-prime RSA keys are unsupported";
		return NULL;
	}
	for (i = 0; i < JWK_RSA_COUNT; i++) {
		buf = jwk_get_b64(jwk, jwk_rsa[i].name, &len, &present);
		if (buf == NULL) {
			/* n and e are required; d and p..qi are not. */
			if (!present && i >= JWK_RSA_D)
				continue;
			*errstr = jwk_rsa[i].err;
			goto done;
		}
		/*
		 * Secure BIGNUMs land in the part of the OSSL_PARAM array
		 * that OSSL_PARAM_free clears.
		 */
		if ((bn[i] = i >= JWK_RSA_D ? BN_secure_new() : BN_new()) !=
		    NULL && BN_bin2bn(buf, (int)len, bn[i]) == NULL) {
			BN_free(bn[i]);
			bn[i] = NULL;
		}
		jwk_free_secret(buf, len);
		if (bn[i] == NULL) {
			*errstr = "cannot build the key";
			goto done;
		}
	}
	private = bn[JWK_RSA_D] != NULL;
	if (!private && need_private) {
		*errstr = "the JWK holds no private key";
		goto done;
	}
	/* Without d, CRT members mean nothing; with it, take all or none. */
	for (count = 0, i = JWK_RSA_P; i < JWK_RSA_COUNT; i++)
		count += bn[i] != NULL;
	if (count != 0 && (!private || count != JWK_RSA_COUNT - JWK_RSA_P)) {
		for (i = JWK_RSA_D; i < JWK_RSA_COUNT; i++)
			if (bn[i] == NULL)
				break;
		*errstr = jwk_rsa[i].err;
		goto done;
	}
	if (count != 0) {
		/* Catch a JWK pieced together from two keys. */
		if ((bctx = BN_CTX_new()) == NULL || (pq = BN_new()) == NULL ||
		    BN_mul(pq, bn[JWK_RSA_P], bn[JWK_RSA_Q], bctx) != 1) {
			*errstr = "cannot build the key";
			goto done;
		}
		if (BN_cmp(pq, bn[JWK_RSA_N]) != 0) {
			*errstr = JWK_MISMATCH;
			goto done;
		}
	}

	if ((bld = OSSL_PARAM_BLD_new()) == NULL) {
		*errstr = "cannot build the key";
		goto done;
	}
	for (i = 0; i < JWK_RSA_COUNT; i++) {
		if (bn[i] != NULL &&
		    OSSL_PARAM_BLD_push_BN(bld, jwk_rsa[i].param, bn[i]) != 1) {
			*errstr = "cannot build the key";
			goto done;
		}
	}
	if ((key = jwk_fromdata("RSA", bld, private)) == NULL)
		*errstr = "cannot build the key";
 done:
	ERR_clear_error();
	OSSL_PARAM_BLD_free(bld);
	BN_free(pq);
	BN_CTX_free(bctx);
	for (i = 0; i < JWK_RSA_COUNT; i++)
		BN_clear_free(bn[i]);
	return key;
}

static EVP_PKEY *
jwk_to_ec(const json_t *jwk, int need_private, const char **errstr)
{
	const struct jwk_curve *c;
	const char *crv;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *key = NULL;
	BIGNUM *d = NULL;
	unsigned char *x = NULL, *y = NULL, *dbuf = NULL, *pub = NULL;
	size_t xlen = 0, ylen = 0, dlen = 0, publen = 0;
	int present;

	if ((crv = json_string_value(json_object_get(jwk, "crv"))) == NULL) {
		*errstr = "missing or invalid member crv";
		return NULL;
	}
	if ((c = jwk_curve_by_crv(crv)) == NULL) {
		*errstr = "unsupported crv";
		return NULL;
	}
	x = jwk_get_b64(jwk, "x", &xlen, &present);
	if (x == NULL || xlen != c->len) {
		*errstr = "missing or invalid member x";
		goto done;
	}
	y = jwk_get_b64(jwk, "y", &ylen, &present);
	if (y == NULL || ylen != c->len) {
		*errstr = "missing or invalid member y";
		goto done;
	}
	dbuf = jwk_get_b64(jwk, "d", &dlen, &present);
	if (dbuf == NULL && present) {
		*errstr = "missing or invalid member d";
		goto done;
	}
	if (dbuf == NULL && need_private) {
		*errstr = "the JWK holds no private key";
		goto done;
	}
	if (dbuf != NULL && (dlen != c->len || (d = BN_secure_new()) == NULL ||
	    BN_bin2bn(dbuf, (int)dlen, d) == NULL)) {
		*errstr = "missing or invalid member d";
		goto done;
	}

	/* The public point in uncompressed form: 0x04 || x || y. */
	publen = 1 + 2 * c->len;
	pub = xmalloc(publen);
	pub[0] = 0x04;
	memcpy(pub + 1, x, c->len);
	memcpy(pub + 1 + c->len, y, c->len);

	*errstr = "cannot build the key";
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    c->group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    pub, publen) != 1 ||
	    (d != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY,
	    d) != 1))
		goto done;
	/* fromdata refuses a point that is not on the curve. */
	if ((key = jwk_fromdata("EC", bld, d != NULL)) == NULL) {
		*errstr = "x and y are not a point on the curve";
		goto done;
	}
	if (d != NULL && !jwk_pairwise_ok(key)) {
		EVP_PKEY_free(key);
		key = NULL;
		*errstr = JWK_MISMATCH;
	}
 done:
	ERR_clear_error();
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	free(x);
	free(y);
	free(pub);
	jwk_free_secret(dbuf, dlen);
	return key;
}

static EVP_PKEY *
jwk_to_okp(const json_t *jwk, int need_private, const char **errstr)
{
	const char *crv;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *key = NULL;
	unsigned char *x = NULL, *d = NULL;
	size_t xlen = 0, dlen = 0;
	int present;

	if ((crv = json_string_value(json_object_get(jwk, "crv"))) == NULL) {
		*errstr = "missing or invalid member crv";
		return NULL;
	}
	if (strcmp(crv, "Ed25519") != 0) {
		*errstr = "unsupported crv";
		return NULL;
	}
	x = jwk_get_b64(jwk, "x", &xlen, &present);
	if (x == NULL || xlen != ED25519_LEN) {
		*errstr = "missing or invalid member x";
		goto done;
	}
	d = jwk_get_b64(jwk, "d", &dlen, &present);
	if ((d == NULL && present) || (d != NULL && dlen != ED25519_LEN)) {
		*errstr = "missing or invalid member d";
		goto done;
	}
	if (d == NULL && need_private) {
		*errstr = "the JWK holds no private key";
		goto done;
	}

	*errstr = "cannot build the key";
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    x, xlen) != 1 ||
	    (d != NULL && OSSL_PARAM_BLD_push_octet_string(bld,
	    OSSL_PKEY_PARAM_PRIV_KEY, d, dlen) != 1))
		goto done;
	if ((key = jwk_fromdata("ED25519", bld, d != NULL)) == NULL)
		goto done;
	if (d != NULL && !jwk_pairwise_ok(key)) {
		EVP_PKEY_free(key);
		key = NULL;
		*errstr = JWK_MISMATCH;
	}
 done:
	ERR_clear_error();
	OSSL_PARAM_BLD_free(bld);
	free(x);
	jwk_free_secret(d, dlen);
	return key;
}

EVP_PKEY *
jwk_to_pkey(const json_t *jwk, int need_private, const char **errstr)
{
	const char *kty;

	if (!json_is_object(jwk)) {
		*errstr = "the JWK is not a JSON object";
		return NULL;
	}
	if ((kty = json_string_value(json_object_get(jwk, "kty"))) == NULL) {
		*errstr = "missing or invalid member kty";
		return NULL;
	}
	if (strcmp(kty, "RSA") == 0)
		return jwk_to_rsa(jwk, need_private, errstr);
	if (strcmp(kty, "EC") == 0)
		return jwk_to_ec(jwk, need_private, errstr);
	if (strcmp(kty, "OKP") == 0)
		return jwk_to_okp(jwk, need_private, errstr);
	*errstr = "unsupported kty";
	return NULL;
}

json_t *
jwk_public(const json_t *jwk)
{
	json_t *pub;
	size_t i;

	if (jwk == NULL)
		return NULL;
	if ((pub = json_deep_copy(jwk)) == NULL)
		fatalx("%s: out of memory", __func__);
	if (json_is_object(pub))
		for (i = 0; i < sizeof(jwk_private_members) /
		    sizeof(jwk_private_members[0]); i++)
			json_object_del(pub, jwk_private_members[i]);
	return pub;
}

json_t *
jwk_load_file(const char *path, const char **errstr)
{
	json_error_t err;
	json_t *o;

	if ((o = json_load_file(path, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		*errstr = json_error_code(&err) == json_error_cannot_open_file ?
		    "cannot open" : "not JSON";
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		*errstr = "not a JSON object";
		return NULL;
	}
	return o;
}

/* RFC 7638 section 3.2: the members a thumbprint covers, per kty. */
static const struct {
	const char	*kty;
	const char	*members[4];
} jwk_required[] = {
	{ "RSA", { "e", "kty", "n", NULL } },
	{ "EC", { "crv", "kty", "x", "y" } },
	{ "OKP", { "crv", "kty", "x", NULL } },
	{ "oct", { "k", "kty", NULL, NULL } },
};

char *
jwk_thumbprint(const json_t *jwk, const char **errstr)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	const char *kty;
	json_t *canon = NULL, *v;
	char *text = NULL, *out = NULL;
	size_t i, j, mdlen = 0;

	if ((kty = json_string_value(json_object_get(jwk, "kty"))) == NULL) {
		*errstr = "missing or invalid member kty";
		return NULL;
	}
	for (i = 0; i < sizeof(jwk_required) / sizeof(jwk_required[0]); i++)
		if (strcmp(jwk_required[i].kty, kty) == 0)
			break;
	if (i == sizeof(jwk_required) / sizeof(jwk_required[0])) {
		*errstr = "unsupported kty";
		return NULL;
	}
	canon = jwk_new_object();
	for (j = 0; j < sizeof(jwk_required[i].members) /
	    sizeof(jwk_required[i].members[0]) &&
	    jwk_required[i].members[j] != NULL; j++) {
		v = json_object_get(jwk, jwk_required[i].members[j]);
		if (!json_is_string(v)) {
			*errstr = "the JWK lacks a member its thumbprint needs";
			goto done;
		}
		if (json_object_set(canon, jwk_required[i].members[j], v) != 0)
			fatalx("%s: out of memory", __func__);
	}
	/* Sorted keys and no whitespace are RFC 7638's canonical form. */
	if ((text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		fatalx("%s: out of memory", __func__);
	if (EVP_Q_digest(NULL, "SHA256", NULL, text, strlen(text), md,
	    &mdlen) != 1) {
		ERR_clear_error();
		*errstr = "cannot hash the JWK";
		goto done;
	}
	out = b64url_encode(md, mdlen);
 done:
	free(text);
	json_decref(canon);
	return out;
}
