/* keygen.c: RSA key generation with the prime search spread over threads.
 *
 * OpenSSL finds p and then q on one thread; on a slow machine a 2048-bit key takes from
 * 0.1 to 0.7 s, most of it in the two prime searches. Here each thread searches with
 * BN_generate_prime_ex2 (a probable prime with its top two bits set, so n has exactly
 * `bits` bits) and the first two distinct primes p, q with gcd(e, p-1) = gcd(e, q-1) = 1
 * and |p - q| > 2^(bits/2 - 100) (FIPS 186-4 B.3.1) are taken; a callback tells the other
 * searches to stop. The key is then assembled (d = e^-1 mod lcm(p-1, q-1), the CRT
 * values) and checked with a pairwise consistency test before it is returned. */
#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "keygen.h"

#define KEYGEN_MAX_THREADS	8

struct keygen_race {
	pthread_mutex_t	 lock;
	int		 bits;
	BIGNUM		*e;
	BIGNUM		*primes[2];
	int		 nprimes;
	int		 failed;
};

/* BN_GENCB callback: 0 stops the search once the race is over. */
static int
keygen_cb(int a, int b, BN_GENCB *cb)
{
	struct keygen_race *r = BN_GENCB_get_arg(cb);
	int go;

	pthread_mutex_lock(&r->lock);
	go = r->nprimes < 2 && !r->failed;
	pthread_mutex_unlock(&r->lock);
	return go;
}

/* 1 if p fits beside the primes already taken (gcd(e, p-1) = 1, far enough from q). */
static int
keygen_prime_fits(struct keygen_race *r, const BIGNUM *p, BN_CTX *ctx)
{
	BIGNUM *pm1 = BN_CTX_get(ctx), *g = BN_CTX_get(ctx), *diff = BN_CTX_get(ctx);

	if (diff == NULL || BN_sub(pm1, p, BN_value_one()) == 0 ||
	    BN_gcd(g, pm1, r->e, ctx) == 0 || !BN_is_one(g))
		return 0;
	if (r->nprimes == 1) {
		if (BN_sub(diff, p, r->primes[0]) == 0)
			return 0;
		BN_set_negative(diff, 0);
		if (BN_num_bits(diff) <= r->bits / 2 - 100)
			return 0;
	}
	return 1;
}

static void *
keygen_thread(void *arg)
{
	struct keygen_race *r = arg;
	BN_GENCB *cb = BN_GENCB_new();
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p = NULL;
	int done = 0;

	if (cb == NULL || ctx == NULL)
		goto fail;
	BN_GENCB_set(cb, keygen_cb, r);
	while (!done) {
		if ((p = BN_new()) == NULL)
			goto fail;
		if (!BN_generate_prime_ex2(p, r->bits / 2, 0, NULL, NULL, cb, ctx)) {
			/* Stopped by the callback, or a real failure: either way, done. */
			BN_free(p);
			break;
		}
		pthread_mutex_lock(&r->lock);
		BN_CTX_start(ctx);
		if (r->nprimes < 2 && keygen_prime_fits(r, p, ctx)) {
			r->primes[r->nprimes++] = p;
			p = NULL;
		}
		BN_CTX_end(ctx);
		done = r->nprimes >= 2 || r->failed;
		pthread_mutex_unlock(&r->lock);
		BN_free(p);
		p = NULL;
	}
	BN_GENCB_free(cb);
	BN_CTX_free(ctx);
	return NULL;
fail:
	pthread_mutex_lock(&r->lock);
	r->failed = 1;
	pthread_mutex_unlock(&r->lock);
	BN_GENCB_free(cb);
	BN_CTX_free(ctx);
	return NULL;
}

/* Build the key from p, q and e. Returns a new key or NULL. */
static EVP_PKEY *
keygen_assemble(BIGNUM *p, BIGNUM *q, const BIGNUM *e)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *n, *d, *dp, *dq, *qi, *pm1, *qm1, *g, *lcm;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL, *cctx = NULL;
	EVP_PKEY *key = NULL;

	if (ctx == NULL)
		return NULL;
	BN_CTX_start(ctx);
	n = BN_CTX_get(ctx); d = BN_CTX_get(ctx); dp = BN_CTX_get(ctx);
	dq = BN_CTX_get(ctx); qi = BN_CTX_get(ctx); pm1 = BN_CTX_get(ctx);
	qm1 = BN_CTX_get(ctx); g = BN_CTX_get(ctx); lcm = BN_CTX_get(ctx);
	if (lcm == NULL)
		goto done;
	/* By convention p > q, so that qi = q^-1 mod p. */
	if (BN_cmp(p, q) < 0) {
		BIGNUM *t = p;

		p = q;
		q = t;
	}
	if (!BN_mul(n, p, q, ctx) || !BN_sub(pm1, p, BN_value_one()) ||
	    !BN_sub(qm1, q, BN_value_one()) || !BN_gcd(g, pm1, qm1, ctx) ||
	    !BN_mul(lcm, pm1, qm1, ctx) || !BN_div(lcm, NULL, lcm, g, ctx) ||
	    BN_mod_inverse(d, e, lcm, ctx) == NULL || !BN_mod(dp, d, pm1, ctx) ||
	    !BN_mod(dq, d, qm1, ctx) || BN_mod_inverse(qi, q, p, ctx) == NULL)
		goto done;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto done;
	if ((pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_KEYPAIR, params) <= 0)
		goto done;
	if ((cctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    EVP_PKEY_pairwise_check(cctx) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
done:
	EVP_PKEY_CTX_free(cctx);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_CTX_end(ctx);
	BN_CTX_free(ctx);
	return key;
}

EVP_PKEY *
keygen_rsa(int bits, int nthreads, const char **errstr)
{
	struct keygen_race r;
	pthread_t tids[KEYGEN_MAX_THREADS];
	EVP_PKEY *key = NULL;
	int i, started = 0;

	if (bits < 2048 || bits % 2 != 0 || bits > 16384) {
		*errstr = "unsupported RSA key size";
		return NULL;
	}
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > KEYGEN_MAX_THREADS)
		nthreads = KEYGEN_MAX_THREADS;
	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	r.bits = bits;
	if ((r.e = BN_new()) == NULL || !BN_set_word(r.e, 65537)) {
		*errstr = "out of memory";
		goto done;
	}
	for (i = 1; i < nthreads; i++)
		if (pthread_create(&tids[started], NULL, keygen_thread, &r) == 0)
			started++;
	keygen_thread(&r);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (r.nprimes < 2) {
		*errstr = "RSA prime generation failed";
		goto done;
	}
	if ((key = keygen_assemble(r.primes[0], r.primes[1], r.e)) == NULL)
		*errstr = "RSA key assembly failed";
done:
	BN_clear_free(r.primes[0]);
	BN_clear_free(r.primes[1]);
	BN_free(r.e);
	pthread_mutex_destroy(&r.lock);
	return key;
}
