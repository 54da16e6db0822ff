/* html.c: the provider's server-rendered pages and their security headers.
 *
 * The pages are small HTML5 documents built into an evbuffer and handed out as one
 * malloc'ed string. They carry no inline event handler, and no script except the
 * one line that submits the form_post response page (sent with its own headers,
 * html_form_post_headers); their only styling is the one <style> block below. The
 * Content-Security-Policy admits the two by their SHA-256 hashes ('sha256-...'),
 * computed once on first use, so that nothing else (default-src 'none') runs in them.
 *
 * Everything a page shows that did not come from this file (client names, usernames,
 * messages, scope names, the form action, hidden field names and values) goes through
 * html_escape_buf(). It escapes for text and for quoted attributes alike, so one
 * function serves every place a page reflects something, and it repairs the bytes on
 * the way: a username posted as invalid UTF-8 or with control characters is shown
 * with U+FFFD in their place. Attributes are always double-quoted.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "html.h"
#include "httputil.h"
#include "log.h"
#include "xalloc.h"

/* Longest CSP source this file writes ("https://" + a 253-byte host + ":65535"). */
#define CSP_SOURCE_MAX	272

/* The style block of every page; its hash goes into style-src. Change it freely: the
 * hash follows. */
static const char html_css[] =
	":root{color-scheme:light dark;--bg:#f3f4f6;--fg:#1f2328;--card:#fff;"
	"--line:#c9d1d9;--muted:#59636e;--accent:#0b5cad}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;padding:1rem;background:var(--bg);color:var(--fg);"
	"font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\n"
	"main{max-width:24rem;margin:8vh auto;padding:2rem;background:var(--card);"
	"border:1px solid var(--line);border-radius:.5rem}\n"
	"h1{margin:0 0 1.25rem;font-size:1.375rem;line-height:1.3;overflow-wrap:anywhere}\n"
	"p,ul{margin:0 0 1rem;overflow-wrap:anywhere}\n"
	"ul{padding-left:1.25rem}\n"
	"form+p{margin:1rem 0 0}\n"
	"main>:last-child{margin-bottom:0}\n"
	"label{display:block;margin:0 0 .25rem;font-weight:600}\n"
	"input{display:block;width:100%;margin:0 0 1rem;padding:.5rem .75rem;font:inherit;"
	"color:inherit;background:var(--card);border:1px solid var(--line);"
	"border-radius:.375rem}\n"
	"input:focus,button:focus{outline:2px solid var(--accent);outline-offset:1px}\n"
	"button{width:100%;margin:.5rem 0 0;padding:.625rem 1rem;font:inherit;"
	"font-weight:600;color:#fff;background:var(--accent);"
	"border:1px solid var(--accent);border-radius:.375rem;cursor:pointer}\n"
	"button.secondary{color:var(--fg);background:transparent;border-color:var(--line)}\n"
	".actions{display:flex;gap:.75rem}\n"
	".error{padding:.5rem .75rem;color:#82071e;background:#ffebe9;"
	"border:1px solid #ff8182;border-radius:.375rem}\n"
	".muted{color:var(--muted);font-size:.875rem}\n"
	"@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;"
	"--card:#161b22;--line:#3d444d;--muted:#9198a1;--accent:#1f6feb}\n"
	".error{color:#ffc1bb;background:#3d1214;border-color:#8e1519}}\n";

/* The only script: the form_post page submits its form at once (OAuth 2.0 Form Post
 * Response Mode); without JavaScript the page's button does it. */
static const char html_submit_js[] = "document.forms[0].submit();";

static pthread_once_t	 hash_once = PTHREAD_ONCE_INIT;
static char		 style_hash[64];	/* 'sha256-<44 base64 characters>' */
static char		 script_hash[64];

static const struct {
	const char	*scope;
	const char	*description;
} scope_descriptions[] = {
	{ "openid", "Sign you in" },
	{ "profile", "Your name" },
	{ "email", "Your email address" },
	{ "offline_access", "Stay signed in (refresh tokens)" },
};

/* Schemes never allowed as a form-action source, whatever a client registered. */
static const char *const csp_bad_schemes[] = {
	"javascript", "data", "blob", "filesystem", "about", "file", "vbscript",
};

/* --- escaping ----------------------------------------------------------------- */

#define UTF8_BAD	0xFFFFFFFFu

static void
put(struct evbuffer *b, const char *s)
{
	if (evbuffer_add(b, s, strlen(s)) == -1)
		fatalx("html: out of memory");
}

