/* b64url.h: base64url without padding (RFC 4648 section 5), on libsodium. */
#ifndef IDP_B64URL_H
#define IDP_B64URL_H

#include <stddef.h>

/* Encode len bytes; returns a new NUL-terminated string the caller frees. Never NULL. */
char		*b64url_encode(const void *data, size_t len);
/* Decode slen characters of strict base64url (URL-safe alphabet, no padding, no
 * whitespace). Returns a new buffer (NUL-terminated for convenience, *outlen excludes
 * the NUL) the caller frees, or NULL if the input is not valid base64url. */
unsigned char	*b64url_decode(const char *s, size_t slen, size_t *outlen);
/* Like b64url_decode but also accepts '=' padding and the standard alphabet ("+/"),
 * as lenient decoders do; for inputs we only read, never for signatures. */
unsigned char	*b64url_decode_lenient(const char *s, size_t slen, size_t *outlen);

#endif
