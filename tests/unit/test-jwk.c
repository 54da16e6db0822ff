/* test-jwk.c: JWK export, import, generation and RFC 7638 thumbprints, against RFC 7515/7638/8037 keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "check.h"
#include "jwk.h"
#include "jws.h"

/* RFC 7638 section 3.1: the RSA public key and its thumbprint. */
#define RFC7638_N							\
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbf"	\
	"AAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknj"	\
	"hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"	\
	"YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQ"	\
	"vRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lF"	\
	"d2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"	\
	"nqDKgw"
static const char rfc7638_rsa[] =
    "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\","
    "\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
#define RFC7638_THUMBPRINT	"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

/* RFC 8037 A.1/A.2 (the Ed25519 key) and A.3 (its thumbprint). */
#define RFC8037_D	"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
#define RFC8037_X	"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define RFC8037_THUMBPRINT	"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

/* RFC 7515 A.3: a P-256 key. */
#define RFC7515_EC256_X	"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define RFC7515_EC256_Y	"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define RFC7515_EC256_D	"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"

/* RFC 7515 A.4: a P-521 key; y starts with a zero byte, so padding shows. */
#define RFC7515_EC521_X							\
	"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_"	\
	"NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk"
#define RFC7515_EC521_Y							\
	"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDl"	\
	"y79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"
#define RFC7515_EC521_D							\
	"AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPA"	\
	"xerEzgdRhajnu0ferB0d53vM9mE15j2C"

/* RFC 7515 A.2: an RSA key with CRT members. */
#define RFC7515_RSA_N							\
	"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"	\
	"HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"	\
	"D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"	\
	"SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"	\
	"MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"	\
	"NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
#define RFC7515_RSA_D							\
	"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97I"	\
	"jlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0"	\
	"BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn"	\
	"439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYT"	\
	"CBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLh"	\
	"BOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ"
#define RFC7515_RSA_P							\
	"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdi"	\
	"YrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPG"	\
	"BY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc"
#define RFC7515_RSA_Q							\
	"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxa"	\
	"ewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA"	\
	"-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc"
#define RFC7515_RSA_DP							\
	"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3Q"	\
	"CLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb"	\
	"34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0"
#define RFC7515_RSA_DQ							\
	"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa"	\
	"7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-ky"	\
	"NlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU"
#define RFC7515_RSA_QI							\
	"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2o"	\
	"y26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLU"	\
	"W0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"

static const enum jws_alg all_algs[] = {
	JWS_ALG_RS256, JWS_ALG_RS384, JWS_ALG_RS512,
	JWS_ALG_PS256, JWS_ALG_PS384, JWS_ALG_PS512,
	JWS_ALG_ES256, JWS_ALG_ES384, JWS_ALG_ES512,
	JWS_ALG_EDDSA,
};
#define NALGS	(sizeof(all_algs) / sizeof(all_algs[0]))

static json_t *
parse(const char *text)
{
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);

	CHECK(o != NULL);
	return o;
}

/* 1 if jwk serializes compactly, in its own member order, to exactly want. */
static int
dumps_as(const json_t *jwk, const char *want)
{
	char *s;
	int ok;

	if (jwk == NULL || (s = json_dumps(jwk, JSON_COMPACT)) == NULL)
		return 0;
	ok = strcmp(s, want) == 0;
	if (!ok)
		fprintf(stderr, "got  %s\nwant %s\n", s, want);
	free(s);
	return ok;
}

/* 1 if the members of o come in exactly the order names lists. */
static int
members_are(const json_t *o, const char *const *names, size_t n)
{
	void *it;
	size_t i = 0;

	for (it = json_object_iter((json_t *)o); it != NULL;
	    it = json_object_iter_next((json_t *)o, it), i++)
		if (i >= n || strcmp(json_object_iter_key(it), names[i]) != 0)
			return 0;
	return i == n;
}

/* Import text; return the error string, or NULL if it imported. */
static const char *
import_err(const char *text, int need_private)
{
	const char *errstr = NULL;
	EVP_PKEY *key;
	json_t *jwk;

	if ((jwk = json_loads(text, 0, NULL)) == NULL)
		return "test JSON did not parse";
	key = jwk_to_pkey(jwk, need_private, &errstr);
	json_decref(jwk);
	if (key != NULL) {
		EVP_PKEY_free(key);
		return NULL;
	}
	CHECK(errstr != NULL);
	return errstr != NULL ? errstr : "?";
}

