/* test-jws.c: JWS signing and verification against RFC 7515 appendix A and RFC 8037 appendix A. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "check.h"
#include "jwk.h"
#include "jws.h"

/* RFC 7515 A.2.1: the RSA key (a JWK with CRT members). */
static const char rfc7515_rsa[] =
    "{\"kty\":\"RSA\","
    "\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\","
    "\"e\":\"AQAB\","
    "\"d\":\"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97I"
    "jlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0"
    "BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn"
    "439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYT"
    "CBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLh"
    "BOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ\","
    "\"p\":\"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdi"
    "YrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPG"
    "BY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc\","
    "\"q\":\"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxa"
    "ewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA"
    "-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc\","
    "\"dp\":\"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3Q"
    "CLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb"
    "34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0\","
    "\"dq\":\"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa"
    "7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-ky"
    "NlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU\","
    "\"qi\":\"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2o"
    "y26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLU"
    "W0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U\"}";

/*
 * RFC 7515 A.1-A.3 share this payload:
 * {"iss":"joe",CRLF "exp":1300819380,CRLF "http://example.com/is_root":true}
 */
#define RFC7515_PAYLOAD							\
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt" \
	"cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"

/* RFC 7515 A.2: {"alg":"RS256"} */
#define RFC7515_A2_INPUT	"eyJhbGciOiJSUzI1NiJ9." RFC7515_PAYLOAD
#define RFC7515_A2_SIG							\
	"cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7" \
	"AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4" \
	"BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K" \
	"0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv" \
	"hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB" \
	"p0igcN_IoypGlUPQGe77Rw"

