/* url.c: the slice of WHATWG URL parsing mockidp needs to rewrite redirect targets the
 * way oauth2-mock-server (Node's URL and URLSearchParams) does. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "form.h"
#include "mockidp.h"
#include "xalloc.h"

static const char *special_schemes[] = { "http", "https", "ws", "wss", "ftp", NULL };
static const char *default_ports[] = { "80", "443", "80", "443", "21", NULL };

/* Append [s, s+n) to b, percent-encoding controls, space, non-ASCII and the bytes
 * in extra. */
static void
url_add_encoded(struct evbuffer *b, const char *s, size_t n, const char *extra)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr(extra, c) != NULL)
			evbuffer_add_printf(b, "%%%02X", c);
		else
			evbuffer_add(b, &s[i], 1);
	}
}

/* Append a special URL's path: '\' is '/', dot segments resolved, empty path "/". */
static void
url_add_path(struct evbuffer *b, const char *p, size_t n)
{
	char *segs = xstrndup(p, n), *out, *s, *next;
	size_t o = 0, i;

	for (i = 0; i < n; i++)
		if (segs[i] == '\\')
			segs[i] = '/';
	out = xmalloc(n + 2);
	s = segs[0] == '/' ? segs + 1 : segs;
	for (; s != NULL; s = next) {
		int last;

		if ((next = strchr(s, '/')) != NULL)
			*next++ = '\0';
		last = next == NULL;
		if (strcmp(s, ".") == 0 || strcasecmp(s, "%2e") == 0) {
			if (last)
				out[o++] = '/';
		} else if (strcmp(s, "..") == 0 || strcasecmp(s, ".%2e") == 0 ||
		    strcasecmp(s, "%2e.") == 0 || strcasecmp(s, "%2e%2e") == 0) {
			while (o > 0 && out[--o] != '/')
				;
			if (last)
				out[o++] = '/';
		} else {
			out[o++] = '/';
			memcpy(out + o, s, strlen(s));
			o += strlen(s);
		}
	}
	if (o == 0)
		out[o++] = '/';
	url_add_encoded(b, out, o, "\"#<>?`{}");
	free(out);
	free(segs);
}