static int
import_fails_with(const char *text, int need_private, const char *want)
{
	const char *e = import_err(text, need_private);

	if (e == NULL || strcmp(e, want) != 0) {
		fprintf(stderr, "import: got \"%s\", want \"%s\"\n",
		    e != NULL ? e : "(success)", want);
		return 0;
	}
	return 1;
}

/* Import text, export it again, and compare with want. */
static int
reexports_as(const char *text, int include_private, const char *want)
{
	const char *errstr = NULL;
	EVP_PKEY *key;
	json_t *jwk, *out;
	int ok;

	jwk = parse(text);
	key = jwk_to_pkey(jwk, include_private, &errstr);
	json_decref(jwk);
	if (key == NULL) {
		fprintf(stderr, "import: %s\n", errstr);
		return 0;
	}
	out = jwk_from_pkey(key, include_private, &errstr);
	ok = dumps_as(out, want);
	json_decref(out);
	EVP_PKEY_free(key);
	return ok;
}

static void
test_thumbprints(void)
{
	const char *errstr = NULL;
	json_t *jwk;
	char *t;

	/* RFC 7638 3.1: alg and kid are not part of it. */
	jwk = parse(rfc7638_rsa);
	t = jwk_thumbprint(jwk, &errstr);
	CHECK(t != NULL && strcmp(t, RFC7638_THUMBPRINT) == 0);
	free(t);
	/* Nor is member order, or private members. */
	json_decref(jwk);
	jwk = parse("{\"e\":\"AQAB\",\"use\":\"sig\",\"n\":\"" RFC7638_N
	    "\",\"kty\":\"RSA\",\"d\":\"AQAB\"}");
	t = jwk_thumbprint(jwk, &errstr);
	CHECK(t != NULL && strcmp(t, RFC7638_THUMBPRINT) == 0);
	free(t);
	json_decref(jwk);

	/* RFC 8037 A.3. */
	jwk = parse("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\""
	    RFC8037_X "\"}");
	t = jwk_thumbprint(jwk, &errstr);
	CHECK(t != NULL && strcmp(t, RFC8037_THUMBPRINT) == 0);
	free(t);
	json_decref(jwk);
	jwk = parse("{\"d\":\"" RFC8037_D "\",\"x\":\"" RFC8037_X "\","
	    "\"kid\":\"k\",\"crv\":\"Ed25519\",\"kty\":\"OKP\"}");
	t = jwk_thumbprint(jwk, &errstr);
	CHECK(t != NULL && strcmp(t, RFC8037_THUMBPRINT) == 0);
	free(t);
	json_decref(jwk);

	/* Missing required members, unknown kty, no kty, not an object. */
	jwk = parse("{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\"}");
	CHECK(jwk_thumbprint(jwk, &errstr) == NULL);
	json_decref(jwk);
	jwk = parse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
	    RFC7515_EC256_X "\"}");
	CHECK(jwk_thumbprint(jwk, &errstr) == NULL);
	json_decref(jwk);
	jwk = parse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
	    RFC7515_EC256_X "\",\"y\":7}");
	CHECK(jwk_thumbprint(jwk, &errstr) == NULL);
	json_decref(jwk);
	jwk = parse("{\"kty\":\"XYZ\",\"x\":\"AA\"}");
	CHECK(jwk_thumbprint(jwk, &errstr) == NULL);
	json_decref(jwk);
	jwk = parse("{\"x\":\"AA\"}");
	CHECK(jwk_thumbprint(jwk, &errstr) == NULL);
	json_decref(jwk);
	jwk = parse("[]");
	CHECK(jwk_thumbprint(jwk, &errstr) == NULL);
	json_decref(jwk);
}

