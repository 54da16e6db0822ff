/* jws.c: JWS compact serialization (RFC 7515) signing and verification with OpenSSL 3 EVP. */

/*
 * The JOSE algorithms map onto EVP like this: RS* are RSA PKCS#1 v1.5 with
 * the alg's digest; PS* are RSA-PSS with MGF1 over the same digest and a salt
 * as long as the digest (RFC 7518 section 3.5); ES* are ECDSA whose signature
 * JOSE carries as the raw concatenation R || S, each padded to the size of the
 * curve, while OpenSSL speaks DER, so we convert both ways; EdDSA is Ed25519,
 * signed in one shot with no separate digest.
 *
 * jws_verify trusts nothing before the signature checks out: it reads only
 * the header (for alg), checks the signature over the signing input exactly as
 * received, and only then decodes and parses the payload.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>

#include "b64url.h"
#include "jws.h"
#include "xalloc.h"

enum jws_kind {
	JWS_KIND_RSA,
	JWS_KIND_PSS,
	JWS_KIND_EC,
	JWS_KIND_ED,
};

struct jws_algdef {
	enum jws_alg		 alg;
	const char		*name;
	enum jws_kind		 kind;
	const EVP_MD		*(*md)(void);
	int			 nid;		/* ES*: the curve */
	size_t			 coordlen;	/* ES*: bytes of R */
};

static const struct jws_algdef jws_algs[] = {
	{ JWS_ALG_RS256, "RS256", JWS_KIND_RSA, EVP_sha256, NID_undef, 0 },
	{ JWS_ALG_RS384, "RS384", JWS_KIND_RSA, EVP_sha384, NID_undef, 0 },
	{ JWS_ALG_RS512, "RS512", JWS_KIND_RSA, EVP_sha512, NID_undef, 0 },
	{ JWS_ALG_PS256, "PS256", JWS_KIND_PSS, EVP_sha256, NID_undef, 0 },
	{ JWS_ALG_PS384, "PS384", JWS_KIND_PSS, EVP_sha384, NID_undef, 0 },
	{ JWS_ALG_PS512, "PS512", JWS_KIND_PSS, EVP_sha512, NID_undef, 0 },
	{ JWS_ALG_ES256, "ES256", JWS_KIND_EC, EVP_sha256,
	    NID_X9_62_prime256v1, 32 },
	{ JWS_ALG_ES384, "ES384", JWS_KIND_EC, EVP_sha384, NID_secp384r1, 48 },
	{ JWS_ALG_ES512, "ES512", JWS_KIND_EC, EVP_sha512, NID_secp521r1, 66 },
	{ JWS_ALG_EDDSA, "EdDSA", JWS_KIND_ED, NULL, NID_undef, 0 },
};

/* Room for the DER form of a P-521 ECDSA signature (at most 139 bytes). */
#define JWS_DER_MAX	160