char *
mock_url_set_params(const char *url, const char *const *names,
    const char *const *values, size_t nset)
{
	struct evbuffer *b = NULL;
	struct form q = { NULL, 0 };
	const char *errstr, *rest, *auth, *host, *port, *end, *qs, *frag;
	char *in, *scheme = NULL, *out = NULL;
	size_t i, j, n, len, special = 0, is_special = 0;
	const char *qend;

	/* Strip leading/trailing C0 and space, and every tab and newline. */
	in = xmalloc(strlen(url) + 1);
	while (*url != '\0' && (unsigned char)*url <= 0x20)
		url++;
	for (n = 0; *url != '\0'; url++)
		if (*url != '\t' && *url != '\n' && *url != '\r')
			in[n++] = *url;
	while (n > 0 && (unsigned char)in[n - 1] <= 0x20)
		n--;
	in[n] = '\0';

	if (!isalpha((unsigned char)in[0]))
		goto done;
	for (i = 1; isalnum((unsigned char)in[i]) || in[i] == '+' || in[i] == '-' ||
	    in[i] == '.'; i++)
		;
	if (in[i] != ':')
		goto done;
	scheme = xstrndup(in, i);
	for (j = 0; scheme[j] != '\0'; j++)
		scheme[j] = (char)tolower((unsigned char)scheme[j]);
	for (j = 0; special_schemes[j] != NULL; j++)
		if (strcmp(scheme, special_schemes[j]) == 0) {
			is_special = 1;
			special = j;
		}
	rest = in + i + 1;

	b = evbuffer_new();
	evbuffer_add_printf(b, "%s:", scheme);
	qs = rest + strcspn(rest, "?#");
	if (is_special) {
		while (*rest == '/' || *rest == '\\')
			rest++;
		len = strcspn(rest, "/\\?#");
		if (len == 0)
			goto done;
		auth = rest;
		end = rest + len;
		host = auth;
		for (j = 0; j < len; j++)
			if (auth[j] == '@')
				host = auth + j + 1;
		port = NULL;
		if (*host == '[') {
			const char *rb = memchr(host, ']', (size_t)(end - host));

			if (rb == NULL)
				goto done;
			if (rb + 1 < end) {
				if (rb[1] != ':')
					goto done;
				port = rb + 2;
			}
		} else {
			const char *colon = memchr(host, ':', (size_t)(end - host));

			if (colon != NULL)
				port = colon + 1;
		}
		len = (size_t)((port != NULL ? port - 1 : end) - host);
		if (len == 0)
			goto done;
		for (j = 0; j < len; j++)
			if (strchr(" #%/<>?@\\^|", host[j]) != NULL ||
			    (unsigned char)host[j] < 0x20)
				goto done;
		evbuffer_add(b, "//", 2);
		if (host > auth)
			url_add_encoded(b, auth, (size_t)(host - auth), "\"#<>?`{}/:;=@[\\]^|");
		for (j = 0; j < len; j++) {
			char c = (char)tolower((unsigned char)host[j]);

			evbuffer_add(b, &c, 1);
		}
		if (port != NULL && port < end) {
			unsigned long pn = 0;
			const char *p;
			char pbuf[8];

			for (p = port; p < end; p++) {
				if (!isdigit((unsigned char)*p))
					goto done;
				pn = pn * 10 + (unsigned long)(*p - '0');
				if (pn > 65535)
					goto done;
			}
			snprintf(pbuf, sizeof(pbuf), "%lu", pn);
			if (strcmp(pbuf, default_ports[special]) != 0)
				evbuffer_add_printf(b, ":%s", pbuf);
		}
		qs = end + strcspn(end, "?#");
		url_add_path(b, end, (size_t)(qs - end));
	} else {
		url_add_encoded(b, rest, (size_t)(qs - rest), "");
	}

	qend = qs;
	frag = NULL;
	if (*qs == '?') {
		qend = qs + 1 + strcspn(qs + 1, "#");
		if (form_parse(&q, qs + 1, (size_t)(qend - qs - 1), &errstr) == -1)
			goto done;
	}
	if (*qend == '#')
		frag = qend + 1;

	if (nset == 0) {
		/* Nothing to set: the query stays as written, percent-encoded as the URL
		 * parser does (special schemes also encode the quote). */
		if (*qs == '?') {
			evbuffer_add(b, "?", 1);
			url_add_encoded(b, qs + 1, (size_t)(qend - qs - 1),
			    is_special ? "\"#<>'" : "\"#<>");
		}
		goto fragment;
	}
	/* URLSearchParams.set: replace the first, drop the others, or append. */
	for (i = 0; i < nset; i++) {
		int found = 0;

		for (j = 0; j < q.nparams; ) {
			if (strcmp(q.params[j].name, names[i]) != 0) {
				j++;
				continue;
			}
			if (!found) {
				free(q.params[j].value);
				q.params[j].value = xstrdup(values[i]);
				found = 1;
				j++;
				continue;
			}
			free(q.params[j].name);
			free(q.params[j].value);
			memmove(&q.params[j], &q.params[j + 1],
			    (q.nparams - j - 1) * sizeof(q.params[0]));
			q.nparams--;
		}
		if (!found) {
			q.params = xreallocarray(q.params, q.nparams + 1, sizeof(q.params[0]));
			q.params[q.nparams].name = xstrdup(names[i]);
			q.params[q.nparams].value = xstrdup(values[i]);
			q.nparams++;
		}
	}
	for (j = 0; j < q.nparams; j++) {
		char *en = form_encode(q.params[j].name), *ev = form_encode(q.params[j].value);

		evbuffer_add_printf(b, "%c%s=%s", j == 0 ? '?' : '&', en, ev);
		free(en);
		free(ev);
	}
fragment:
	if (frag != NULL) {
		evbuffer_add(b, "#", 1);
		url_add_encoded(b, frag, strlen(frag), "\"<>`");
	}
	len = evbuffer_get_length(b);
	out = xmalloc(len + 1);
	evbuffer_remove(b, out, len);
	out[len] = '\0';
done:
	form_free(&q);
	if (b != NULL)
		evbuffer_free(b);
	free(scheme);
	free(in);
	return out;
}