/* The published keys export in oauth2-mock-server's member order, exactly. */
static void
test_export_vectors(void)
{
	static const char *const rsa_priv[] = {
		"kty", "n", "e", "d", "p", "q", "dp", "dq", "qi",
	};
	const char *rsa_text =
	    "{\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N "\",\"e\":\"AQAB\","
	    "\"d\":\"" RFC7515_RSA_D "\",\"p\":\"" RFC7515_RSA_P "\","
	    "\"q\":\"" RFC7515_RSA_Q "\",\"dp\":\"" RFC7515_RSA_DP "\","
	    "\"dq\":\"" RFC7515_RSA_DQ "\",\"qi\":\"" RFC7515_RSA_QI "\"}";
	const char *errstr = NULL;
	EVP_PKEY *key;
	json_t *jwk, *out;

	/* RSA: kty,n,e[,d,p,q,dp,dq,qi]. */
	CHECK(reexports_as(rfc7638_rsa, 0,
	    "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\"}"));
	CHECK(reexports_as(rsa_text, 1, rsa_text));
	CHECK(reexports_as(rsa_text, 0,
	    "{\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N "\",\"e\":\"AQAB\"}"));
	jwk = parse(rsa_text);
	key = jwk_to_pkey(jwk, 1, &errstr);
	CHECK(key != NULL);
	out = key != NULL ? jwk_from_pkey(key, 1, &errstr) : NULL;
	CHECK(members_are(out, rsa_priv, 9));
	json_decref(out);
	EVP_PKEY_free(key);
	json_decref(jwk);
	/* A private key without CRT members exports n, e, d. */
	CHECK(reexports_as("{\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N "\","
	    "\"e\":\"AQAB\",\"d\":\"" RFC7515_RSA_D "\"}", 1,
	    "{\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N "\",\"e\":\"AQAB\","
	    "\"d\":\"" RFC7515_RSA_D "\"}"));

	/* EC: kty,x,y,crv[,d]. */
	CHECK(reexports_as("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
	    RFC7515_EC256_X "\",\"y\":\"" RFC7515_EC256_Y "\",\"d\":\""
	    RFC7515_EC256_D "\"}", 1,
	    "{\"kty\":\"EC\",\"x\":\"" RFC7515_EC256_X "\",\"y\":\""
	    RFC7515_EC256_Y "\",\"crv\":\"P-256\",\"d\":\""
	    RFC7515_EC256_D "\"}"));
	CHECK(reexports_as("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
	    RFC7515_EC256_X "\",\"y\":\"" RFC7515_EC256_Y "\",\"d\":\""
	    RFC7515_EC256_D "\"}", 0,
	    "{\"kty\":\"EC\",\"x\":\"" RFC7515_EC256_X "\",\"y\":\""
	    RFC7515_EC256_Y "\",\"crv\":\"P-256\"}"));
	/* P-521: y's leading zero byte stays, as the curve size demands. */
	CHECK(reexports_as("{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\""
	    RFC7515_EC521_X "\",\"y\":\"" RFC7515_EC521_Y "\",\"d\":\""
	    RFC7515_EC521_D "\"}", 1,
	    "{\"kty\":\"EC\",\"x\":\"" RFC7515_EC521_X "\",\"y\":\""
	    RFC7515_EC521_Y "\",\"crv\":\"P-521\",\"d\":\""
	    RFC7515_EC521_D "\"}"));

	/* OKP: crv[,d],x,kty. */
	CHECK(reexports_as("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\""
	    RFC8037_D "\",\"x\":\"" RFC8037_X "\"}", 1,
	    "{\"crv\":\"Ed25519\",\"d\":\"" RFC8037_D "\",\"x\":\""
	    RFC8037_X "\",\"kty\":\"OKP\"}"));
	CHECK(reexports_as("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\""
	    RFC8037_D "\",\"x\":\"" RFC8037_X "\"}", 0,
	    "{\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X "\",\"kty\":\"OKP\"}"));
	/* A public key asked for its private members just has none. */
	jwk = parse("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\""
	    RFC8037_X "\"}");
	key = jwk_to_pkey(jwk, 0, &errstr);
	CHECK(key != NULL);
	out = key != NULL ? jwk_from_pkey(key, 1, &errstr) : NULL;
	CHECK(dumps_as(out, "{\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X
	    "\",\"kty\":\"OKP\"}"));
	json_decref(out);
	EVP_PKEY_free(key);
	json_decref(jwk);
	jwk = parse(rfc7638_rsa);
	key = jwk_to_pkey(jwk, 0, &errstr);
	CHECK(key != NULL);
	out = key != NULL ? jwk_from_pkey(key, 1, &errstr) : NULL;
	CHECK(dumps_as(out, "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N
	    "\",\"e\":\"AQAB\"}"));
	json_decref(out);
	EVP_PKEY_free(key);
	json_decref(jwk);
	CHECK(jwk_from_pkey(NULL, 0, &errstr) == NULL);
}

