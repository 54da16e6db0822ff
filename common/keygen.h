/* keygen.h: RSA key generation that searches for its primes on several threads. */
#ifndef IDP_KEYGEN_H
#define IDP_KEYGEN_H

#include <openssl/evp.h>

/* Generate an RSA key of bits (>= 2048, even) with e = 65537, searching for primes on
 * nthreads threads at once (1 = the calling thread only). The first two suitable primes
 * found, by any thread, make the key, so the wall time is about that of finding one
 * prime instead of two in a row. Returns a new key (caller EVP_PKEY_free) or NULL with
 * a static *errstr. */
EVP_PKEY	*keygen_rsa(int bits, int nthreads, const char **errstr);

#endif
