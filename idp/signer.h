/* signer.h: the signer process of idp, the only one that holds private keys. */
#ifndef IDP_SIGNER_H
#define IDP_SIGNER_H

struct idp_config;

/* Run the signer in a child the parent forked, after sodium_init and log_init. Reads
 * the key-encryption key, loads (and rotates) the signing keys, and serves workers on
 * listen_fd, a listening Unix stream socket in a 0700 directory: on each connection it
 * sends IPC_KEYS and answers IPC_SIGN_REQ (common/ipc.h). Never returns: exit(0) after
 * SIGTERM once the requests in progress are answered, exit(1) via fatalx on a fatal
 * error (unreadable or exposed key file, keys that do not decrypt). SIGHUP and SIGINT
 * are ignored: the parent restarts the signer to reload, and stops it last. */
void	signer_main(const struct idp_config *conf, int listen_fd) __attribute__((noreturn));

#endif