/* Generate, export, import, and sign with the import: every alg. */
static void
test_generated(void)
{
	static const char *const rsa_priv[] = {
		"kty", "n", "e", "d", "p", "q", "dp", "dq", "qi",
	};
	static const char *const rsa_pub[] = { "kty", "n", "e" };
	static const char *const ec_priv[] = { "kty", "x", "y", "crv", "d" };
	static const char *const ec_pub[] = { "kty", "x", "y", "crv" };
	static const char *const okp_priv[] = { "crv", "d", "x", "kty" };
	static const char *const okp_pub[] = { "crv", "x", "kty" };
	const char *errstr = NULL, *crv;
	EVP_PKEY *key, *priv2, *pub2;
	json_t *jpriv, *jpub, *stripped, *hdr, *pl;
	unsigned char *buf;
	char *jws, *t1, *t2;
	size_t i, k, n, want;

	pl = json_pack("{s:s}", "sub", "alice");
	for (i = 0; i < NALGS; i++) {
		if ((key = jwk_generate(all_algs[i], &errstr)) == NULL) {
			CHECK(key != NULL);
			continue;
		}
		CHECK(jws_alg_fits_key(all_algs[i], key));
		jpriv = jwk_from_pkey(key, 1, &errstr);
		jpub = jwk_from_pkey(key, 0, &errstr);
		CHECK(jpriv != NULL && jpub != NULL);
		if (jpriv == NULL || jpub == NULL)
			goto next;

		if (i <= 5) {
			CHECK(EVP_PKEY_get_bits(key) == 2048);
			CHECK(members_are(jpriv, rsa_priv, 9));
			CHECK(members_are(jpub, rsa_pub, 3));
			CHECK(strcmp(json_string_value(json_object_get(jpub,
			    "e")), "AQAB") == 0);
		} else if (i <= 8) {
			CHECK(members_are(jpriv, ec_priv, 5));
			CHECK(members_are(jpub, ec_pub, 4));
			crv = json_string_value(json_object_get(jpub, "crv"));
			want = i == 6 ? 32 : i == 7 ? 48 : 66;
			CHECK(strcmp(crv, i == 6 ? "P-256" : i == 7 ? "P-384" :
			    "P-521") == 0);
			/* Fixed-length coordinates and d. */
			for (k = 0; k < 3; k++) {
				const char *m = k == 0 ? "x" : k == 1 ? "y" :
				    "d";
				const char *v = json_string_value(
				    json_object_get(jpriv, m));

				buf = b64url_decode(v, strlen(v), &n);
				CHECK(buf != NULL && n == want);
				free(buf);
			}
		} else {
			CHECK(members_are(jpriv, okp_priv, 4));
			CHECK(members_are(jpub, okp_pub, 3));
		}

		/* jwk_public of the private export is the public export. */
		stripped = jwk_public(jpriv);
		CHECK(json_equal(stripped, jpub));
		CHECK(json_object_get(jpriv, "d") != NULL);
		json_decref(stripped);

		/* Thumbprints ignore private members. */
		t1 = jwk_thumbprint(jpriv, &errstr);
		t2 = jwk_thumbprint(jpub, &errstr);
		CHECK(t1 != NULL && t2 != NULL && strcmp(t1, t2) == 0 &&
		    strlen(t1) == 43);
		free(t1);
		free(t2);

		/* Import both, sign with one, verify with the other. */
		priv2 = jwk_to_pkey(jpriv, 1, &errstr);
		pub2 = jwk_to_pkey(jpub, 0, &errstr);
		CHECK(priv2 != NULL && pub2 != NULL);
		CHECK(jwk_to_pkey(jpub, 1, &errstr) == NULL &&
		    strcmp(errstr, "the JWK holds no private key") == 0);
		if (priv2 != NULL && pub2 != NULL) {
			CHECK(EVP_PKEY_eq(key, priv2) == 1);
			CHECK(EVP_PKEY_eq(key, pub2) == 1);
			hdr = json_pack("{s:s}", "alg",
			    jws_alg_name(all_algs[i]));
			jws = jws_sign(priv2, all_algs[i], hdr, pl, &errstr);
			CHECK(jws != NULL);
			CHECK(jws != NULL && jws_verify(jws, pub2, all_algs[i],
			    NULL, NULL, &errstr) == 0);
			CHECK(jws != NULL && jws_verify(jws, key, all_algs[i],
			    NULL, NULL, &errstr) == 0);
			free(jws);
			json_decref(hdr);
		}
		EVP_PKEY_free(priv2);
		EVP_PKEY_free(pub2);
 next:
		json_decref(jpriv);
		json_decref(jpub);
		EVP_PKEY_free(key);
	}
	json_decref(pl);
	CHECK(jwk_generate(JWS_ALG_UNKNOWN, &errstr) == NULL);

	/* P-521 coordinates often start with a zero byte: padding is kept. */
	for (i = 0; i < 8; i++) {
		key = jwk_generate(JWS_ALG_ES512, &errstr);
		jpub = key != NULL ? jwk_from_pkey(key, 1, &errstr) : NULL;
		CHECK(jpub != NULL);
		if (jpub != NULL) {
			CHECK(strlen(json_string_value(json_object_get(jpub,
			    "x"))) == 88);
			CHECK(strlen(json_string_value(json_object_get(jpub,
			    "y"))) == 88);
			CHECK(strlen(json_string_value(json_object_get(jpub,
			    "d"))) == 88);
		}
		json_decref(jpub);
		EVP_PKEY_free(key);
	}
}