static const struct jws_algdef *
jws_algdef(enum jws_alg alg)
{
	size_t i;

	for (i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
		if (jws_algs[i].alg == alg)
			return &jws_algs[i];
	return NULL;
}

const char *
jws_alg_name(enum jws_alg alg)
{
	const struct jws_algdef *ad = jws_algdef(alg);

	return ad != NULL ? ad->name : NULL;
}

enum jws_alg
jws_alg_from_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return JWS_ALG_UNKNOWN;
	for (i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
		if (strcmp(jws_algs[i].name, name) == 0)
			return jws_algs[i].alg;
	return JWS_ALG_UNKNOWN;
}

/* The NID of an EC key's curve, or NID_undef. */
static int
jws_key_curve(EVP_PKEY *key)
{
	char name[64];
	int nid;

	if (EVP_PKEY_get_group_name(key, name, sizeof(name), NULL) != 1)
		return NID_undef;
	if ((nid = EC_curve_nist2nid(name)) == NID_undef)
		nid = OBJ_sn2nid(name);
	return nid;
}

int
jws_alg_fits_key(enum jws_alg alg, EVP_PKEY *key)
{
	const struct jws_algdef *ad = jws_algdef(alg);

	if (ad == NULL || key == NULL)
		return 0;
	switch (ad->kind) {
	case JWS_KIND_RSA:
	case JWS_KIND_PSS:
		return EVP_PKEY_is_a(key, "RSA");
	case JWS_KIND_EC:
		return EVP_PKEY_is_a(key, "EC") &&
		    jws_key_curve(key) == ad->nid;
	case JWS_KIND_ED:
		return EVP_PKEY_is_a(key, "ED25519");
	}
	return 0;
}

/* Set RSA-PSS padding with a digest-long salt on a sign or verify context. */
static int
jws_set_pss(EVP_PKEY_CTX *pctx)
{
	return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
}

/* Turn a DER ECDSA signature into JOSE's R || S, 2 * coordlen bytes at out. */
static int
jws_der_to_raw(const unsigned char *der, size_t derlen, size_t coordlen,
    unsigned char *out)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *esig;
	int ok;

	if ((esig = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL)
		return 0;
	ECDSA_SIG_get0(esig, &r, &s);
	ok = BN_bn2binpad(r, out, (int)coordlen) == (int)coordlen &&
	    BN_bn2binpad(s, out + coordlen, (int)coordlen) == (int)coordlen;
	ECDSA_SIG_free(esig);
	return ok;
}

/* Turn JOSE's R || S (2 * coordlen bytes) into DER at der; 0 on failure. */
static size_t
jws_raw_to_der(const unsigned char *raw, size_t coordlen, unsigned char *der,
    size_t dersize)
{
	ECDSA_SIG *esig = NULL;
	BIGNUM *r, *s = NULL;
	unsigned char *p = der;
	size_t len = 0;
	int n;

	r = BN_bin2bn(raw, (int)coordlen, NULL);
	s = BN_bin2bn(raw + coordlen, (int)coordlen, NULL);
	if (r == NULL || s == NULL || (esig = ECDSA_SIG_new()) == NULL)
		goto done;
	if (ECDSA_SIG_set0(esig, r, s) != 1)
		goto done;
	r = s = NULL;		/* esig owns them now */
	n = i2d_ECDSA_SIG(esig, NULL);
	if (n <= 0 || (size_t)n > dersize)
		goto done;
	if (i2d_ECDSA_SIG(esig, &p) == n)
		len = (size_t)n;
 done:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(esig);
	return len;
}

int
jws_sign_raw(EVP_PKEY *key, enum jws_alg alg, const void *in, size_t inlen,
    unsigned char **sig, size_t *siglen, const char **errstr)
{
	const struct jws_algdef *ad = jws_algdef(alg);
	unsigned char der[JWS_DER_MAX], *buf = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	size_t len;
	int size;

	*sig = NULL;
	*siglen = 0;
	if (ad == NULL) {
		*errstr = "unsupported alg";
		return -1;
	}
	if (!jws_alg_fits_key(alg, key)) {
		*errstr = "the key does not fit the alg";
		return -1;
	}
	if ((size = EVP_PKEY_get_size(key)) <= 0)
		goto fail;
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		goto fail;
	if (EVP_DigestSignInit(mctx, &pctx, ad->md != NULL ? ad->md() : NULL,
	    NULL, key) != 1)
		goto fail;
	if (ad->kind == JWS_KIND_PSS && !jws_set_pss(pctx))
		goto fail;

	if (ad->kind == JWS_KIND_EC) {
		len = sizeof(der);
		if ((size_t)size > len ||
		    EVP_DigestSign(mctx, der, &len, in, inlen) != 1)
			goto fail;
		buf = xmalloc(2 * ad->coordlen);
		if (!jws_der_to_raw(der, len, ad->coordlen, buf))
			goto fail;
		len = 2 * ad->coordlen;
	} else {
		len = (size_t)size;
		buf = xmalloc(len);
		if (EVP_DigestSign(mctx, buf, &len, in, inlen) != 1)
			goto fail;
	}
	EVP_MD_CTX_free(mctx);
	*sig = buf;
	*siglen = len;
	return 0;

 fail:
	ERR_clear_error();
	EVP_MD_CTX_free(mctx);
	free(buf);
	*errstr = "signing failed";
	return -1;
}

char *
jws_sign(EVP_PKEY *key, enum jws_alg alg, const json_t *header,
    const json_t *payload, const char **errstr)
{
	const char *name = jws_alg_name(alg);
	char *hjson = NULL, *pjson = NULL, *h64 = NULL, *p64 = NULL;
	char *s64 = NULL, *out = NULL;
	unsigned char *sig = NULL;
	size_t hlen, plen, slen, siglen;
	json_t *a;

	if (name == NULL) {
		*errstr = "unsupported alg";
		return NULL;
	}
	if (!json_is_object(header) || !json_is_object(payload)) {
		*errstr = "the JWS header and payload must be JSON objects";
		return NULL;
	}
	a = json_object_get(header, "alg");
	/* "Ed25519" is the fully-specified name of EdDSA over Ed25519 (RFC 9864). */
	if (!json_is_string(a) || (strcmp(json_string_value(a), name) != 0 &&
	    !(alg == JWS_ALG_EDDSA && strcmp(json_string_value(a), "Ed25519") == 0))) {
		*errstr = "the JWS header's alg does not match";
		return NULL;
	}
	if ((hjson = json_dumps(header, JSON_COMPACT)) == NULL ||
	    (pjson = json_dumps(payload, JSON_COMPACT)) == NULL) {
		*errstr = "cannot serialize the JWS";
		goto done;
	}
	h64 = b64url_encode(hjson, strlen(hjson));
	p64 = b64url_encode(pjson, strlen(pjson));
	hlen = strlen(h64);
	plen = strlen(p64);

	/* The signing input goes straight into the front of the result. */
	out = xmalloc(hlen + 1 + plen + 1);
	memcpy(out, h64, hlen);
	out[hlen] = '.';
	memcpy(out + hlen + 1, p64, plen);
	out[hlen + 1 + plen] = '\0';
	if (jws_sign_raw(key, alg, out, hlen + 1 + plen, &sig, &siglen,
	    errstr) == -1) {
		free(out);
		out = NULL;
		goto done;
	}
	s64 = b64url_encode(sig, siglen);
	slen = strlen(s64);
	out = xreallocarray(out, 1, hlen + 1 + plen + 1 + slen + 1);
	out[hlen + 1 + plen] = '.';
	memcpy(out + hlen + 1 + plen + 1, s64, slen + 1);
 done:
	free(hjson);
	free(pjson);
	free(h64);
	free(p64);
	free(s64);
	free(sig);
	return out;
}

/* Check a raw JOSE signature over in with key; 0 if good, -1 + *errstr. */
static int
jws_verify_raw(EVP_PKEY *key, const struct jws_algdef *ad, const void *in,
    size_t inlen, const unsigned char *sig, size_t siglen, const char **errstr)
{
	unsigned char der[JWS_DER_MAX];
	EVP_MD_CTX *mctx;
	EVP_PKEY_CTX *pctx = NULL;
	int rv = -1;

	if (ad->kind == JWS_KIND_EC) {
		if (siglen != 2 * ad->coordlen) {
			*errstr = "bad signature length";
			return -1;
		}
		if ((siglen = jws_raw_to_der(sig, ad->coordlen, der,
		    sizeof(der))) == 0) {
			*errstr = "bad signature";
			return -1;
		}
		sig = der;
	}
	*errstr = "bad signature";
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		goto done;
	if (EVP_DigestVerifyInit(mctx, &pctx, ad->md != NULL ? ad->md() : NULL,
	    NULL, key) != 1)
		goto done;
	if (ad->kind == JWS_KIND_PSS && !jws_set_pss(pctx))
		goto done;
	if (EVP_DigestVerify(mctx, sig, siglen, in, inlen) == 1)
		rv = 0;
 done:
	if (rv == -1)
		ERR_clear_error();
	EVP_MD_CTX_free(mctx);
	return rv;
}

/* Decode one base64url segment holding a JSON object; NULL + *errstr. */
static json_t *
jws_decode_object(const char *s, size_t len, const char *b64err,
    const char *objerr, const char **errstr)
{
	unsigned char *buf;
	json_t *obj;
	size_t n;

	if ((buf = b64url_decode(s, len, &n)) == NULL) {
		*errstr = b64err;
		return NULL;
	}
	obj = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (!json_is_object(obj)) {
		json_decref(obj);
		*errstr = objerr;
		return NULL;
	}
	return obj;
}

/* Find the two dots of a compact JWS; -1 unless there are exactly two. */
static int
jws_split(const char *compact, const char **dot1, const char **dot2)
{
	if (compact == NULL || (*dot1 = strchr(compact, '.')) == NULL ||
	    (*dot2 = strchr(*dot1 + 1, '.')) == NULL ||
	    strchr(*dot2 + 1, '.') != NULL)
		return -1;
	return 0;
}

static json_t *
jws_decode_header(const char *compact, const char *dot1, const char **errstr)
{
	return jws_decode_object(compact, (size_t)(dot1 - compact),
	    "bad base64url in the JWS header",
	    "the JWS header is not a JSON object", errstr);
}

static json_t *
jws_decode_payload(const char *dot1, const char *dot2, const char **errstr)
{
	return jws_decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1),
	    "bad base64url in the JWS payload",
	    "the JWS payload is not a JSON object", errstr);
}

