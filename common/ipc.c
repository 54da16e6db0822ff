/* ipc.c: framing of idp's inter-process messages. */
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "xalloc.h"

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

void
ipc_hdr_encode(unsigned char out[IPC_HDR_SIZE], const struct ipc_hdr *h)
{
	put32(out, h->len);
	out[4] = (unsigned char)h->type;
	out[5] = (unsigned char)(h->type >> 8);
	out[6] = (unsigned char)h->flags;
	out[7] = (unsigned char)(h->flags >> 8);
	put32(out + 8, h->id);
}

int
ipc_hdr_decode(const unsigned char in[IPC_HDR_SIZE], struct ipc_hdr *h,
    const char **errstr)
{
	h->len = get32(in);
	h->type = (uint16_t)(in[4] | in[5] << 8);
	h->flags = (uint16_t)(in[6] | in[7] << 8);
	h->id = get32(in + 8);
	if (h->len > IPC_MAX_PAYLOAD) {
		*errstr = "IPC frame too large";
		return -1;
	}
	if (h->type < IPC_SIGN_REQ || h->type > IPC_KEYS) {
		*errstr = "unknown IPC message type";
		return -1;
	}
	return 0;
}

int
ipc_write_frame(int fd, uint16_t type, uint32_t id, const void *payload, size_t len)
{
	unsigned char hdr[IPC_HDR_SIZE];
	struct ipc_hdr h = { (uint32_t)len, type, 0, id };
	struct iovec iov[2];
	size_t done = 0, total = IPC_HDR_SIZE + len;
	ssize_t n;

	if (len > IPC_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	ipc_hdr_encode(hdr, &h);
	while (done < total) {
		int iovcnt = 0;

		if (done < IPC_HDR_SIZE) {
			iov[iovcnt].iov_base = hdr + done;
			iov[iovcnt++].iov_len = IPC_HDR_SIZE - done;
			iov[iovcnt].iov_base = (void *)(uintptr_t)payload;
			iov[iovcnt++].iov_len = len;
		} else {
			iov[iovcnt].iov_base = (unsigned char *)(uintptr_t)payload +
			    (done - IPC_HDR_SIZE);
			iov[iovcnt++].iov_len = total - done;
		}
		if ((n = writev(fd, iov, iovcnt)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Read exactly n bytes: 0, 1 on EOF at the very start, -1 on error or EOF midway. */
static int
read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if ((r = read(fd, buf + got, n - got)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			if (got == 0)
				return 1;
			errno = EPROTO;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

int
ipc_read_frame(int fd, struct ipc_hdr *h, unsigned char **payload)
{
	unsigned char hdr[IPC_HDR_SIZE];
	const char *errstr;
	int r;

	*payload = NULL;
	if ((r = read_full(fd, hdr, IPC_HDR_SIZE)) != 0)
		return r;
	if (ipc_hdr_decode(hdr, h, &errstr) == -1) {
		errno = EPROTO;
		return -1;
	}
	*payload = xmalloc(h->len + 1);
	if (h->len > 0 && read_full(fd, *payload, h->len) != 0) {
		free(*payload);
		*payload = NULL;
		errno = EPROTO;
		return -1;
	}
	(*payload)[h->len] = '\0';
	return 0;
}