static void
test_import_errors(void)
{
	const char *ec = "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
	    RFC7515_EC256_X "\",\"y\":\"" RFC7515_EC256_Y "\"";
	const char *ed = "\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\""
	    RFC8037_X "\"";
	const char *rsa = "\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N "\","
	    "\"e\":\"AQAB\"";
	const char *rsa_d = ",\"d\":\"" RFC7515_RSA_D "\"";
	const char *rsa_crt = ",\"p\":\"" RFC7515_RSA_P "\",\"q\":\""
	    RFC7515_RSA_Q "\",\"dp\":\"" RFC7515_RSA_DP "\",\"dq\":\""
	    RFC7515_RSA_DQ "\",\"qi\":\"" RFC7515_RSA_QI "\"";
	const char *errstr = NULL;
	char buf[4096];

	/* The good ones first, so the failures below mean something. */
	snprintf(buf, sizeof(buf), "{%s}", ec);
	CHECK(import_err(buf, 0) == NULL);
	snprintf(buf, sizeof(buf), "{%s,\"d\":\"%s\"}", ec, RFC7515_EC256_D);
	CHECK(import_err(buf, 1) == NULL);
	snprintf(buf, sizeof(buf), "{%s}", ed);
	CHECK(import_err(buf, 0) == NULL);
	snprintf(buf, sizeof(buf), "{%s}", rsa);
	CHECK(import_err(buf, 0) == NULL);
	snprintf(buf, sizeof(buf), "{%s%s}", rsa, rsa_d);
	CHECK(import_err(buf, 1) == NULL);
	snprintf(buf, sizeof(buf), "{%s%s%s}", rsa, rsa_d, rsa_crt);
	CHECK(import_err(buf, 1) == NULL);

	/* kty. */
	CHECK(import_fails_with("{\"kty\":\"oct\",\"k\":\"AAAA\"}", 0,
	    "unsupported kty"));
	CHECK(import_fails_with("{\"kty\":\"rsa\"}", 0, "unsupported kty"));
	CHECK(import_fails_with("{\"n\":\"AQAB\"}", 0,
	    "missing or invalid member kty"));
	CHECK(import_fails_with("{\"kty\":1}", 0,
	    "missing or invalid member kty"));
	CHECK(import_fails_with("[]", 0, "the JWK is not a JSON object"));
	CHECK(jwk_to_pkey(NULL, 0, &errstr) == NULL);

	/* RSA. */
	CHECK(import_fails_with("{\"kty\":\"RSA\",\"e\":\"AQAB\"}", 0,
	    "missing or invalid member n"));
	CHECK(import_fails_with("{\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N
	    "\"}", 0, "missing or invalid member e"));
	CHECK(import_fails_with("{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"AQAB\"}",
	    0, "missing or invalid member n"));
	CHECK(import_fails_with("{\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N
	    "=\",\"e\":\"AQAB\"}", 0, "missing or invalid member n"));
	CHECK(import_fails_with("{\"kty\":\"RSA\",\"n\":\"" RFC7515_RSA_N
	    "\",\"e\":\"AQ+B\"}", 0, "missing or invalid member e"));
	CHECK(import_fails_with("{\"kty\":\"RSA\",\"n\":12,\"e\":\"AQAB\"}",
	    0, "missing or invalid member n"));
	snprintf(buf, sizeof(buf), "{%s}", rsa);
	CHECK(import_fails_with(buf, 1, "the JWK holds no private key"));
	snprintf(buf, sizeof(buf), "{%s,\"d\":\"#\"}", rsa);
	CHECK(import_fails_with(buf, 0, "missing or invalid member d"));
	snprintf(buf, sizeof(buf), "{%s%s,\"p\":\"%s\"}", rsa, rsa_d,
	    RFC7515_RSA_P);
	CHECK(import_fails_with(buf, 1, "missing or invalid member q"));
	snprintf(buf, sizeof(buf), "{%s%s%s,\"oth\":[]}", rsa, rsa_d,
	    rsa_crt);
	CHECK(import_fails_with(buf, 1,
	    "multi-prime RSA keys are unsupported"));
	/* The RFC 7515 private members on the RFC 7638 modulus. */
	snprintf(buf, sizeof(buf), "{\"kty\":\"RSA\",\"n\":\"%s\","
	    "\"e\":\"AQAB\"%s%s}", RFC7638_N, rsa_d, rsa_crt);
	CHECK(import_fails_with(buf, 1,
	    "the private key does not match the public key"));

	/* EC. */
	CHECK(import_fails_with("{\"kty\":\"EC\",\"crv\":\"P-192\","
	    "\"x\":\"AA\",\"y\":\"AA\"}", 0, "unsupported crv"));
	CHECK(import_fails_with("{\"kty\":\"EC\",\"crv\":\"secp256k1\"}", 0,
	    "unsupported crv"));
	CHECK(import_fails_with("{\"kty\":\"EC\",\"x\":\"" RFC7515_EC256_X
	    "\",\"y\":\"" RFC7515_EC256_Y "\"}", 0,
	    "missing or invalid member crv"));
	CHECK(import_fails_with("{\"kty\":\"EC\",\"crv\":\"P-256\",\"y\":\""
	    RFC7515_EC256_Y "\"}", 0, "missing or invalid member x"));
	CHECK(import_fails_with("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
	    RFC7515_EC256_X "\"}", 0, "missing or invalid member y"));
	/* A coordinate of the wrong size (P-256 x under P-384). */
	CHECK(import_fails_with("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\""
	    RFC7515_EC256_X "\",\"y\":\"" RFC7515_EC256_Y "\"}", 0,
	    "missing or invalid member x"));
	/* A point off the curve: y of the P-256 key with one bit changed. */
	CHECK(import_fails_with("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
	    RFC7515_EC256_X "\",\"y\":\"y_FEzRu9m36HLN_tue659LNpXW6pCyStikYj"
	    "KIWI5a0\"}", 0, "x and y are not a point on the curve"));
	snprintf(buf, sizeof(buf), "{%s}", ec);
	CHECK(import_fails_with(buf, 1, "the JWK holds no private key"));
	snprintf(buf, sizeof(buf), "{%s,\"d\":\"AAAA\"}", ec);
	CHECK(import_fails_with(buf, 0, "missing or invalid member d"));
	snprintf(buf, sizeof(buf), "{%s,\"d\":5}", ec);
	CHECK(import_fails_with(buf, 0, "missing or invalid member d"));
	/* The d of another key. */
	snprintf(buf, sizeof(buf), "{%s,\"d\":\"%s\"}", ec,
	    "AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lM");
	CHECK(import_fails_with(buf, 1,
	    "the private key does not match the public key"));

	/* OKP. */
	CHECK(import_fails_with("{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\""
	    RFC8037_X "\"}", 0, "unsupported crv"));
	CHECK(import_fails_with("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\""
	    RFC8037_X "\"}", 0, "unsupported crv"));
	CHECK(import_fails_with("{\"kty\":\"OKP\",\"x\":\"" RFC8037_X "\"}", 0,
	    "missing or invalid member crv"));
	CHECK(import_fails_with("{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}", 0,
	    "missing or invalid member x"));
	CHECK(import_fails_with("{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"x\":\"AAAA\"}", 0, "missing or invalid member x"));
	snprintf(buf, sizeof(buf), "{%s}", ed);
	CHECK(import_fails_with(buf, 1, "the JWK holds no private key"));
	snprintf(buf, sizeof(buf), "{%s,\"d\":\"%s\"}", ed, RFC7515_EC256_D);
	CHECK(import_fails_with(buf, 1,
	    "the private key does not match the public key"));
	snprintf(buf, sizeof(buf), "{%s,\"d\":\"%s=\"}", ed, RFC8037_D);
	CHECK(import_fails_with(buf, 1, "missing or invalid member d"));
}