static void
putn(struct evbuffer *b, const void *s, size_t n)
{
	if (n > 0 && evbuffer_add(b, s, n) == -1)
		fatalx("html: out of memory");
}

/* Decode the UTF-8 sequence at s (n > 0 bytes): its length, and its code point in
 * *cp, or UTF8_BAD and the length of the maximal invalid subpart (at least 1), as
 * Unicode's "substitution of maximal subparts" counts it. Overlong forms, surrogates
 * and values above U+10FFFF are invalid (RFC 3629). */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t need, i;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;		/* overlong */
		else if (c == 0xED)
			hi = 0x9F;		/* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;		/* overlong */
		else if (c == 0xF4)
			hi = 0x8F;		/* above U+10FFFF */
	} else {
		*cp = UTF8_BAD;
		return 1;
	}
	for (i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*cp = UTF8_BAD;
			return i;
		}
		v = v << 6 | (s[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = v;
	return need + 1;
}

/* 1 if code point cp must not reach a page: controls other than TAB, LF and CR, DEL,
 * the C1 controls, noncharacters (all parse errors in HTML5), or invalid UTF-8. */
static int
cp_replaced(uint32_t cp)
{
	if (cp == UTF8_BAD)
		return 1;
	if (cp < 0x20)
		return cp != '\t' && cp != '\n' && cp != '\r';
	if (cp >= 0x7F && cp <= 0x9F)
		return 1;
	if (cp >= 0xFDD0 && cp <= 0xFDEF)
		return 1;
	return (cp & 0xFFFE) == 0xFFFE;
}

void
html_escape_buf(struct evbuffer *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	const char *ent;
	uint32_t cp;
	size_t n;

	while (p < end) {
		n = utf8_next(p, (size_t)(end - p), &cp);
		switch (cp) {
		case '&':	ent = "&amp;"; break;
		case '<':	ent = "&lt;"; break;
		case '>':	ent = "&gt;"; break;
		case '"':	ent = "&quot;"; break;
		case '\'':	ent = "&#39;"; break;
		case '`':	ent = "&#96;"; break;
		case '=':	ent = "&#61;"; break;
		default:
			ent = cp_replaced(cp) ? "\xEF\xBF\xBD" : NULL;	/* U+FFFD */
			break;
		}
		if (ent != NULL) {
			putn(out, run, (size_t)(p - run));
			put(out, ent);
			run = p + n;
		}
		p += n;
	}
	putn(out, run, (size_t)(p - run));
}

/* Drain b into a new NUL-terminated string and free b. */
static char *
buf_finish(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = xmalloc(n + 1);

	if (evbuffer_remove(b, s, n) != (int)n)
		fatalx("html: evbuffer_remove");
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static struct evbuffer *
buf_new(void)
{
	struct evbuffer *b;

	if ((b = evbuffer_new()) == NULL)
		fatalx("html: out of memory");
	return b;
}

char *
html_escape(const char *s)
{
	struct evbuffer *b = buf_new();

	if (s != NULL)
		html_escape_buf(b, s, strlen(s));
	return buf_finish(b);
}

static void
esc(struct evbuffer *b, const char *s)
{
	if (s != NULL)
		html_escape_buf(b, s, strlen(s));
}

/* --- the style hash ------------------------------------------------------------ */

/* out = "'sha256-<base64 of SHA-256(s)>'", a CSP hash source. */
static void
csp_hash(const char *s, size_t len, char out[64])
{
	unsigned char md[32];
	char b64[sodium_base64_ENCODED_LEN(sizeof(md), sodium_base64_VARIANT_ORIGINAL)];
	size_t mdlen = 0;

	if (!EVP_Q_digest(NULL, "SHA256", NULL, s, len, md, &mdlen) ||
	    mdlen != sizeof(md))
		fatalx("html: SHA-256 failed");
	sodium_bin2base64(b64, sizeof(b64), md, sizeof(md), sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, 64, "'sha256-%s'", b64);
}

static void
hashes_init(void)
{
	csp_hash(html_css, sizeof(html_css) - 1, style_hash);
	csp_hash(html_submit_js, sizeof(html_submit_js) - 1, script_hash);
}

const char *
html_style_hash(void)
{
	if (pthread_once(&hash_once, hashes_init) != 0)
		fatalx("html: pthread_once");
	return style_hash;
}

const char *
html_script_hash(void)
{
	if (pthread_once(&hash_once, hashes_init) != 0)
		fatalx("html: pthread_once");
	return script_hash;
}

/* --- page parts ---------------------------------------------------------------- */

/* The document up to <main>: title is title_lit followed by title_arg escaped. */
static struct evbuffer *
page_begin(const char *title_lit, const char *title_arg)
{
	struct evbuffer *b = buf_new();

	put(b, "<!doctype html>\n"
	    "<html lang=\"en\">\n"
	    "<head>\n"
	    "<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	    "<meta name=\"robots\" content=\"noindex, nofollow\">\n"
	    "<title>");
	put(b, title_lit);
	esc(b, title_arg);
	put(b, "</title>\n<style>");
	put(b, html_css);
	put(b, "</style>\n"
	    "</head>\n"
	    "<body>\n"
	    "<main>\n");
	return b;
}

static char *
page_end(struct evbuffer *b)
{
	put(b, "</main>\n"
	    "</body>\n"
	    "</html>\n");
	return buf_finish(b);
}

static void
hidden(struct evbuffer *b, const char *name, const char *value)
{
	put(b, "<input type=\"hidden\" name=\"");
	esc(b, name);
	put(b, "\" value=\"");
	esc(b, value);
	put(b, "\">\n");
}

/* <form method="post" action="..."> with the CSRF token and the caller's fields. */
static void
form_begin(struct evbuffer *b, const char *action, const char *csrf_token,
    const struct html_field *fields, size_t nfields)
{
	size_t i;

	put(b, "<form method=\"post\" action=\"");
	esc(b, action);
	put(b, "\">\n");
	hidden(b, "csrf_token", csrf_token);
	for (i = 0; i < nfields; i++)
		if (fields[i].name != NULL)
			hidden(b, fields[i].name, fields[i].value);
}

/* --- pages --------------------------------------------------------------------- */

char *
html_login_page(const struct html_login *p)
{
	struct evbuffer *b;

	if (p->client_name != NULL) {
		b = page_begin("Sign in to ", p->client_name);
		put(b, "<h1>Sign in to ");
		esc(b, p->client_name);
		put(b, "</h1>\n");
	} else {
		b = page_begin("Sign in", NULL);
		put(b, "<h1>Sign in</h1>\n");
	}
	if (p->error != NULL) {
		put(b, "<p class=\"error\" role=\"alert\">");
		esc(b, p->error);
		put(b, "</p>\n");
	}
	form_begin(b, p->action, p->csrf_token, p->fields, p->nfields);
	put(b, "<label for=\"username\">Username</label>\n"
	    "<input id=\"username\" name=\"username\" type=\"text\" "
	    "autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" "
	    "autofocus required");
	if (p->username != NULL) {
		put(b, " value=\"");
		esc(b, p->username);
		put(b, "\"");
	}
	put(b, ">\n"
	    "<label for=\"password\">Password</label>\n"
	    "<input id=\"password\" name=\"password\" type=\"password\" "
	    "autocomplete=\"current-password\" required>\n"
	    "<button type=\"submit\">Sign in</button>\n"
	    "</form>\n");
	return page_end(b);
}

const char *
html_scope_description(const char *scope)
{
	size_t i;

	for (i = 0; i < sizeof(scope_descriptions) / sizeof(scope_descriptions[0]); i++)
		if (strcmp(scope, scope_descriptions[i].scope) == 0)
			return scope_descriptions[i].description;
	return NULL;
}

/* 1 if the space-separated list s has the n-byte token t before position end. */
static int
scope_seen(const char *s, const char *end, const char *t, size_t n)
{
	size_t m;

	while (s < end) {
		while (*s == ' ')
			s++;
		m = strcspn(s, " ");
		if (s >= end)
			break;
		if (m == n && memcmp(s, t, n) == 0)
			return 1;
		s += m;
	}
	return 0;
}

char *
html_consent_page(const struct html_consent *p)
{
	const char *name = p->client_name != NULL ? p->client_name : "this application";
	const char *s, *desc;
	struct evbuffer *b;
	char *tok;
	size_t n;
	int list = 0;

	b = page_begin("Allow access to ", name);
	put(b, "<h1>Allow ");
	esc(b, name);
	put(b, " to access your account?</h1>\n");
	for (s = p->scope != NULL ? p->scope : ""; *s != '\0'; s += n) {
		while (*s == ' ')
			s++;
		if ((n = strcspn(s, " ")) == 0)
			break;
		if (scope_seen(p->scope, s, s, n))
			continue;
		if (!list) {
			put(b, "<p>");
			esc(b, name);
			put(b, " asks for:</p>\n<ul>\n");
			list = 1;
		}
		tok = xstrndup(s, n);
		desc = html_scope_description(tok);
		put(b, "<li>");
		esc(b, desc != NULL ? desc : tok);
		put(b, "</li>\n");
		free(tok);
	}
	if (list)
		put(b, "</ul>\n");
	if (p->username != NULL) {
		put(b, "<p class=\"muted\">Signed in as ");
		esc(b, p->username);
		put(b, "</p>\n");
	}
	form_begin(b, p->action, p->csrf_token, p->fields, p->nfields);
	put(b, "<div class=\"actions\">\n"
	    "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n"
	    "<button type=\"submit\" name=\"decision\" value=\"deny\" "
	    "class=\"secondary\">Deny</button>\n"
	    "</div>\n"
	    "</form>\n");
	return page_end(b);
}

char *
html_error_page(const char *title, const char *message)
{
	struct evbuffer *b;

	if (title == NULL)
		title = "Error";
	b = page_begin("", title);
	put(b, "<h1>");
	esc(b, title);
	put(b, "</h1>\n");
	if (message != NULL) {
		put(b, "<p>");
		esc(b, message);
		put(b, "</p>\n");
	}
	return page_end(b);
}

/* The host[:port] of an absolute URL, or all of it if it has no "//" authority; a
 * new string. */
static char *
url_host(const char *url)
{
	const char *a, *e, *at;

	if (url == NULL)
		return xstrdup("");
	if ((a = strstr(url, "://")) == NULL)
		return xstrdup(url);
	a += 3;
	e = a + strcspn(a, "/?#");
	while ((at = memchr(a, '@', (size_t)(e - a))) != NULL)
		a = at + 1;
	return xstrndup(a, (size_t)(e - a));
}

char *
html_logout_page(const struct html_logout *p)
{
	struct evbuffer *b;
	char *host = url_host(p->issuer);

	b = page_begin("Sign out of ", host);
	put(b, "<h1>Sign out of ");
	esc(b, host);
	put(b, "?</h1>\n");
	if (p->client_name != NULL) {
		put(b, "<p>");
		esc(b, p->client_name);
		put(b, " asks to sign you out.</p>\n");
	}
	form_begin(b, p->action, p->csrf_token, p->fields, p->nfields);
	put(b, "<button type=\"submit\">Sign out</button>\n"
	    "</form>\n"
	    "<p class=\"muted\">To stay signed in, close this page.</p>\n");
	free(host);
	return page_end(b);
}

char *
html_form_post_page(const char *action, const struct html_field *fields, size_t nfields)
{
	struct evbuffer *b;
	char *host = url_host(action);
	size_t i;

	b = page_begin("Continue to ", host);
	put(b, "<h1>Continue to ");
	esc(b, host);
	put(b, "</h1>\n<form method=\"post\" action=\"");
	esc(b, action);
	put(b, "\">\n");
	for (i = 0; i < nfields; i++)
		if (fields[i].name != NULL)
			hidden(b, fields[i].name, fields[i].value);
	put(b, "<button type=\"submit\">Continue</button>\n"
	    "</form>\n<script>");
	put(b, html_submit_js);
	put(b, "</script>\n");
	free(host);
	return page_end(b);
}

char *
html_logged_out_page(void)
{
	struct evbuffer *b = page_begin("Signed out", NULL);

	put(b, "<h1>You are signed out</h1>\n"
	    "<p>You can close this page.</p>\n");
	return page_end(b);
}

/* --- headers ------------------------------------------------------------------- */

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* The CSP source expression for url into out (CSP_SOURCE_MAX bytes): an http(s) URL
 * gives scheme://host[:port], any other scheme "scheme:". 0, or -1 and *errstr. The
 * result holds only letters, digits, "+-.:/" and "*", nothing that could end a directive
 * or a header. */
static int
csp_source(const char *url, char *out, const char **errstr)
{
	const char *p = url, *host, *hend, *end, *port = NULL;
	char scheme[32];
	size_t n, i, label;
	unsigned long v;

	for (n = 0; is_alpha(p[n]) || (n > 0 && (is_digit(p[n]) || p[n] == '+' ||
	    p[n] == '-' || p[n] == '.')); n++)
		if (n + 1 >= sizeof(scheme)) {
			*errstr = "form origin with an overlong scheme";
			return -1;
		}
	if (n == 0 || p[n] != ':') {
		*errstr = "form origin is not an absolute URL";
		return -1;
	}
	for (i = 0; i < n; i++)
		scheme[i] = (char)lower(p[i]);
	scheme[n] = '\0';
	for (i = 0; i < sizeof(csp_bad_schemes) / sizeof(csp_bad_schemes[0]); i++)
		if (strcmp(scheme, csp_bad_schemes[i]) == 0) {
			*errstr = "form origin with a forbidden scheme";
			return -1;
		}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(out, CSP_SOURCE_MAX, "%s:", scheme);
		return 0;
	}

	p += n + 1;
	if (p[0] != '/' || p[1] != '/') {
		*errstr = "http(s) form origin without a host";
		return -1;
	}
	host = p + 2;
	end = host + strcspn(host, "/?#");
	if (memchr(host, '@', (size_t)(end - host)) != NULL) {
		*errstr = "form origin with userinfo";
		return -1;
	}
	if ((hend = memchr(host, ':', (size_t)(end - host))) != NULL)
		port = hend + 1;
	else
		hend = end;
	/* host-part: 1*host-char *("." 1*host-char), host-char = ALPHA / DIGIT / "-" */
	if (hend == host || hend - host > 253) {
		*errstr = "form origin with an empty, overlong or bracketed host";
		return -1;
	}
	for (p = host, label = 0; p < hend; p++) {
		if (*p == '.' && label > 0)
			label = 0;
		else if (is_alpha(*p) || is_digit(*p) || *p == '-')
			label++;
		else {
			*errstr = "form origin with a host CSP cannot express";
			return -1;
		}
	}
	if (label == 0) {
		*errstr = "form origin with an empty host label";
		return -1;
	}
	if (port != NULL) {
		n = (size_t)(end - port);
		if (!(n == 1 && *port == '*')) {
			for (i = 0, v = 0; i < n && i < 6 && is_digit(port[i]); i++)
				v = v * 10 + (unsigned long)(port[i] - '0');
			if (n == 0 || i < n || v > 65535) {
				*errstr = "form origin with a bad port";
				return -1;
			}
		}
	}
	n = (size_t)snprintf(out, CSP_SOURCE_MAX, "%s://", scheme);
	for (p = host; p < end; p++)
		out[n++] = (char)lower(*p);
	out[n] = '\0';
	return 0;
}

/* Remove every header called name, then add one with value. */
static void
header_set(struct evkeyvalq *h, const char *name, const char *value)
{
	while (evhttp_remove_header(h, name) == 0)
		;
	if (evhttp_add_header(h, name, value) == -1)
		fatalx("html: cannot add header %s", name);
}

static int
security_headers(struct evhttp_request *req, const char *issuer,
    const char *const *form_origins, size_t norigins, int script, const char **errstr)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = buf_new();
	char (*srcs)[CSP_SOURCE_MAX], *csp;
	const char *url, *err, *first_err = NULL;
	size_t i, j, nsrcs = 0;

	srcs = xcalloc(norigins + 1, sizeof(*srcs));
	put(b, "default-src 'none'; form-action 'self'");
	for (i = 0; i < norigins + 1; i++) {
		url = i == 0 ? issuer : form_origins[i - 1];
		if (url == NULL)
			continue;
		if (csp_source(url, srcs[nsrcs], &err) == -1) {
			if (first_err == NULL)
				first_err = err;
			continue;
		}
		for (j = 0; j < nsrcs; j++)
			if (strcmp(srcs[j], srcs[nsrcs]) == 0)
				break;
		if (j < nsrcs)
			continue;
		put(b, " ");
		put(b, srcs[nsrcs++]);
	}
	put(b, "; frame-ancestors 'none'; base-uri 'none'; style-src ");
	put(b, html_style_hash());
	if (script) {
		put(b, "; script-src ");
		put(b, html_script_hash());
	}
	csp = buf_finish(b);
	free(srcs);

	header_set(h, "Content-Type", HTTP_CT_HTML);
	header_set(h, "Content-Security-Policy", csp);
	header_set(h, "X-Frame-Options", "DENY");
	header_set(h, "Referrer-Policy", "no-referrer");
	header_set(h, "X-Content-Type-Options", "nosniff");
	header_set(h, "Cache-Control", "no-store");
	free(csp);
	if (first_err != NULL) {
		if (errstr != NULL)
			*errstr = first_err;
		return -1;
	}
	return 0;
}

int
html_security_headers(struct evhttp_request *req, const char *issuer,
    const char *const *form_origins, size_t norigins, const char **errstr)
{
	return security_headers(req, issuer, form_origins, norigins, 0, errstr);
}

int
html_form_post_headers(struct evhttp_request *req, const char *issuer,
    const char *const *form_origins, size_t norigins, const char **errstr)
{
	return security_headers(req, issuer, form_origins, norigins, 1, errstr);
}
