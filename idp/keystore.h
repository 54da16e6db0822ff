/* keystore.h: the signer's signing keys in PostgreSQL: the key-encryption key, the
 * encrypted rows, the rotation schedule, and the key set the signer signs with. */
#ifndef IDP_KEYSTORE_H
#define IDP_KEYSTORE_H

#include <stdatomic.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "jws.h"

struct idp_config;

#define KEYSTORE_KEK_BYTES	32	/* crypto_aead_xchacha20poly1305_ietf_KEYBYTES */

/* One published key of a key set, as the database holds it (no private part). */
struct keystore_key {
	char		*kid;
	char		*state;		/* "next", "active" or "retired" */
	json_t		*public_jwk;	/* with "kid", "alg", "use": "sig" */
	long long	 created_at;	/* unix seconds */
	long long	 activated_at;	/* unix seconds, -1 when never active */
};

/*
 * The keys that are not withdrawn, active first, then next, then retired (newest
 * first), and the decrypted active key. A key set never changes once loaded; the signer
 * swaps whole sets and counts references (refs), so a set in use by a signing thread
 * outlives its replacement.
 */
struct keyset {
	atomic_int		 refs;
	struct keystore_key	*keys;
	size_t			 nkeys;
	char			*active_kid;	/* NULL when there is no active key */
	enum jws_alg		 active_alg;
	EVP_PKEY		*active_pkey;	/* the private key; NULL with active_kid */
	char			*payload;	/* the IPC_KEYS message, NUL-terminated */
	size_t			 payloadlen;
};

/* Read the key-encryption key file: fatalx unless it is a regular file of exactly 32
 * bytes that neither group nor others may access. Returns the key in sodium_malloc'ed,
 * read-only memory; free it with sodium_free. */
unsigned char	*keystore_kek_load(const char *path);

/* Encrypt len bytes of a private JWK under kek with the kid as associated data
 * (XChaCha20-Poly1305, libsodium's IETF construction) and a new random nonce written to
 * nonce. Returns a new buffer (caller frees) of *enclen bytes. */
unsigned char	*keystore_encrypt(const unsigned char *kek, const char *kid,
		    const void *plain, size_t len, unsigned char nonce[24], size_t *enclen);
/* Decrypt what keystore_encrypt made. Returns the plaintext, NUL-terminated, in
 * sodium_malloc'ed memory (caller sodium_free's it, which wipes it) with its length in
 * *len, or NULL when the ciphertext, nonce, kid or kek do not match. */
char		*keystore_decrypt(const unsigned char *kek, const char *kid,
		    const unsigned char *enc, size_t enclen, const unsigned char *nonce,
		    size_t noncelen, size_t *len);

/* A database session of the signer: one connection, used by one thread. */
struct keystore;

/* A new session, not yet connected. conf and kek must outlive it. */
struct keystore	*keystore_new(const struct idp_config *conf, const unsigned char *kek);
/* Close the connection (if any) and free the session. */
void		 keystore_free(struct keystore *);
/* Connect (blocking, with a 10 s timeout), LISTEN on idp_keys and prepare the
 * statements. 0, or -1 with *errstr (static) after logging libpq's message. */
int		 keystore_connect(struct keystore *, const char **errstr);
/* 1 while the connection is up. */
int		 keystore_connected(struct keystore *);
/* The connection's socket, to poll for notifications; -1 when not connected. */
int		 keystore_socket(struct keystore *);
/* Read what the server sent and drop the notifications. Returns the number of
 * notifications on idp_keys, or -1 when the connection is lost. */
int		 keystore_notified(struct keystore *);
/* Run the key schedule (idp.h) once, in one transaction, if this session obtains the
 * rotation lock; without it another instance rotates and this is a no-op. fatalx when
 * the keys in the database cannot be decrypted with the kek. 0 or -1 with *errstr. */
int		 keystore_rotate(struct keystore *, const char **errstr);
/* Load the current key set. prev (may be NULL) is the set in use: its decrypted key is
 * reused when the active kid is the same. fatalx when the active key cannot be
 * decrypted. Returns a new set with refs = 1 (the payload not yet built) or NULL with
 * *errstr. */
struct keyset	*keystore_load(struct keystore *, const struct keyset *prev,
		    const char **errstr);
/* Free a key set (its refs are not looked at). */
void		 keyset_free(struct keyset *);

#endif
