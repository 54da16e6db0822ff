/* test-ipc.c: unit tests for idp's IPC framing over a real socketpair. */
#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ipc.h"

int
main(void)
{
	unsigned char raw[IPC_HDR_SIZE], *payload;
	struct ipc_hdr h = { 5, IPC_SIGN_REQ, 0, 0xdeadbeef }, d;
	const char *errstr;
	int sv[2];

	ipc_hdr_encode(raw, &h);
	CHECK(raw[0] == 5 && raw[4] == IPC_SIGN_REQ && raw[8] == 0xef && raw[11] == 0xde);
	CHECK(ipc_hdr_decode(raw, &d, &errstr) == 0);
	CHECK(d.len == 5 && d.type == IPC_SIGN_REQ && d.id == 0xdeadbeef);
	h.len = IPC_MAX_PAYLOAD + 1;
	ipc_hdr_encode(raw, &h);
	CHECK(ipc_hdr_decode(raw, &d, &errstr) == -1);
	h.len = 1;
	h.type = 99;
	ipc_hdr_encode(raw, &h);
	CHECK(ipc_hdr_decode(raw, &d, &errstr) == -1);

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(ipc_write_frame(sv[0], IPC_SIGN_REQ, 7, "JWT\0{}", 6) == 0);
	CHECK(ipc_write_frame(sv[0], IPC_KEYS, 0, NULL, 0) == 0);
	CHECK(ipc_read_frame(sv[1], &d, &payload) == 0);
	CHECK(d.type == IPC_SIGN_REQ && d.id == 7 && d.len == 6);
	CHECK(memcmp(payload, "JWT\0{}", 6) == 0 && payload[6] == '\0');
	free(payload);
	CHECK(ipc_read_frame(sv[1], &d, &payload) == 0);
	CHECK(d.type == IPC_KEYS && d.len == 0);
	free(payload);
	CHECK(ipc_write_frame(sv[0], IPC_SIGN_REP, 1, "x", IPC_MAX_PAYLOAD + 1) == -1 &&
	    errno == EMSGSIZE);
	/* A frame cut short is a protocol error; a clean EOF before a header is 1. */
	h.len = 10;
	h.type = IPC_SIGN_REP;
	ipc_hdr_encode(raw, &h);
	CHECK(write(sv[0], raw, sizeof(raw)) == (ssize_t)sizeof(raw));
	CHECK(write(sv[0], "abc", 3) == 3);
	close(sv[0]);
	CHECK(ipc_read_frame(sv[1], &d, &payload) == -1 && errno == EPROTO);
	CHECK(ipc_read_frame(sv[1], &d, &payload) == 1);
	close(sv[1]);
	return CHECK_DONE();
}
