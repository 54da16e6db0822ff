/* ipc.h: length-prefixed messages between idp's processes (workers <-> signer), over a
 * Unix stream socket. Every frame: a fixed 12-byte header, then len bytes of payload. */
#ifndef IDP_IPC_H
#define IDP_IPC_H

#include <stddef.h>
#include <stdint.h>

#define IPC_MAX_PAYLOAD	(1024 * 1024)

enum ipc_type {
	/* worker -> signer: payload "typ\0claims-json"; the signer adds the header
	 * {"typ", "kid", "alg"} of its active key and signs. */
	IPC_SIGN_REQ = 1,
	/* signer -> worker: payload = the compact JWS, same id as the request. */
	IPC_SIGN_REP = 2,
	/* signer -> worker: payload = a short error message, same id as the request. */
	IPC_SIGN_ERR = 3,
	/* signer -> worker, on connect and whenever the key set changes: payload = JSON
	 * {"jwks": {"keys": [public JWKs]}, "max_age": seconds, "active_kid": kid,
	 *  "active_alg": alg, "keys": [{"kid", "state", "created_at", "activated_at"}]}
	 * (times in unix seconds or null; "keys" feeds the key-age metrics). */
	IPC_KEYS = 4,
};

struct ipc_hdr {
	uint32_t	len;	/* payload bytes, <= IPC_MAX_PAYLOAD */
	uint16_t	type;	/* enum ipc_type */
	uint16_t	flags;	/* 0 */
	uint32_t	id;	/* request id chosen by the worker; 0 for IPC_KEYS */
};

#define IPC_HDR_SIZE	12

/* Encode a header into 12 bytes (little-endian fields). */
void	ipc_hdr_encode(unsigned char out[IPC_HDR_SIZE], const struct ipc_hdr *h);
/* Decode 12 bytes; -1 + *errstr if len is over IPC_MAX_PAYLOAD or type is unknown. */
int	ipc_hdr_decode(const unsigned char in[IPC_HDR_SIZE], struct ipc_hdr *h,
	    const char **errstr);

/* Blocking helpers for the signer's threads. ipc_write_frame writes header and payload
 * in full (retrying on EINTR and short writes): 0 or -1 with errno. ipc_read_frame reads
 * one frame: 0 with *payload a new buffer (NUL-terminated, caller frees), 1 on a clean
 * EOF before a header, -1 on error or a malformed frame (errno EPROTO). */
int	ipc_write_frame(int fd, uint16_t type, uint32_t id, const void *payload,
	    size_t len);
int	ipc_read_frame(int fd, struct ipc_hdr *h, unsigned char **payload);

#endif