static void
test_public(void)
{
	json_t *jwk, *pub;

	jwk = parse("{\"kty\":\"RSA\",\"kid\":\"k1\",\"use\":\"sig\","
	    "\"alg\":\"RS256\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQ\","
	    "\"p\":\"AQ\",\"q\":\"AQ\",\"dp\":\"AQ\",\"dq\":\"AQ\","
	    "\"qi\":\"AQ\",\"oth\":[{\"r\":\"AQ\"}],\"k\":\"AQ\"}");
	pub = jwk_public(jwk);
	CHECK(dumps_as(pub, "{\"kty\":\"RSA\",\"kid\":\"k1\",\"use\":\"sig\","
	    "\"alg\":\"RS256\",\"n\":\"AQAB\",\"e\":\"AQAB\"}"));
	/* The original is left alone. */
	CHECK(json_object_size(jwk) == 14);
	CHECK(pub != jwk);
	json_decref(pub);
	json_decref(jwk);

	jwk = parse("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\""
	    RFC8037_D "\",\"x\":\"" RFC8037_X "\",\"x5c\":[\"AA\"]}");
	pub = jwk_public(jwk);
	CHECK(dumps_as(pub, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\""
	    RFC8037_X "\",\"x5c\":[\"AA\"]}"));
	/* A deep copy: changing the copy's arrays leaves the original. */
	json_array_clear(json_object_get(pub, "x5c"));
	CHECK(json_array_size(json_object_get(jwk, "x5c")) == 1);
	json_decref(pub);
	json_decref(jwk);
}