int
jws_verify(const char *compact, EVP_PKEY *key, enum jws_alg alg,
    json_t **header, json_t **payload, const char **errstr)
{
	const struct jws_algdef *ad = jws_algdef(alg);
	const char *dot1, *dot2, *name;
	unsigned char *sig = NULL;
	json_t *hdr = NULL, *pl = NULL;
	size_t siglen;
	int rv = -1;

	if (header != NULL)
		*header = NULL;
	if (payload != NULL)
		*payload = NULL;
	if (ad == NULL) {
		*errstr = "unsupported alg";
		return -1;
	}
	if (!jws_alg_fits_key(alg, key)) {
		*errstr = "the key does not fit the alg";
		return -1;
	}
	if (jws_split(compact, &dot1, &dot2) == -1) {
		*errstr = "a compact JWS has exactly three segments";
		return -1;
	}
	if ((hdr = jws_decode_header(compact, dot1, errstr)) == NULL)
		goto done;
	name = json_string_value(json_object_get(hdr, "alg"));
	if (name == NULL || strcmp(name, ad->name) != 0) {
		*errstr = "the JWS alg is not the expected one";
		goto done;
	}
	/* No extension is understood here, so none may be critical. */
	if (json_object_get(hdr, "crit") != NULL) {
		*errstr = "unsupported crit header";
		goto done;
	}
	if ((sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &siglen)) ==
	    NULL) {
		*errstr = "bad base64url in the JWS signature";
		goto done;
	}
	if (jws_verify_raw(key, ad, compact, (size_t)(dot2 - compact), sig,
	    siglen, errstr) == -1)
		goto done;
	if ((pl = jws_decode_payload(dot1, dot2, errstr)) == NULL)
		goto done;

	if (header != NULL) {
		*header = hdr;
		hdr = NULL;
	}
	if (payload != NULL) {
		*payload = pl;
		pl = NULL;
	}
	rv = 0;
 done:
	free(sig);
	json_decref(hdr);
	json_decref(pl);
	return rv;
}

int
jws_decode_unverified(const char *compact, json_t **header, json_t **payload,
    const char **errstr)
{
	const char *dot1, *dot2;
	json_t *hdr = NULL, *pl = NULL;

	if (header != NULL)
		*header = NULL;
	if (payload != NULL)
		*payload = NULL;
	if (jws_split(compact, &dot1, &dot2) == -1) {
		*errstr = "a compact JWS has exactly three segments";
		return -1;
	}
	if ((hdr = jws_decode_header(compact, dot1, errstr)) == NULL)
		return -1;
	if ((pl = jws_decode_payload(dot1, dot2, errstr)) == NULL) {
		json_decref(hdr);
		return -1;
	}
	if (header != NULL)
		*header = hdr;
	else
		json_decref(hdr);
	if (payload != NULL)
		*payload = pl;
	else
		json_decref(pl);
	return 0;
}
