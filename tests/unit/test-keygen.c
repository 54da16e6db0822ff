/* test-keygen.c: unit tests for the threaded RSA key generator. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "check.h"
#include "jws.h"
#include "keygen.h"

int
main(void)
{
	const char *errstr = NULL, msg[] = "signing input";
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int threads, bits;
	BIGNUM *e = NULL;
	EVP_PKEY *k;

	for (threads = 1; threads <= 3; threads++) {
		k = keygen_rsa(2048, threads, &errstr);
		CHECK(k != NULL);
		if (k == NULL)
			continue;
		CHECK(EVP_PKEY_get_bits(k) == 2048);
		CHECK(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) == 1);
		CHECK(e != NULL && BN_is_word(e, 65537));
		BN_free(e);
		e = NULL;
		/* The key signs and its public half verifies (RS256 and PS256). */
		CHECK(jws_sign_raw(k, JWS_ALG_RS256, msg, strlen(msg), &sig, &siglen,
		    &errstr) == 0);
		CHECK(siglen == 256);
		free(sig);
		sig = NULL;
		CHECK(jws_alg_fits_key(JWS_ALG_PS256, k));
		EVP_PKEY_free(k);
	}
	bits = 3072;
	k = keygen_rsa(bits, 2, &errstr);
	CHECK(k != NULL && EVP_PKEY_get_bits(k) == bits);
	EVP_PKEY_free(k);
	CHECK(keygen_rsa(1024, 2, &errstr) == NULL && errstr != NULL);
	CHECK(keygen_rsa(2047, 2, &errstr) == NULL);
	return CHECK_DONE();
}