/* RFC 7515 A.3: the P-256 key and the ES256 JWS ({"alg":"ES256"}). */
static const char rfc7515_ec256[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
    "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}";
#define RFC7515_A3_JWS							\
	"eyJhbGciOiJFUzI1NiJ9." RFC7515_PAYLOAD "."			\
	"DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA" \
	"pmWQxfKTUJqPP3-Kg6NU1Q"

/* RFC 7515 A.4: the P-521 key and the ES512 JWS over the text "Payload". */
static const char rfc7515_ec521[] =
    "{\"kty\":\"EC\",\"crv\":\"P-521\","
    "\"x\":\"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_"
    "NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk\","
    "\"y\":\"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDl"
    "y79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2\","
    "\"d\":\"AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPA"
    "xerEzgdRhajnu0ferB0d53vM9mE15j2C\"}";
#define RFC7515_A4_JWS							\
	"eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA."				\
	"AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZq" \
	"wqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8Kp" \
	"EHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn"

/*
 * RFC 8037 A.1 (the private key) and A.4 ({"alg":"EdDSA"} over the text
 * "Example of Ed25519 signing").
 */
static const char rfc8037_ed25519[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
    "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
#define RFC8037_A4_INPUT						\
	"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
#define RFC8037_A4_SIG							\
	"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5B" \
	"hVsPt9g7sVvpAr_MuM0KAg"

static const enum jws_alg all_algs[] = {
	JWS_ALG_RS256, JWS_ALG_RS384, JWS_ALG_RS512,
	JWS_ALG_PS256, JWS_ALG_PS384, JWS_ALG_PS512,
	JWS_ALG_ES256, JWS_ALG_ES384, JWS_ALG_ES512,
	JWS_ALG_EDDSA,
};
#define NALGS	(sizeof(all_algs) / sizeof(all_algs[0]))

/* Build a key from JWK text; NULL (and a failed check) if that fails. */
static EVP_PKEY *
key_from_text(const char *text, int need_private)
{
	const char *errstr = NULL;
	EVP_PKEY *key;
	json_t *jwk;

	jwk = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	CHECK(jwk != NULL);
	key = jwk_to_pkey(jwk, need_private, &errstr);
	CHECK(key != NULL);
	if (key == NULL)
		fprintf(stderr, "jwk_to_pkey: %s\n", errstr);
	json_decref(jwk);
	return key;
}

/* The public half of a JWK given as text. */
static EVP_PKEY *
public_key_from_text(const char *text)
{
	const char *errstr = NULL;
	EVP_PKEY *key;
	json_t *jwk, *pub;

	jwk = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	pub = jwk_public(jwk);
	key = jwk_to_pkey(pub, 0, &errstr);
	CHECK(key != NULL);
	json_decref(pub);
	json_decref(jwk);
	return key;
}

/* The public half of key, through a JWK export and import. */
static EVP_PKEY *
public_of(EVP_PKEY *key)
{
	const char *errstr = NULL;
	EVP_PKEY *pub;
	json_t *jwk;

	jwk = jwk_from_pkey(key, 0, &errstr);
	CHECK(jwk != NULL);
	pub = jwk_to_pkey(jwk, 0, &errstr);
	CHECK(pub != NULL);
	json_decref(jwk);
	return pub;
}

/* Sign raw input and compare the signature's base64url with want. */
static int
sign_raw_is(EVP_PKEY *key, enum jws_alg alg, const char *input,
    const char *want)
{
	const char *errstr = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *s;
	int ok;

	if (jws_sign_raw(key, alg, input, strlen(input), &sig, &siglen,
	    &errstr) == -1)
		return 0;
	s = b64url_encode(sig, siglen);
	ok = strcmp(s, want) == 0;
	free(s);
	free(sig);
	return ok;
}

/* Verify and return the error string (NULL on success); drops outputs. */
static const char *
verify_err(const char *compact, EVP_PKEY *key, enum jws_alg alg)
{
	const char *errstr = NULL;
	json_t *h = (json_t *)1, *p = (json_t *)1;

	if (jws_verify(compact, key, alg, &h, &p, &errstr) == 0) {
		json_decref(h);
		json_decref(p);
		return NULL;
	}
	CHECK(h == NULL && p == NULL);
	CHECK(errstr != NULL);
	return errstr != NULL ? errstr : "?";
}

/* Build header.payload.signature from parts already encoded. */
static char *
join3(const char *h64, const char *p64, const char *s64)
{
	size_t n = strlen(h64) + strlen(p64) + strlen(s64) + 3;
	char *s = malloc(n);

	snprintf(s, n, "%s.%s.%s", h64, p64, s64);
	return s;
}

/* base64url of a string. */
static char *
b64s(const char *s)
{
	return b64url_encode(s, strlen(s));
}

/* A token with the given header and payload text, signed for real by key. */
static char *
forge(EVP_PKEY *key, enum jws_alg alg, const char *hjson, const char *pjson)
{
	const char *errstr = NULL;
	unsigned char *sig = NULL;
	char *h64 = b64s(hjson), *p64 = b64s(pjson), *in, *s64, *out;
	size_t siglen = 0;

	in = join3(h64, p64, "");
	in[strlen(in) - 1] = '\0';	/* drop the trailing dot */
	CHECK(jws_sign_raw(key, alg, in, strlen(in), &sig, &siglen,
	    &errstr) == 0);
	s64 = b64url_encode(sig, siglen);
	out = join3(h64, p64, s64);
	free(h64);
	free(p64);
	free(in);
	free(s64);
	free(sig);
	return out;
}

static void
test_alg_names(void)
{
	size_t i;

	for (i = 0; i < NALGS; i++) {
		CHECK(jws_alg_name(all_algs[i]) != NULL);
		CHECK(jws_alg_from_name(jws_alg_name(all_algs[i])) ==
		    all_algs[i]);
	}
	CHECK(strcmp(jws_alg_name(JWS_ALG_RS256), "RS256") == 0);
	CHECK(strcmp(jws_alg_name(JWS_ALG_PS512), "PS512") == 0);
	CHECK(strcmp(jws_alg_name(JWS_ALG_ES512), "ES512") == 0);
	CHECK(strcmp(jws_alg_name(JWS_ALG_EDDSA), "EdDSA") == 0);
	CHECK(jws_alg_name(JWS_ALG_UNKNOWN) == NULL);
	CHECK(jws_alg_from_name("none") == JWS_ALG_UNKNOWN);
	CHECK(jws_alg_from_name("None") == JWS_ALG_UNKNOWN);
	CHECK(jws_alg_from_name("HS256") == JWS_ALG_UNKNOWN);
	CHECK(jws_alg_from_name("rs256") == JWS_ALG_UNKNOWN);
	CHECK(jws_alg_from_name("EDDSA") == JWS_ALG_UNKNOWN);
	CHECK(jws_alg_from_name("RS256 ") == JWS_ALG_UNKNOWN);
	CHECK(jws_alg_from_name("") == JWS_ALG_UNKNOWN);
}

static void
test_rfc7515_a2(void)
{
	const char *jws = RFC7515_A2_INPUT "." RFC7515_A2_SIG;
	const char *errstr = NULL;
	EVP_PKEY *key, *pub;
	json_t *h = NULL, *p = NULL;
	char *tampered;

	key = key_from_text(rfc7515_rsa, 1);
	pub = public_key_from_text(rfc7515_rsa);
	if (key == NULL || pub == NULL)
		goto done;

	/* PKCS#1 v1.5 is deterministic: the published signature, exactly. */
	CHECK(sign_raw_is(key, JWS_ALG_RS256, RFC7515_A2_INPUT,
	    RFC7515_A2_SIG));

	CHECK(jws_verify(jws, pub, JWS_ALG_RS256, &h, &p, &errstr) == 0);
	CHECK(json_is_object(h) && json_object_size(h) == 1);
	CHECK(strcmp(json_string_value(json_object_get(h, "alg")), "RS256") ==
	    0);
	CHECK(json_is_object(p) && json_object_size(p) == 3);
	CHECK(strcmp(json_string_value(json_object_get(p, "iss")), "joe") ==
	    0);
	CHECK(json_integer_value(json_object_get(p, "exp")) == 1300819380);
	CHECK(json_is_true(json_object_get(p, "http://example.com/is_root")));
	json_decref(h);
	json_decref(p);
	/* The private key verifies too, and the outputs are optional. */
	CHECK(jws_verify(jws, key, JWS_ALG_RS256, NULL, NULL, &errstr) == 0);

	/* The same token under another RSA alg is refused by its header. */
	CHECK(verify_err(jws, pub, JWS_ALG_RS384) != NULL);
	CHECK(verify_err(jws, pub, JWS_ALG_PS256) != NULL);

	/* One changed character of the payload. */
	tampered = strdup(jws);
	tampered[strlen("eyJhbGciOiJSUzI1NiJ9.") + 5] ^= 0x01;
	CHECK(verify_err(tampered, pub, JWS_ALG_RS256) != NULL);
	free(tampered);
 done:
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
}

static void
test_rfc7515_a3(void)
{
	const char *errstr = NULL;
	EVP_PKEY *key, *pub;
	json_t *h = NULL, *p = NULL, *hdr, *pl;
	char *jws;

	key = key_from_text(rfc7515_ec256, 1);
	pub = public_key_from_text(rfc7515_ec256);
	if (key == NULL || pub == NULL)
		goto done;

	CHECK(jws_verify(RFC7515_A3_JWS, pub, JWS_ALG_ES256, &h, &p,
	    &errstr) == 0);
	CHECK(json_integer_value(json_object_get(p, "exp")) == 1300819380);
	json_decref(h);
	json_decref(p);

	/* ECDSA is randomized: sign anew and verify with the public key. */
	hdr = json_pack("{s:s}", "alg", "ES256");
	pl = json_pack("{s:s}", "sub", "alice");
	jws = jws_sign(key, JWS_ALG_ES256, hdr, pl, &errstr);
	CHECK(jws != NULL);
	CHECK(jws != NULL && verify_err(jws, pub, JWS_ALG_ES256) == NULL);
	free(jws);
	json_decref(hdr);
	json_decref(pl);

	/* Wrong curve for the alg. */
	CHECK(verify_err(RFC7515_A3_JWS, pub, JWS_ALG_ES384) != NULL);
 done:
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
}

/*
 * RFC 7515 A.4 and RFC 8037 A.4 sign text, not a JSON object, so jws_verify
 * cannot accept them. It checks the signature before it parses the payload,
 * though, so a good signature shows as the payload error and a bad one as
 * "bad signature".
 */
#define PAYLOAD_NOT_OBJECT	"the JWS payload is not a JSON object"

static void
test_rfc7515_a4(void)
{
	EVP_PKEY *pub;
	const char *e;
	char *tampered;

	if ((pub = public_key_from_text(rfc7515_ec521)) == NULL)
		return;
	e = verify_err(RFC7515_A4_JWS, pub, JWS_ALG_ES512);
	CHECK(e != NULL && strcmp(e, PAYLOAD_NOT_OBJECT) == 0);
	tampered = strdup(RFC7515_A4_JWS);
	tampered[strlen(tampered) - 10] ^= 0x01;
	e = verify_err(tampered, pub, JWS_ALG_ES512);
	CHECK(e != NULL && strcmp(e, "bad signature") == 0);
	free(tampered);
	EVP_PKEY_free(pub);
}

static void
test_rfc8037(void)
{
	const char *jws = RFC8037_A4_INPUT "." RFC8037_A4_SIG;
	unsigned char *sig;
	EVP_MD_CTX *mctx;
	EVP_PKEY *key, *pub;
	const char *e;
	char *tampered;
	size_t siglen;

	key = key_from_text(rfc8037_ed25519, 1);
	pub = public_key_from_text(rfc8037_ed25519);
	if (key == NULL || pub == NULL)
		goto done;

	/* A.4: Ed25519 is deterministic, so the signature must match. */
	CHECK(sign_raw_is(key, JWS_ALG_EDDSA, RFC8037_A4_INPUT,
	    RFC8037_A4_SIG));

	/* A.5: the signature verifies with the public key alone. */
	sig = b64url_decode(RFC8037_A4_SIG, strlen(RFC8037_A4_SIG), &siglen);
	mctx = EVP_MD_CTX_new();
	CHECK(sig != NULL && siglen == 64);
	CHECK(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pub) == 1);
	CHECK(EVP_DigestVerify(mctx, sig, siglen,
	    (const unsigned char *)RFC8037_A4_INPUT,
	    strlen(RFC8037_A4_INPUT)) == 1);
	EVP_MD_CTX_free(mctx);
	free(sig);
	e = verify_err(jws, pub, JWS_ALG_EDDSA);
	CHECK(e != NULL && strcmp(e, PAYLOAD_NOT_OBJECT) == 0);
	tampered = strdup(jws);
	tampered[strlen(tampered) - 5] ^= 0x01;
	e = verify_err(tampered, pub, JWS_ALG_EDDSA);
	CHECK(e != NULL && strcmp(e, "bad signature") == 0);
	free(tampered);
 done:
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
}

/* Sign with a fresh key for every alg; verify with the public key only. */
static void
test_roundtrips(void)
{
	const char *errstr = NULL;
	EVP_PKEY *keys[NALGS], *pubs[NALGS];
	json_t *hdr, *pl, *h, *p;
	char *jws, *want, *dot;
	unsigned char *raw;
	size_t i, j, n;

	pl = json_pack("{s:s, s:s, s:I, s:[s,s], s:{s:b}}", "sub", "alice",
	    "iss", "https://idp.example", "exp", (json_int_t)2000000000,
	    "aud", "a", "b", "cnf", "x", 1);
	for (i = 0; i < NALGS; i++) {
		keys[i] = jwk_generate(all_algs[i], &errstr);
		CHECK(keys[i] != NULL);
		pubs[i] = keys[i] != NULL ? public_of(keys[i]) : NULL;
	}
	for (i = 0; i < NALGS; i++) {
		if (keys[i] == NULL || pubs[i] == NULL)
			continue;
		CHECK(jws_alg_fits_key(all_algs[i], keys[i]));
		CHECK(jws_alg_fits_key(all_algs[i], pubs[i]));

		/* Members stay in insertion order, without whitespace. */
		hdr = json_object();
		json_object_set_new(hdr, "typ", json_string("JWT"));
		json_object_set_new(hdr, "alg",
		    json_string(jws_alg_name(all_algs[i])));
		json_object_set_new(hdr, "kid", json_string("k1"));
		jws = jws_sign(keys[i], all_algs[i], hdr, pl, &errstr);
		CHECK(jws != NULL);
		if (jws == NULL) {
			json_decref(hdr);
			continue;
		}
		dot = strchr(jws, '.');
		raw = b64url_decode(jws, (size_t)(dot - jws), &n);
		want = NULL;
		if (asprintf(&want, "{\"typ\":\"JWT\",\"alg\":\"%s\","
		    "\"kid\":\"k1\"}", jws_alg_name(all_algs[i])) == -1)
			want = NULL;
		CHECK(raw != NULL && want != NULL &&
		    strcmp((char *)raw, want) == 0);
		free(raw);
		free(want);

		h = p = NULL;
		CHECK(jws_verify(jws, pubs[i], all_algs[i], &h, &p,
		    &errstr) == 0);
		CHECK(json_equal(h, hdr) && json_equal(p, pl));
		json_decref(h);
		json_decref(p);

		/* Decoding without verifying gives the same. */
		h = p = NULL;
		CHECK(jws_decode_unverified(jws, &h, &p, &errstr) == 0);
		CHECK(json_equal(h, hdr) && json_equal(p, pl));
		json_decref(h);
		json_decref(p);

		/* No other alg, and no other key, accepts it. */
		for (j = 0; j < NALGS; j++) {
			if (j == i)
				continue;
			CHECK(verify_err(jws, pubs[j], all_algs[j]) != NULL);
			CHECK(verify_err(jws, pubs[j], all_algs[i]) != NULL);
			CHECK(verify_err(jws, pubs[i], all_algs[j]) != NULL);
		}
		/* Signing with the public half alone fails. */
		CHECK(jws_sign(pubs[i], all_algs[i], hdr, pl, &errstr) == NULL);

		free(jws);
		json_decref(hdr);
	}
	for (i = 0; i < NALGS; i++) {
		EVP_PKEY_free(keys[i]);
		EVP_PKEY_free(pubs[i]);
	}
	json_decref(pl);
}

/* What jws_sign refuses. */
static void
test_sign_refusals(void)
{
	const char *errstr = NULL;
	EVP_PKEY *rsa, *ec256, *ec384;
	json_t *hdr, *pl, *arr;
	unsigned char *sig = (unsigned char *)1;
	size_t siglen = 1;

	rsa = jwk_generate(JWS_ALG_RS256, &errstr);
	ec256 = jwk_generate(JWS_ALG_ES256, &errstr);
	ec384 = jwk_generate(JWS_ALG_ES384, &errstr);
	CHECK(rsa != NULL && ec256 != NULL && ec384 != NULL);
	pl = json_pack("{s:s}", "sub", "alice");
	arr = json_pack("[s]", "x");

	hdr = json_pack("{s:s}", "alg", "RS256");
	CHECK(jws_sign(rsa, JWS_ALG_UNKNOWN, hdr, pl, &errstr) == NULL);
	CHECK(jws_sign(ec256, JWS_ALG_RS256, hdr, pl, &errstr) == NULL);
	CHECK(jws_sign(rsa, JWS_ALG_RS256, arr, pl, &errstr) == NULL);
	CHECK(jws_sign(rsa, JWS_ALG_RS256, hdr, arr, &errstr) == NULL);
	CHECK(jws_sign(rsa, JWS_ALG_RS256, NULL, pl, &errstr) == NULL);
	/* The header must name the alg it is signed with. */
	CHECK(jws_sign(rsa, JWS_ALG_RS384, hdr, pl, &errstr) == NULL);
	json_decref(hdr);
	hdr = json_pack("{s:s}", "typ", "JWT");
	CHECK(jws_sign(rsa, JWS_ALG_RS256, hdr, pl, &errstr) == NULL);
	json_decref(hdr);

	/* ES256 needs P-256; RSA keys do not do EdDSA. */
	CHECK(jws_sign_raw(ec384, JWS_ALG_ES256, "x", 1, &sig, &siglen,
	    &errstr) == -1);
	CHECK(sig == NULL && siglen == 0 && errstr != NULL);
	CHECK(jws_sign_raw(rsa, JWS_ALG_EDDSA, "x", 1, &sig, &siglen,
	    &errstr) == -1);
	CHECK(!jws_alg_fits_key(JWS_ALG_ES256, ec384));
	CHECK(!jws_alg_fits_key(JWS_ALG_ES512, ec256));
	CHECK(!jws_alg_fits_key(JWS_ALG_EDDSA, rsa));
	CHECK(!jws_alg_fits_key(JWS_ALG_UNKNOWN, rsa));
	CHECK(!jws_alg_fits_key(JWS_ALG_RS256, NULL));

	/* ECDSA raw signatures have the curve's fixed length. */
	CHECK(jws_sign_raw(ec256, JWS_ALG_ES256, "x", 1, &sig, &siglen,
	    &errstr) == 0 && siglen == 64);
	free(sig);
	CHECK(jws_sign_raw(ec384, JWS_ALG_ES384, "x", 1, &sig, &siglen,
	    &errstr) == 0 && siglen == 96);
	free(sig);

	json_decref(pl);
	json_decref(arr);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
}

/* Malformed, tampered and confused tokens. */
static void
test_verify_refusals(void)
{
	const char *errstr = NULL;
	EVP_PKEY *rsa, *ec, *ec521;
	json_t *hdr, *pl, *h, *p;
	char *good, *t, *h64, *p64, *s64, *dot2;
	unsigned char *sig, *longer;
	size_t i, siglen, len;
	const char *e;
	char c;

	rsa = key_from_text(rfc7515_rsa, 1);
	ec = key_from_text(rfc7515_ec256, 1);
	ec521 = jwk_generate(JWS_ALG_ES512, &errstr);
	if (rsa == NULL || ec == NULL || ec521 == NULL)
		goto done;
	hdr = json_pack("{s:s}", "alg", "ES256");
	pl = json_pack("{s:s}", "sub", "alice");
	good = jws_sign(ec, JWS_ALG_ES256, hdr, pl, &errstr);
	json_decref(hdr);
	json_decref(pl);
	CHECK(good != NULL);
	if (good == NULL)
		goto done;
	CHECK(verify_err(good, ec, JWS_ALG_ES256) == NULL);

	/* Wrong number of segments, empty pieces. */
	CHECK(verify_err("", ec, JWS_ALG_ES256) != NULL);
	CHECK(verify_err(".", ec, JWS_ALG_ES256) != NULL);
	CHECK(verify_err("..", ec, JWS_ALG_ES256) != NULL);
	CHECK(verify_err("...", ec, JWS_ALG_ES256) != NULL);
	CHECK(verify_err("abc", ec, JWS_ALG_ES256) != NULL);
	CHECK(verify_err(NULL, ec, JWS_ALG_ES256) != NULL);
	dot2 = strrchr(good, '.');
	t = strndup(good, (size_t)(dot2 - good));
	/* Two segments. */
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	if (asprintf(&t, "%s.", good) != -1) {
		CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
		free(t);
	}
	if (asprintf(&t, "%s.AAAA", good) != -1) {
		CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
		free(t);
	}

	/* Every single-character change is caught. */
	len = strlen(good);
	t = strdup(good);
	for (i = 0; i < len; i++) {
		if ((c = t[i]) == '.')
			continue;
		t[i] = c == 'A' ? 'B' : 'A';
		CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
		t[i] = c;
	}
	/* Whitespace, padding, and the standard alphabet are not base64url. */
	CHECK(verify_err(good, ec, JWS_ALG_ES256) == NULL);
	free(t);
	if (asprintf(&t, " %s", good) != -1) {
		CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
		free(t);
	}
	if (asprintf(&t, "%s\n", good) != -1) {
		CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
		free(t);
	}
	if (asprintf(&t, "%s=", good) != -1) {
		CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
		free(t);
	}

	/* ECDSA signatures of the wrong length: short, long, DER. */
	h64 = strndup(good, (size_t)(dot2 - good));
	sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &siglen);
	CHECK(sig != NULL && siglen == 64);
	s64 = b64url_encode(sig, 63);
	if (asprintf(&t, "%s.%s", h64, s64) != -1) {
		e = verify_err(t, ec, JWS_ALG_ES256);
		CHECK(e != NULL && strcmp(e, "bad signature length") == 0);
		free(t);
	}
	free(s64);
	longer = calloc(1, 65);
	memcpy(longer, sig, 64);
	s64 = b64url_encode(longer, 65);
	if (asprintf(&t, "%s.%s", h64, s64) != -1) {
		e = verify_err(t, ec, JWS_ALG_ES256);
		CHECK(e != NULL && strcmp(e, "bad signature length") == 0);
		free(t);
	}
	free(s64);
	free(longer);
	/* R and S swapped. */
	longer = malloc(64);
	memcpy(longer, sig + 32, 32);
	memcpy(longer + 32, sig, 32);
	s64 = b64url_encode(longer, 64);
	if (asprintf(&t, "%s.%s", h64, s64) != -1) {
		e = verify_err(t, ec, JWS_ALG_ES256);
		CHECK(e != NULL && strcmp(e, "bad signature") == 0);
		free(t);
	}
	free(s64);
	/* All zero: r = s = 0 is never a signature. */
	memset(longer, 0, 64);
	s64 = b64url_encode(longer, 64);
	if (asprintf(&t, "%s.%s", h64, s64) != -1) {
		CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
		free(t);
	}
	free(s64);
	free(longer);
	/* The DER form OpenSSL uses natively is not JOSE's form. */
	{
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		unsigned char der[80];
		size_t derlen = sizeof(der);

		CHECK(EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL,
		    ec) == 1);
		CHECK(EVP_DigestSign(mctx, der, &derlen,
		    (const unsigned char *)h64, strlen(h64)) == 1);
		EVP_MD_CTX_free(mctx);
		s64 = b64url_encode(der, derlen);
		if (asprintf(&t, "%s.%s", h64, s64) != -1) {
			CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
			free(t);
		}
		free(s64);
	}
	free(sig);
	free(h64);

	/* A P-521 signature of 132 bytes: one byte off either way fails. */
	hdr = json_pack("{s:s}", "alg", "ES512");
	pl = json_pack("{s:s}", "sub", "alice");
	t = jws_sign(ec521, JWS_ALG_ES512, hdr, pl, &errstr);
	CHECK(t != NULL && verify_err(t, ec521, JWS_ALG_ES512) == NULL);
	if (t != NULL) {
		dot2 = strrchr(t, '.');
		sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &siglen);
		CHECK(sig != NULL && siglen == 132);
		free(sig);
	}
	free(t);
	json_decref(hdr);
	json_decref(pl);

	/* alg "none" with no signature, or with a stolen one. */
	p64 = b64s("{\"sub\":\"alice\"}");
	h64 = b64s("{\"alg\":\"none\"}");
	t = join3(h64, p64, "");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	CHECK(verify_err(t, rsa, JWS_ALG_RS256) != NULL);
	free(t);
	t = join3(h64, p64, strrchr(good, '.') + 1);
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	free(h64);
	/* A header without alg, or with alg not a string. */
	h64 = b64s("{\"typ\":\"JWT\"}");
	t = join3(h64, p64, "");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	free(h64);
	h64 = b64s("{\"alg\":[\"ES256\"]}");
	t = join3(h64, p64, "");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	free(h64);

	/* jws_verify with no alg at all, or a key that does not fit it. */
	CHECK(verify_err(good, ec, JWS_ALG_UNKNOWN) != NULL);
	CHECK(verify_err(good, rsa, JWS_ALG_ES256) != NULL);
	CHECK(verify_err(good, NULL, JWS_ALG_ES256) != NULL);

	/* Alg confusion: an RS256 token checked as ES256 or as PS256. */
	t = forge(rsa, JWS_ALG_RS256, "{\"alg\":\"RS256\"}",
	    "{\"sub\":\"alice\"}");
	CHECK(verify_err(t, rsa, JWS_ALG_RS256) == NULL);
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	CHECK(verify_err(t, rsa, JWS_ALG_PS256) != NULL);
	free(t);
	/* PKCS#1 v1.5 signature under a PS256 header: padding matters. */
	t = forge(rsa, JWS_ALG_RS256, "{\"alg\":\"PS256\"}",
	    "{\"sub\":\"alice\"}");
	e = verify_err(t, rsa, JWS_ALG_PS256);
	CHECK(e != NULL && strcmp(e, "bad signature") == 0);
	free(t);
	/* And the other way round. */
	t = forge(rsa, JWS_ALG_PS256, "{\"alg\":\"RS256\"}",
	    "{\"sub\":\"alice\"}");
	e = verify_err(t, rsa, JWS_ALG_RS256);
	CHECK(e != NULL && strcmp(e, "bad signature") == 0);
	free(t);
	/* PS256 with SHA-256 signs under a PS384 header: digest matters. */
	t = forge(rsa, JWS_ALG_PS256, "{\"alg\":\"PS384\"}",
	    "{\"sub\":\"alice\"}");
	CHECK(verify_err(t, rsa, JWS_ALG_PS384) != NULL);
	free(t);

	/* Header and payload must be JSON objects, without duplicates. */
	t = forge(ec, JWS_ALG_ES256, "{\"alg\":\"ES256\"}", "[1,2]");
	e = verify_err(t, ec, JWS_ALG_ES256);
	CHECK(e != NULL && strcmp(e, PAYLOAD_NOT_OBJECT) == 0);
	free(t);
	t = forge(ec, JWS_ALG_ES256, "{\"alg\":\"ES256\"}", "\"alice\"");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	t = forge(ec, JWS_ALG_ES256, "{\"alg\":\"ES256\"}",
	    "{\"sub\":\"alice\",\"sub\":\"mallory\"}");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	t = forge(ec, JWS_ALG_ES256, "{\"alg\":\"ES256\"}",
	    "{\"sub\":\"alice\"} x");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	t = forge(ec, JWS_ALG_ES256, "{\"alg\":\"ES256\",\"alg\":\"ES256\"}",
	    "{\"sub\":\"alice\"}");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	t = forge(ec, JWS_ALG_ES256, "[\"ES256\"]", "{\"sub\":\"alice\"}");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	/* A critical extension nobody here understands. */
	t = forge(ec, JWS_ALG_ES256,
	    "{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false}",
	    "{\"sub\":\"alice\"}");
	CHECK(verify_err(t, ec, JWS_ALG_ES256) != NULL);
	free(t);
	/* Whitespace inside the JSON is fine: it is signed as received. */
	t = forge(ec, JWS_ALG_ES256, "{ \"alg\" : \"ES256\" }",
	    "{\n\"sub\": \"alice\"\n}");
	h = p = NULL;
	CHECK(jws_verify(t, ec, JWS_ALG_ES256, &h, &p, &errstr) == 0);
	CHECK(strcmp(json_string_value(json_object_get(p, "sub")), "alice") ==
	    0);
	json_decref(h);
	json_decref(p);
	free(t);

	/* Decoding without verifying still refuses malformed tokens. */
	h = p = (json_t *)1;
	CHECK(jws_decode_unverified("a.b", &h, &p, &errstr) == -1);
	CHECK(h == NULL && p == NULL);
	CHECK(jws_decode_unverified("a.b.c.d", NULL, NULL, &errstr) == -1);
	h64 = b64s("{\"alg\":\"none\"}");
	t = join3(h64, p64, "");
	h = p = NULL;
	CHECK(jws_decode_unverified(t, &h, &p, &errstr) == 0);
	CHECK(strcmp(json_string_value(json_object_get(h, "alg")), "none") ==
	    0);
	json_decref(h);
	json_decref(p);
	CHECK(jws_decode_unverified(t, NULL, NULL, &errstr) == 0);
	free(t);
	t = join3(h64, "e30=", "");
	CHECK(jws_decode_unverified(t, NULL, NULL, &errstr) == -1);
	free(t);
	t = join3("W10", p64, "");	/* header [] */
	CHECK(jws_decode_unverified(t, NULL, NULL, &errstr) == -1);
	free(t);
	free(h64);
	free(p64);
	free(good);
 done:
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec521);
}

int
main(void)
{
	test_alg_names();
	test_rfc7515_a2();
	test_rfc7515_a3();
	test_rfc7515_a4();
	test_rfc8037();
	test_roundtrips();
	test_sign_refusals();
	test_verify_refusals();
	return CHECK_DONE();
}