/* Write text to dir/name; returns the new path (caller frees). */
static char *
write_file(const char *dir, const char *name, const char *text)
{
	char *path = NULL;
	FILE *f;

	if (asprintf(&path, "%s/%s", dir, name) == -1)
		return NULL;
	if ((f = fopen(path, "w")) != NULL) {
		fputs(text, f);
		fclose(f);
	}
	return path;
}

static void
test_load_file(void)
{
	char dir[] = "/tmp/test-jwk.XXXXXX";
	const char *errstr;
	char *paths[5], *missing = NULL;
	json_t *o;
	size_t i;

	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	paths[0] = write_file(dir, "good.json", "{\"kty\":\"OKP\","
	    "\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X "\"}\n");
	paths[1] = write_file(dir, "bad.json", "{\"kty\":\"OKP\",\n");
	paths[2] = write_file(dir, "array.json", "[{\"kty\":\"OKP\"}]");
	paths[3] = write_file(dir, "dup.json",
	    "{\"kty\":\"OKP\",\"kty\":\"RSA\"}");
	paths[4] = write_file(dir, "empty.json", "");
	if (asprintf(&missing, "%s/missing.json", dir) == -1)
		missing = NULL;

	errstr = NULL;
	o = jwk_load_file(paths[0], &errstr);
	CHECK(json_is_object(o) && json_object_size(o) == 3);
	json_decref(o);

	errstr = NULL;
	CHECK(jwk_load_file(missing, &errstr) == NULL);
	CHECK(errstr != NULL && strcmp(errstr, "cannot open") == 0);
	errstr = NULL;
	CHECK(jwk_load_file(paths[1], &errstr) == NULL);
	CHECK(errstr != NULL && strcmp(errstr, "not JSON") == 0);
	errstr = NULL;
	CHECK(jwk_load_file(paths[2], &errstr) == NULL);
	CHECK(errstr != NULL && strcmp(errstr, "not a JSON object") == 0);
	errstr = NULL;
	CHECK(jwk_load_file(paths[3], &errstr) == NULL);
	CHECK(errstr != NULL && strcmp(errstr, "not JSON") == 0);
	errstr = NULL;
	CHECK(jwk_load_file(paths[4], &errstr) == NULL);
	CHECK(errstr != NULL && strcmp(errstr, "not JSON") == 0);
	/* A directory is not a file to read. */
	errstr = NULL;
	CHECK(jwk_load_file(dir, &errstr) == NULL && errstr != NULL);

	for (i = 0; i < 5; i++) {
		if (paths[i] != NULL)
			unlink(paths[i]);
		free(paths[i]);
	}
	free(missing);
	rmdir(dir);
}

int
main(void)
{
	test_thumbprints();
	test_export_vectors();
	test_generated();
	test_import_errors();
	test_public();
	test_load_file();
	return CHECK_DONE();
}
