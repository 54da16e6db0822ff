/* session.c: the browser's cookies, CSRF tokens, random tokens and their hashes.
 *
 * Two cookies, both HttpOnly, SameSite=Lax, Path=/, host-only, and Secure with the
 * __Host- prefix when the issuer is https:
 *   - the session cookie: a signed-in user's session; the database keeps only its
 *     SHA-256 (sessions.id_hash), made anew at every sign-in (no fixation);
 *   - the browser cookie: set by the first page of a flow, signed in or not. The CSRF
 *     token of every form is derived from it, and pending authorization requests are
 *     bound to its hash, so that a form only works in the browser it was shown in.
 * Neither has an expiry: they go when the browser session ends; the server enforces
 * the session's idle and absolute lifetimes itself.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "idp.h"
#include "log.h"
#include "secret.h"
#include "session.h"
#include "worker.h"
#include "xalloc.h"

#define CSRF_CONTEXT	"idp csrf v1:"

static int
session_https(const struct idp_config *conf)
{
	return strncmp(conf->issuer, "https://", 8) == 0;
}

const char *
session_cookie_name(const struct idp_config *conf, enum session_cookie which)
{
	if (session_https(conf))
		return which == SESSION_COOKIE_SESSION ? "__Host-idp_session" :
		    "__Host-idp_browser";
	return which == SESSION_COOKIE_SESSION ? "idp_session" : "idp_browser";
}

/* 1 if the n bytes at s are a token: SESSION_TOKEN_LEN base64url characters. */
static int
session_token_ok(const char *s, size_t n)
{
	size_t i;

	if (n != SESSION_TOKEN_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

char *
session_cookie_get(struct wreq *r, enum session_cookie which)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *name = session_cookie_name(worker_conf(r->w), which), *p, *v;
	size_t nlen = strlen(name), n;
	struct evkeyval *kv;

	/* Cookie: a=b; c=d (RFC 6265 section 4.2.1); one header or several. */
	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, "Cookie") != 0)
			continue;
		for (p = kv->value; *p != '\0'; p += n) {
			p += strspn(p, " \t;");
			n = strcspn(p, ";");
			if (n > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
				v = p + nlen + 1;
				n -= nlen + 1;
				while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
					n--;
				if (!session_token_ok(v, n))
					return NULL;
				return xstrndup(v, n);
			}
		}
	}
	return NULL;
}

void
session_cookie_set(struct wreq *r, enum session_cookie which, const char *value)
{
	const struct idp_config *conf = worker_conf(r->w);
	char *c;

	c = xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Lax%s%s",
	    session_cookie_name(conf, which), value != NULL ? value : "",
	    session_https(conf) ? "; Secure" : "", value == NULL ? "; Max-Age=0" : "");
	wreq_header(r, "Set-Cookie", c);
	free(c);
}

char *
session_browser(struct wreq *r)
{
	char *v = session_cookie_get(r, SESSION_COOKIE_BROWSER);
	char tok[SESSION_TOKEN_SIZE];

	if (v != NULL)
		return v;
	session_token_new(tok);
	session_cookie_set(r, SESSION_COOKIE_BROWSER, tok);
	return xstrdup(tok);
}

void
session_token_new(char out[SESSION_TOKEN_SIZE])
{
	unsigned char b[SESSION_TOKEN_BYTES];

	randombytes_buf(b, sizeof(b));
	sodium_bin2base64(out, SESSION_TOKEN_SIZE, b, sizeof(b),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(b, sizeof(b));
}

static void
session_sha256(const void *data, size_t len, unsigned char md[32])
{
	size_t mdlen = 0;

	if (!EVP_Q_digest(NULL, "SHA256", NULL, data, len, md, &mdlen) || mdlen != 32)
		fatalx("SHA-256 unavailable");
}

void
session_hash_hex(const char *s, char out[SESSION_HASH_SIZE])
{
	unsigned char md[32];

	session_sha256(s, strlen(s), md);
	sodium_bin2hex(out, SESSION_HASH_SIZE, md, sizeof(md));
}

void
session_csrf_token(const char *browser, char out[SESSION_TOKEN_SIZE])
{
	unsigned char md[32];
	size_t n = strlen(browser);
	char *buf = xmalloc(sizeof(CSRF_CONTEXT) + n);

	memcpy(buf, CSRF_CONTEXT, sizeof(CSRF_CONTEXT) - 1);
	memcpy(buf + sizeof(CSRF_CONTEXT) - 1, browser, n);
	session_sha256(buf, sizeof(CSRF_CONTEXT) - 1 + n, md);
	sodium_memzero(buf, sizeof(CSRF_CONTEXT) + n);
	free(buf);
	sodium_bin2base64(out, SESSION_TOKEN_SIZE, md, sizeof(md),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int
session_csrf_check(const char *browser, const char *token)
{
	char want[SESSION_TOKEN_SIZE];
	int ok;

	if (browser == NULL || token == NULL || strlen(token) != SESSION_TOKEN_LEN)
		return 0;
	session_csrf_token(browser, want);
	ok = secret_equal(want, token, SESSION_TOKEN_LEN);
	sodium_memzero(want, sizeof(want));
	return ok;
}

void
session_peer_addr(struct wreq *r)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	char *host = NULL;
	ev_uint16_t port;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &host, &port);
	snprintf(r->addr, sizeof(r->addr), "%s", host != NULL ? host : "-");
}
