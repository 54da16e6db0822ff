/* secret.h: secrets on libsodium: random values, Argon2id hashes, constant-time compare. */
#ifndef IDP_SECRET_H
#define IDP_SECRET_H

#include <stddef.h>

#include <sodium.h>

#define SECRET_HASH_MAX	crypto_pwhash_STRBYTES

/* sodium_init() once; fatalx if it fails. Safe to call more than once. */
void	 secret_init(void);
void	 secret_random(void *buf, size_t len);
/* nbytes of randomness as a new base64url string (caller frees). */
char	*secret_random_b64url(size_t nbytes);
/* nbytes of randomness as a new lowercase hex string (caller frees). */
char	*secret_random_hex(size_t nbytes);
/* A new random UUID v4 string in lowercase (caller frees). */
char	*secret_uuid_v4(void);

/* Argon2id (crypto_pwhash_str) with the given costs (0, 0 = libsodium's interactive
 * defaults). Writes a NUL-terminated encoded hash to out. 0 on success, -1 on failure
 * (out of memory). Slow by design: never call it on an event loop. */
int	 secret_hash(const char *pw, size_t pwlen, unsigned long long opslimit,
	    size_t memlimit, char out[SECRET_HASH_MAX]);
/* 0 if pw matches the encoded hash, -1 otherwise (including a malformed hash). Slow. */
int	 secret_verify(const char *hash, const char *pw, size_t pwlen);
/* 1 if the hash was made with other costs than given and should be re-hashed. */
int	 secret_needs_rehash(const char *hash, unsigned long long opslimit, size_t memlimit);

/* SHA-256 of the string s as 64 lower-case hex digits and a NUL: how codes, refresh
 * tokens and cookies are stored and looked up (never the values themselves). */
#define SECRET_SHA256_HEX	65
void	 secret_sha256_hex(const char *s, char out[SECRET_SHA256_HEX]);

/* Constant-time equality of two equal-length buffers: 1 if equal, 0 otherwise. */
int	 secret_equal(const void *a, const void *b, size_t len);
/* Constant-time equality of two strings of any length (compares their BLAKE2b-256). */
int	 secret_str_equal(const char *a, const char *b);

#endif
