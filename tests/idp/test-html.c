/* test-html.c: idp's HTML pages and their security headers: escaping of everything
 * reflected, UTF-8 repair, the forms' fields and buttons, the CSP and its style hash.
 * With a directory as argument it also writes each page there (login.html,
 * login-hostile.html, ...) and the CSP to csp.txt, for a look in a browser. */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "../unit/check.h"
#include "html.h"

#define FFFD	"\xEF\xBF\xBD"

static const char *const tags[] = {
	"html", "head", "meta", "title", "style", "body", "main", "h1", "p", "ul", "li",
	"form", "input", "label", "button", "div", "script",
};
static const char *const attrs[] = {
	"lang", "charset", "name", "content", "class", "role", "method", "action", "type",
	"value", "id", "for", "autocomplete", "autocapitalize", "spellcheck", "autofocus",
	"required",
};

static int
in(const char *const *list, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
			return 1;
	return 0;
}

static int
has(const char *page, const char *needle)
{
	return strstr(page, needle) != NULL;
}

static int
count(const char *page, const char *needle)
{
	const char *p = page;
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/*
 * A strict reading of the page as this module writes it: only the tags and attribute
 * names above, every attribute value double-quoted and free of < > ' `,
 * text free of markup characters, nothing after </html>. Any escaping gap (a new tag,
 * a new attribute, a broken quote) fails it. Returns NULL or what was wrong.
 */
static const char *
strict_parse(const char *page)
{
	const char *p, *n, *tag;
	size_t len;

	if (strncmp(page, "<!doctype html>\n", 16) != 0)
		return "no doctype";
	for (p = page + 16; *p != '\0'; ) {
		if (*p != '<') {
			if (strchr("\"'`=>", *p) != NULL)
				return "markup character in text";
			p++;
			continue;
		}
		p++;
		if (*p == '/')
			p++;
		for (tag = p; (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'); p++)
			;
		if (!in(tags, sizeof(tags) / sizeof(tags[0]), tag, (size_t)(p - tag)))
			return "unexpected tag";
		while (*p == ' ') {
			p++;
			for (n = p; (*p >= 'a' && *p <= 'z') || *p == '-'; p++)
				;
			if (!in(attrs, sizeof(attrs) / sizeof(attrs[0]), n, (size_t)(p - n)))
				return "unexpected attribute";
			if (*p != '=')
				continue;
			if (*++p != '"')
				return "unquoted attribute";
			for (p++; *p != '"'; p++)
				if (*p == '\0' || strchr("<>'`", *p) != NULL)
					return "markup character in an attribute value";
			p++;
		}
		if (*p++ != '>')
			return "tag not closed";
		if (strncmp(tag - 1, "<style>", 7) == 0) {
			if ((p = strstr(p, "</style>")) == NULL)
				return "style not closed";
		}
		if (strncmp(tag - 1, "<script>", 8) == 0) {
			if ((p = strstr(p, "</script>")) == NULL)
				return "script not closed";
		}
	}
	len = strlen(page);
	if (len < 8 || strcmp(page + len - 8, "</html>\n") != 0)
		return "does not end with </html>";
	return NULL;
}

static int
no_script(const char *page)
{
	return strcasestr(page, "<script") == NULL &&
	    strcasestr(page, "javascript:") == NULL;
}

/* What every page must be: a valid, complete, script-free document. */
static void
check_document(const char *page, const char *title)
{
	const char *err = strict_parse(page);
	char *t;

	if (err != NULL)
		fprintf(stderr, "strict_parse: %s\n", err);
	CHECK(err == NULL);
	CHECK(no_script(page));
	CHECK(strncmp(page, "<!doctype html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n", 55) == 0);
	CHECK(has(page, "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">"));
	t = malloc(strlen(title) + 20);
	sprintf(t, "<title>%s</title>", title);
	CHECK(count(page, "<title>") == 1 && has(page, t));
	free(t);
	CHECK(count(page, "<style>") == 1 && count(page, "<h1>") == 1);
	CHECK(!has(page, "http-equiv") && !has(page, "<a ") && !has(page, "src="));
}

/* The contents of the page's first open...close block (<style>, <script>) hashed
 * here, independently of html.c, as a CSP hash source. */
static char *
block_hash_of(const char *page, const char *open, const char *close)
{
	const char *s = strstr(page, open), *e;
	unsigned char md[EVP_MAX_MD_SIZE], b64[64];
	unsigned int mdlen;
	char *out;

	if (s == NULL || (e = strstr(s, close)) == NULL)
		return NULL;
	s += strlen(open);
	if (!EVP_Digest(s, (size_t)(e - s), md, &mdlen, EVP_sha256(), NULL))
		return NULL;
	EVP_EncodeBlock(b64, md, (int)mdlen);
	out = malloc(128);
	snprintf(out, 128, "'sha256-%s'", b64);
	return out;
}

static char *
style_hash_of(const char *page)
{
	return block_hash_of(page, "<style>", "</style>");
}

static void
save(const char *dir, const char *name, const char *data)
{
	char path[4096];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		return;
	}
	fputs(data, f);
	fclose(f);
}

static int
escapes_to(const char *in_, const char *want)
{
	char *got = html_escape(in_);
	int ok = strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "html_escape: got \"%s\", want \"%s\"\n", got, want);
	free(got);
	return ok;
}

static void
test_escape(void)
{
	struct evbuffer *b;
	char out[64];
	size_t n;

	CHECK(escapes_to("&<>\"'`=", "&amp;&lt;&gt;&quot;&#39;&#96;&#61;"));
	CHECK(escapes_to("plain text 123", "plain text 123"));
	CHECK(escapes_to("", "") && escapes_to(NULL, ""));
	CHECK(escapes_to("&amp;", "&amp;amp;"));
	/* UTF-8 passes through: 2, 3 and 4 byte forms. */
	CHECK(escapes_to("Zoë € 😀 日本", "Zoë € 😀 日本"));
	CHECK(escapes_to("\xF4\x8F\xBF\xBD", "\xF4\x8F\xBF\xBD"));	/* U+10FFFD */
	/* Invalid UTF-8: each maximal subpart becomes one U+FFFD. */
	CHECK(escapes_to("a\xFF" "b", "a" FFFD "b"));
	CHECK(escapes_to("\xC0\xAF", FFFD FFFD));			/* overlong '/' */
	CHECK(escapes_to("\xE0\x80\xBC", FFFD FFFD FFFD));		/* overlong '<' */
	CHECK(escapes_to("\xC0\xBC" "script", FFFD FFFD "script"));
	CHECK(escapes_to("\xED\xA0\x80", FFFD FFFD FFFD));		/* surrogate */
	CHECK(escapes_to("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD));	/* > U+10FFFF */
	CHECK(escapes_to("\xF5\x80", FFFD FFFD));
	CHECK(escapes_to("x\xE2\x82", "x" FFFD));			/* truncated */
	CHECK(escapes_to("\xE2\x82<", FFFD "&lt;"));
	CHECK(escapes_to("\x80\xBF", FFFD FFFD));			/* lone continuations */
	/* Controls: TAB, LF, CR stay; the rest, DEL, C1 and noncharacters go. */
	CHECK(escapes_to("a\tb\nc\rd", "a\tb\nc\rd"));
	CHECK(escapes_to("\x01\x1B[31m\x7F", FFFD FFFD "[31m" FFFD));
	CHECK(escapes_to("\xC2\x85\xC2\x9F\xC2\xA0", FFFD FFFD "\xC2\xA0"));
	CHECK(escapes_to("\xEF\xBF\xBE\xEF\xB7\x90\xF0\x9F\xBF\xBF", FFFD FFFD FFFD));
	/* A NUL inside a counted buffer. */
	b = evbuffer_new();
	html_escape_buf(b, "a\0<", 3);
	n = evbuffer_get_length(b);
	CHECK(n == 8);
	evbuffer_remove(b, out, n);
	CHECK(memcmp(out, "a" FFFD "&lt;", 8) == 0);
	evbuffer_free(b);
}

static const char evil_client[] = "<script>alert(1)</script>";
static const char evil_user[] = "\"><img src=x onerror=alert(1)>";
static const struct html_field evil_fields[] = {
	{ "request_id", "abc123" },
	{ "\"><script>x</script>", "\" autofocus onfocus=\"alert(1)" },
	{ "state", "' onmouseover='alert(1)' x='" },
	{ "back`tick", "`><svg onload=alert(1)>" },
	{ NULL, "skipped" },
	{ "empty", NULL },
};
#define NEVIL	(sizeof(evil_fields) / sizeof(evil_fields[0]))

static void
check_evil_fields(const char *page)
{
	CHECK(has(page, "<input type=\"hidden\" name=\"csrf_token\" value=\"tok&#61;en\">\n"
	    "<input type=\"hidden\" name=\"request_id\" value=\"abc123\">\n"
	    "<input type=\"hidden\" name=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\" "
	    "value=\"&quot; autofocus onfocus&#61;&quot;alert(1)\">\n"
	    "<input type=\"hidden\" name=\"state\" "
	    "value=\"&#39; onmouseover&#61;&#39;alert(1)&#39; x&#61;&#39;\">\n"
	    "<input type=\"hidden\" name=\"back&#96;tick\" "
	    "value=\"&#96;&gt;&lt;svg onload&#61;alert(1)&gt;\">\n"
	    "<input type=\"hidden\" name=\"empty\" value=\"\">\n"));
	CHECK(!has(page, "skipped"));
	CHECK(count(page, "type=\"hidden\"") == 6);
}

static void
test_login(const char *dir)
{
	struct html_login l = {
		.action = "/login", .client_name = "Demo App", .csrf_token = "tok=en",
	};
	char *p;

	p = html_login_page(&l);
	check_document(p, "Sign in to Demo App");
	CHECK(has(p, "<h1>Sign in to Demo App</h1>"));
	CHECK(has(p, "<form method=\"post\" action=\"/login\">"));
	CHECK(has(p, "<label for=\"username\">Username</label>"));
	CHECK(has(p, "<input id=\"username\" name=\"username\" type=\"text\" "
	    "autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" "
	    "autofocus required>"));
	CHECK(has(p, "<label for=\"password\">Password</label>"));
	CHECK(has(p, "<input id=\"password\" name=\"password\" type=\"password\" "
	    "autocomplete=\"current-password\" required>"));
	CHECK(has(p, "<input type=\"hidden\" name=\"csrf_token\" value=\"tok&#61;en\">"));
	CHECK(count(p, "<button") == 1 &&
	    has(p, "<button type=\"submit\">Sign in</button>"));
	CHECK(!has(p, "class=\"error\"") && count(p, " value=") == 1);
	save(dir, "login.html", p);
	free(p);

	/* After a failure: the message, the username kept, the extra fields. */
	l.error = HTML_LOGIN_FAILED;
	l.username = "alice";
	l.fields = evil_fields;
	l.nfields = NEVIL;
	p = html_login_page(&l);
	check_document(p, "Sign in to Demo App");
	CHECK(has(p, "<p class=\"error\" role=\"alert\">The username or password is "
	    "incorrect.</p>"));
	CHECK(has(p, "autofocus required value=\"alice\">"));
	check_evil_fields(p);
	save(dir, "login-error.html", p);
	free(p);

	/* Everything hostile at once. */
	l.client_name = evil_client;
	l.username = evil_user;
	l.error = "<b>bad</b>";
	l.action = "\" onsubmit=\"alert(1)";
	p = html_login_page(&l);
	check_document(p, "Sign in to &lt;script&gt;alert(1)&lt;/script&gt;");
	CHECK(has(p, "<h1>Sign in to &lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
	CHECK(has(p, " value=\"&quot;&gt;&lt;img src&#61;x onerror&#61;alert(1)&gt;\">"));
	CHECK(!has(p, "<img") && !has(p, "<b>") && has(p, "&lt;b&gt;bad&lt;/b&gt;"));
	CHECK(has(p, "action=\"&quot; onsubmit&#61;&quot;alert(1)\">"));
	check_evil_fields(p);
	save(dir, "login-hostile.html", p);
	free(p);

	/* Invalid UTF-8 and controls in reflected fields. */
	l.client_name = "Bad\xFF\x01" "App";
	l.username = "bob\xC0\xBE\x1B";
	l.error = NULL;
	l.action = "/login";
	l.nfields = 0;
	p = html_login_page(&l);
	check_document(p, "Sign in to Bad" FFFD FFFD "App");
	CHECK(has(p, "value=\"bob" FFFD FFFD FFFD "\">"));
	free(p);

	/* No client name. */
	l.client_name = NULL;
	l.username = NULL;
	p = html_login_page(&l);
	check_document(p, "Sign in");
	CHECK(has(p, "<h1>Sign in</h1>"));
	free(p);
}

static void
test_consent(const char *dir)
{
	struct html_consent c = {
		.action = "/authorize/consent", .client_name = "Demo App",
		.username = "alice", .csrf_token = "tok=en",
		.scope = "openid profile  email offline_access api:read openid",
		.fields = evil_fields, .nfields = 1,
	};
	char *p;

	p = html_consent_page(&c);
	check_document(p, "Allow access to Demo App");
	CHECK(has(p, "<h1>Allow Demo App to access your account?</h1>"));
	CHECK(has(p, "<ul>\n<li>Sign you in</li>\n<li>Your name</li>\n"
	    "<li>Your email address</li>\n<li>Stay signed in (refresh tokens)</li>\n"
	    "<li>api:read</li>\n</ul>\n"));
	CHECK(count(p, "<li>") == 5);
	CHECK(has(p, "Signed in as alice"));
	CHECK(has(p, "<form method=\"post\" action=\"/authorize/consent\">\n"
	    "<input type=\"hidden\" name=\"csrf_token\" value=\"tok&#61;en\">\n"
	    "<input type=\"hidden\" name=\"request_id\" value=\"abc123\">\n"));
	CHECK(count(p, "<button") == 2);
	CHECK(has(p, "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow"
	    "</button>"));
	CHECK(has(p, "<button type=\"submit\" name=\"decision\" value=\"deny\" "
	    "class=\"secondary\">Deny</button>"));
	save(dir, "consent.html", p);
	free(p);

	c.client_name = evil_client;
	c.username = evil_user;
	c.scope = "<script>x</script> a\"b \xFF";
	c.nfields = NEVIL;
	p = html_consent_page(&c);
	check_document(p, "Allow access to &lt;script&gt;alert(1)&lt;/script&gt;");
	CHECK(has(p, "<li>&lt;script&gt;x&lt;/script&gt;</li>\n<li>a&quot;b</li>\n"
	    "<li>" FFFD "</li>\n"));
	CHECK(has(p, "Signed in as &quot;&gt;&lt;img src&#61;x onerror&#61;alert(1)&gt;"));
	check_evil_fields(p);
	free(p);

	c.client_name = NULL;
	c.scope = "  ";
	c.username = NULL;
	p = html_consent_page(&c);
	check_document(p, "Allow access to this application");
	CHECK(!has(p, "<ul>") && !has(p, "Signed in as"));
	free(p);

	CHECK(strcmp(html_scope_description("openid"), "Sign you in") == 0);
	CHECK(html_scope_description("openid2") == NULL);
}

static void
test_error_and_logout(const char *dir)
{
	struct html_logout lo = {
		.action = "/logout", .issuer = "https://idp.example.com",
		.csrf_token = "tok=en", .fields = evil_fields, .nfields = NEVIL,
	};
	char *p;

	p = html_error_page("Unknown client",
	    "The redirect URI is not registered for this client.");
	check_document(p, "Unknown client");
	CHECK(has(p, "<h1>Unknown client</h1>\n<p>The redirect URI is not registered for "
	    "this client.</p>"));
	CHECK(!has(p, "<form"));
	save(dir, "error.html", p);
	free(p);
	p = html_error_page(evil_client, evil_user);
	check_document(p, "&lt;script&gt;alert(1)&lt;/script&gt;");
	CHECK(!has(p, "<img"));
	free(p);
	p = html_error_page(NULL, NULL);
	check_document(p, "Error");
	free(p);

	p = html_logout_page(&lo);
	check_document(p, "Sign out of idp.example.com");
	CHECK(has(p, "<h1>Sign out of idp.example.com?</h1>"));
	CHECK(has(p, "<form method=\"post\" action=\"/logout\">"));
	CHECK(count(p, "<button") == 1 &&
	    has(p, "<button type=\"submit\">Sign out</button>"));
	check_evil_fields(p);
	save(dir, "logout.html", p);
	free(p);

	lo.issuer = "https://u:p@idp.example.com:8443/realm?x#y";
	lo.client_name = evil_client;
	p = html_logout_page(&lo);
	check_document(p, "Sign out of idp.example.com:8443");
	CHECK(has(p, "<p>&lt;script&gt;alert(1)&lt;/script&gt; asks to sign you out.</p>"));
	free(p);
	lo.issuer = "https://<i>\"/";
	p = html_logout_page(&lo);
	check_document(p, "Sign out of &lt;i&gt;&quot;");
	free(p);

	p = html_logged_out_page();
	check_document(p, "Signed out");
	CHECK(has(p, "<h1>You are signed out</h1>") && !has(p, "<form"));
	save(dir, "logged-out.html", p);
	free(p);
}

static int
header_count(struct evkeyvalq *h, const char *name)
{
	struct evkeyval *kv;
	int n = 0;

	TAILQ_FOREACH(kv, h, next)
		if (strcasecmp(kv->key, name) == 0)
			n++;
	return n;
}

static int
header_is(struct evkeyvalq *h, const char *name, const char *want)
{
	const char *v = evhttp_find_header(h, name);

	if (v == NULL || strcmp(v, want) != 0)
		fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", name, v ? v : "(none)", want);
	return header_count(h, name) == 1 && v != NULL && strcmp(v, want) == 0;
}

static void
test_headers(const char *dir)
{
	const char *const origins[] = {
		"https://rp.example.com/callback",
		"https://RP.example.com/other?x=1",	/* same origin: dropped */
		"http://127.0.0.1:8080/cb",
		"http://localhost:*/cb",
		"com.example.App:/oauth2redirect",
		"https://idp.example.com/again",	/* the issuer's: dropped */
		"javascript:alert(1)",
		"https://a.example\r\nX-Injected: 1",
		"https://user@evil.example/",
		"https://[::1]:8443/cb",
		"https://a..b/",
		"https://a.example:99999/",
		"https://a.example;script-src *",
		"DATA:text/html,x",
		"/relative",
		"https://host.example:/",
	};
	const char *good[] = { "https://rp.example.com/cb" };
	char want[1024], *page, *hash;
	const char *errstr = NULL, *csp;
	struct evhttp_request *req;
	struct evkeyvalq *h;

	page = html_logged_out_page();
	hash = style_hash_of(page);
	CHECK(hash != NULL && strcmp(hash, html_style_hash()) == 0);

	req = evhttp_request_new(NULL, NULL);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "Cache-Control", "max-age=60");
	CHECK(html_security_headers(req, "https://IDP.example.com", origins,
	    sizeof(origins) / sizeof(origins[0]), &errstr) == -1);
	CHECK(errstr != NULL && strcmp(errstr, "form origin with a forbidden scheme") == 0);
	snprintf(want, sizeof(want), "default-src 'none'; form-action 'self' "
	    "https://idp.example.com https://rp.example.com http://127.0.0.1:8080 "
	    "http://localhost:* com.example.app:; frame-ancestors 'none'; "
	    "base-uri 'none'; style-src %s", hash != NULL ? hash : "?");
	CHECK(header_is(h, "Content-Security-Policy", want));
	CHECK(header_is(h, "Content-Type", "text/html; charset=utf-8"));
	CHECK(header_is(h, "X-Frame-Options", "DENY"));
	CHECK(header_is(h, "Referrer-Policy", "no-referrer"));
	CHECK(header_is(h, "X-Content-Type-Options", "nosniff"));
	CHECK(header_is(h, "Cache-Control", "no-store"));
	CHECK(evhttp_find_header(h, "X-Injected") == NULL);
	evhttp_request_free(req);

	/* Called twice, and with nothing to add: still one of each. */
	req = evhttp_request_new(NULL, NULL);
	h = evhttp_request_get_output_headers(req);
	CHECK(html_security_headers(req, NULL, NULL, 0, &errstr) == 0);
	CHECK(html_security_headers(req, "http://localhost:8080", good, 1, &errstr) == 0);
	snprintf(want, sizeof(want), "default-src 'none'; form-action 'self' "
	    "http://localhost:8080 https://rp.example.com; frame-ancestors 'none'; "
	    "base-uri 'none'; style-src %s", hash != NULL ? hash : "?");
	CHECK(header_is(h, "Content-Security-Policy", want));
	CHECK(header_count(h, "Content-Type") == 1 && header_count(h, "X-Frame-Options") == 1);
	csp = evhttp_find_header(h, "Content-Security-Policy");
	save(dir, "csp.txt", csp != NULL ? csp : "");
	evhttp_request_free(req);

	/* Every page carries the same style block, so one hash covers them all. */
	{
		struct html_login l = { .action = "/login", .csrf_token = "t" };
		struct html_consent c = { .action = "/c", .csrf_token = "t", .scope = "openid" };
		struct html_logout lo = { .action = "/logout", .issuer = "https://x",
			.csrf_token = "t" };
		char *pages[4], *ph;
		int i;

		pages[0] = html_login_page(&l);
		pages[1] = html_consent_page(&c);
		pages[2] = html_logout_page(&lo);
		pages[3] = html_error_page("a", "b");
		for (i = 0; i < 4; i++) {
			ph = style_hash_of(pages[i]);
			CHECK(ph != NULL && hash != NULL && strcmp(ph, hash) == 0);
			free(ph);
			free(pages[i]);
		}
	}
	free(hash);
	free(page);
}

/* The form_post response page: the one page with a script, and its own headers. */
static void
test_form_post(const char *dir)
{
	const struct html_field f[] = {
		{ "code", "c0de" },
		{ "state", "\"><script>alert(1)</script>" },
		{ NULL, "skipped" },
		{ "iss", "https://idp.example.com" },
	};
	const char *const origins[] = { "https://rp.example.com/cb" };
	const char *err, *csp;
	char want[1024], *p, *h, *sh;
	struct evhttp_request *req;
	struct evkeyvalq *hd;

	p = html_form_post_page("https://rp.example.com/cb?a=1&b=\"2\"", f, 4);
	err = strict_parse(p);
	if (err != NULL)
		fprintf(stderr, "strict_parse: %s\n", err);
	CHECK(err == NULL);
	CHECK(has(p, "<title>Continue to rp.example.com</title>"));
	CHECK(has(p, "<h1>Continue to rp.example.com</h1>\n"
	    "<form method=\"post\" action=\"https://rp.example.com/cb?a&#61;1&amp;b&#61;"
	    "&quot;2&quot;\">\n"
	    "<input type=\"hidden\" name=\"code\" value=\"c0de\">\n"
	    "<input type=\"hidden\" name=\"state\" value=\"&quot;&gt;&lt;script&gt;"
	    "alert(1)&lt;/script&gt;\">\n"
	    "<input type=\"hidden\" name=\"iss\" value=\"https://idp.example.com\">\n"
	    "<button type=\"submit\">Continue</button>\n</form>\n<script>"));
	CHECK(!has(p, "skipped") && count(p, "type=\"hidden\"") == 3);
	CHECK(count(p, "<script") == 1 && count(p, "<form") == 1);
	CHECK(!has(p, "javascript:") && !has(p, "<a ") && !has(p, "src="));
	h = block_hash_of(p, "<script>", "</script>");
	CHECK(h != NULL && strcmp(h, html_script_hash()) == 0);
	sh = style_hash_of(p);
	CHECK(sh != NULL && strcmp(sh, html_style_hash()) == 0);
	save(dir, "form-post.html", p);
	free(p);

	req = evhttp_request_new(NULL, NULL);
	hd = evhttp_request_get_output_headers(req);
	CHECK(html_form_post_headers(req, "https://idp.example.com", origins, 1, NULL) == 0);
	snprintf(want, sizeof(want), "default-src 'none'; form-action 'self' "
	    "https://idp.example.com https://rp.example.com; frame-ancestors 'none'; "
	    "base-uri 'none'; style-src %s; script-src %s", sh ? sh : "?", h ? h : "?");
	CHECK(header_is(hd, "Content-Security-Policy", want));
	CHECK(header_is(hd, "X-Frame-Options", "DENY"));
	CHECK(header_is(hd, "Cache-Control", "no-store"));
	/* The other pages' headers still admit no script. */
	CHECK(html_security_headers(req, "https://idp.example.com", origins, 1, NULL) == 0);
	csp = evhttp_find_header(hd, "Content-Security-Policy");
	CHECK(csp != NULL && !has(csp, "script-src"));
	evhttp_request_free(req);
	free(h);
	free(sh);
}

int
main(int argc, char *argv[])
{
	const char *dir = argc > 1 ? argv[1] : NULL;

	if (sodium_init() == -1)
		return 1;
	test_escape();
	test_login(dir);
	test_consent(dir);
	test_error_and_logout(dir);
	test_headers(dir);
	test_form_post(dir);
	return CHECK_DONE();
}
