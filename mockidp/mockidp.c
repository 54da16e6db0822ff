/* mockidp.c: the mockidp program: command line (the flags of oauth2-mock-server and
 * ours), key set-up, the listening socket, the signing pool and the event loop; and
 * `mockidp token`. */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "jwk.h"
#include "jws.h"
#include "log.h"
#include "mockidp.h"
#include "secret.h"
#include "token.h"
#include "xalloc.h"

static const char usage_text[] =
"usage: mockidp [-h] [-a ADDRESS] [-p PORT] [-c CERT -k KEY] [--jwk FILE]...\n"
"               [--save-jwk] [--issuer-url-trailing-slash] [--issuer URL]\n"
"               [--ttl SECONDS] [--alg ALG] [--config FILE] [-q]\n"
"       mockidp token [--jwk FILE] [--alg ALG] [--issuer URL] [--ttl SECONDS]\n"
"               [--claim NAME=VALUE]... [--save-jwk]\n"
"\n"
"A drop-in replacement for the npm oauth2-mock-server: the same routes, flags and\n"
"tokens, in one small binary. Nothing is authenticated: it is a test fixture.\n"
"\n"
"Options (those of oauth2-mock-server first):\n"
"  -h, --help                  print this help and exit\n"
"  -a ADDRESS                  address to listen on (default: all interfaces)\n"
"  -p PORT                     port to listen on (default 8080; 0 = any free port)\n"
"  -c CERT, -k KEY             serve HTTPS with this PEM certificate and key\n"
"  --jwk FILE                  sign with the private JWK in FILE (repeatable; the\n"
"                              keys sign in turn); without it an RS256 key (2048\n"
"                              bits) is generated at start\n"
"  --save-jwk                  write every key, private members included, to\n"
"                              <kid>.json in the current directory\n"
"  --issuer-url-trailing-slash end the issuer URL with '/'\n"
"  --issuer URL                use URL as the issuer (default http(s)://localhost:PORT,\n"
"                              or the -a address when it is not loopback/wildcard)\n"
"  --ttl SECONDS               token lifetime (default 3600)\n"
"  --alg ALG                   algorithm of the generated key: RS256 (default), RS384,\n"
"                              RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA\n"
"  --config FILE               JSON settings applied at start, in the form of the\n"
"                              control API: {\"issuer\", \"ttl\", \"claims\": {\"access_token\":\n"
"                              {...}, \"id_token\": {...}, \"once\": false}, \"userinfo\":\n"
"                              {...}, \"failures\": [{\"route\", \"status\", \"body\",\n"
"                              \"count\"}]}; the command line wins over the file\n"
"  -q, --quiet                 print only errors\n"
"\n"
"Routes: GET /.well-known/openid-configuration, GET /jwks, POST /token, GET /authorize,\n"
"GET /userinfo, POST /revoke, POST /introspect, GET /endsession; OPTIONS anywhere.\n"
"\n"
"Control API (JSON over HTTP on the same port):\n"
"  GET    /_mockidp                   the current settings\n"
"  POST   /_mockidp/claims            {\"access_token\": {...}, \"id_token\": {...},\n"
"                                     \"once\": true} claims added to (or, with null,\n"
"                                     removed from) tokens: the next response only\n"
"                                     with once, else until reset\n"
"  DELETE /_mockidp/claims            stop adding claims\n"
"  PUT    /_mockidp/userinfo          {...} the body /userinfo returns\n"
"  DELETE /_mockidp/userinfo          back to {\"sub\":\"johndoe\"}\n"
"  POST   /_mockidp/fail              {\"route\": \"/token\", \"status\": 503, \"body\": ...,\n"
"                                     \"count\": 1} the next count responses of route\n"
"  DELETE /_mockidp/fail              disarm every failure\n"
"  POST   /_mockidp/config            apply settings as in --config\n"
"  POST   /_mockidp/reset             back to the start-up settings\n"
"\n"
"mockidp token prints a signed token (claims iss, iat, exp, nbf, then each --claim;\n"
"VALUE is taken as JSON when it parses as JSON, else as a string; null removes a\n"
"claim) and exits. Without --jwk it signs with a new key: add --save-jwk to keep it.\n";

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mockidp: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'mockidp --help'.\n");
	exit(1);
}

/* JavaScript parseInt(s, 10) for ports: leading space, sign, digits; rest ignored. */
static int
parse_port(const char *s, int *port)
{
	long v = 0;
	int neg = 0, digits = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	for (; isdigit((unsigned char)*s) && v <= 65536; s++, digits++)
		v = v * 10 + (*s - '0');
	if (digits == 0 || (neg && v != 0) || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

static int
parse_seconds(const char *s, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 10LL * 365 * 86400)
		return -1;
	*out = v;
	return 0;
}

static enum jws_alg
parse_alg(const char *s)
{
	enum jws_alg a = jws_alg_from_name(s);

	if (a == JWS_ALG_UNKNOWN)
		usage_error("unsupported --alg '%s' (RS256, RS384, RS512, PS256, PS384, "
		    "PS512, ES256, ES384, ES512, EdDSA)", s);
	return a;
}

/* Write k to <kid>.json and say so on out (stderr for `token`, whose stdout is the token). */
static void
save_jwk(const struct mock_key *k, FILE *out)
{
	char *path = xasprintf("%s.json", k->kid);

	if (strchr(k->kid, '/') != NULL || k->kid[0] == '.' ||
	    json_dump_file(k->jwk, path, JSON_INDENT(2)) == -1)
		fatalx("cannot write the key to \"%s\"", path);
	fprintf(out, "JSON web key written to file \"%s\".\n", path);
	free(path);
}

static struct mock_key *
load_key_or_exit(const char *path)
{
	struct mock_key *k;
	char err[256];

	if ((k = mock_key_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mockidp: %s: %s\n", path, err);
		exit(1);
	}
	return k;
}

static struct mock_key *
generate_key_or_exit(enum jws_alg alg)
{
	struct mock_key *k;
	char err[256];

	if ((k = mock_key_generate(alg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mockidp: %s\n", err);
		exit(1);
	}
	return k;
}

/* `mockidp token ...`: print one signed token and exit. */
static int
cmd_token(int argc, char **argv)
{
	struct mock_keys keys = { NULL, 0 };
	const char *issuer = "http://localhost:8080", *errstr = NULL;
	enum jws_alg alg = JWS_ALG_RS256;
	long long ttl = MOCK_DEFAULT_TTL;
	json_t *claims, *extra = json_object(), *v;
	int i, save = 0;
	char *jws, *name;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			exit(0);
		} else if (strcmp(a, "--save-jwk") == 0) {
			save = 1;
			continue;
		}
		if (strcmp(a, "--jwk") != 0 && strcmp(a, "--alg") != 0 &&
		    strcmp(a, "--issuer") != 0 && strcmp(a, "--ttl") != 0 &&
		    strcmp(a, "--claim") != 0)
			usage_error("unknown option '%s' for 'token'", a);
		if (val == NULL)
			usage_error("option '%s' needs a value", a);
		i++;
		if (strcmp(a, "--jwk") == 0)
			mock_keys_add(&keys, load_key_or_exit(val));
		else if (strcmp(a, "--alg") == 0)
			alg = parse_alg(val);
		else if (strcmp(a, "--issuer") == 0)
			issuer = val;
		else if (strcmp(a, "--ttl") == 0) {
			if (parse_seconds(val, &ttl) == -1)
				usage_error("invalid --ttl '%s' (seconds, 1 to 315360000)", val);
		} else {
			const char *eq = strchr(val, '=');
			json_error_t jerr;

			if (eq == NULL || eq == val)
				usage_error("--claim needs NAME=VALUE, not '%s'", val);
			name = xstrndup(val, (size_t)(eq - val));
			v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
			if (v == NULL)
				v = json_string(eq + 1);
			if (v == NULL)
				usage_error("--claim value is not UTF-8: '%s'", val);
			json_object_set_new(extra, name, v);
			free(name);
		}
	}
	if (keys.n == 0) {
		mock_keys_add(&keys, generate_key_or_exit(alg));
		if (!save)
			fprintf(stderr, "mockidp: signed with a new key (kid \"%s\") that "
			    "nothing else knows; use --jwk FILE or --save-jwk\n",
			    keys.v[0]->kid);
	}
	if (save)
		save_jwk(keys.v[0], stderr);
	claims = token_claims(issuer, (long long)time(NULL), ttl, 10);
	token_claims_merge(claims, extra);
	if ((jws = mock_sign(&keys, "JWT", claims, &errstr)) == NULL)
		fatalx("cannot sign: %s", errstr);
	printf("%s\n", jws);
	free(jws);
	json_decref(claims);
	json_decref(extra);
	mock_keys_clear(&keys);
	return 0;
}

static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	SSL_CTX *ctx = arg;

	return bufferevent_openssl_socket_new(base, -1, SSL_new(ctx),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *
tls_setup(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	unsigned long e;

	if (ctx == NULL)
		fatalx("cannot create a TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		e = ERR_get_error();
		fprintf(stderr, "mockidp: %s: cannot load the certificate: %s\n", cert,
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown");
		exit(1);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		e = ERR_get_error();
		fprintf(stderr, "mockidp: %s: cannot load the private key: %s\n", key,
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown");
		exit(1);
	}
	return ctx;
}

/* 1 if addr is a wildcard or loopback address (the issuer then names localhost). */
static int
addr_is_local(const char *addr)
{
	return addr == NULL || strcmp(addr, "0.0.0.0") == 0 ||
	    strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::") == 0 ||
	    strcmp(addr, "::1") == 0;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct mock *m = arg;

	if (sig == SIGINT && !m->quiet) {
		printf("OAuth 2 server is stopping...\n");
		printf("OAuth 2 server has been stopped.\n");
		fflush(stdout);
	}
	event_base_loopexit(m->base, NULL);
}

static json_t *
load_config(const char *path)
{
	json_error_t jerr;
	json_t *cfg;

	if ((cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		if (jerr.line <= 0)
			fprintf(stderr, "mockidp: %s: cannot read the file\n", path);
		else
			fprintf(stderr, "mockidp: %s:%d:%d: %s\n", path, jerr.line,
			    jerr.column, jerr.text);
		exit(1);
	}
	return cfg;
}

int
main(int argc, char **argv)
{
	struct mock m;
	struct evhttp_bound_socket *bound = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct event *sigint, *sigterm;
	const char *addr = NULL, *cert = NULL, *keyfile = NULL, *issuer = NULL;
	const char **jwks = NULL, *config_path = NULL;
	char host[NI_MAXHOST], err[256];
	enum jws_alg alg = JWS_ALG_RS256;
	long long ttl = 0;
	int i, port = MOCK_DEFAULT_PORT, save = 0, slash = 0, bound_port, quiet = 0;
	size_t njwks = 0, k;

	secret_init();
	log_init("mockidp", LOG_LVL_INFO);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "token") == 0)
		return cmd_token(argc - 1, argv + 1);

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (strcmp(a, "--save-jwk") == 0) {
			save = 1;
			continue;
		}
		if (strcmp(a, "--issuer-url-trailing-slash") == 0) {
			slash = 1;
			continue;
		}
		if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			quiet = 1;
			continue;
		}
		if (strcmp(a, "-a") != 0 && strcmp(a, "-p") != 0 && strcmp(a, "-c") != 0 &&
		    strcmp(a, "-k") != 0 && strcmp(a, "--jwk") != 0 &&
		    strcmp(a, "--issuer") != 0 && strcmp(a, "--ttl") != 0 &&
		    strcmp(a, "--alg") != 0 && strcmp(a, "--config") != 0)
			usage_error("Unrecognized option '%s'.", a);
		if (val == NULL)
			usage_error("option '%s' needs a value", a);
		i++;
		if (strcmp(a, "-a") == 0)
			addr = val;
		else if (strcmp(a, "-p") == 0) {
			if (parse_port(val, &port) == -1)
				usage_error("Invalid port number.%s", "");
		} else if (strcmp(a, "-c") == 0)
			cert = val;
		else if (strcmp(a, "-k") == 0)
			keyfile = val;
		else if (strcmp(a, "--jwk") == 0) {
			jwks = xreallocarray(jwks, njwks + 1, sizeof(*jwks));
			jwks[njwks++] = val;
		} else if (strcmp(a, "--issuer") == 0) {
			if (*val == '\0')
				usage_error("--issuer needs a URL%s", "");
			issuer = val;
		} else if (strcmp(a, "--ttl") == 0) {
			if (parse_seconds(val, &ttl) == -1)
				usage_error("invalid --ttl '%s' (seconds, 1 to 315360000)", val);
		} else if (strcmp(a, "--alg") == 0)
			alg = parse_alg(val);
		else
			config_path = val;
	}
	if ((cert == NULL) != (keyfile == NULL))
		usage_error("%s", "Both key and cert need to be supplied to start the "
		    "server with https");

	memset(&m, 0, sizeof(m));
	m.quiet = quiet;
	log_init("mockidp", quiet ? LOG_LVL_ERROR : LOG_LVL_INFO);
	m.ttl = MOCK_DEFAULT_TTL;
	m.pending = json_object();
	mock_custom_reset(&m.custom);
	if (cert != NULL)
		m.ssl = tls_setup(cert, keyfile);
	if (config_path != NULL) {
		m.start_config = load_config(config_path);
		if (mock_custom_apply(&m, m.start_config, err, sizeof(err)) == -1) {
			fprintf(stderr, "mockidp: %s: %s\n", config_path, err);
			return 1;
		}
	}
	for (k = 0; k < njwks; k++) {
		struct mock_key *key = load_key_or_exit(jwks[k]);

		if (!quiet)
			printf("Added key with kid \"%s\"\n", key->kid);
		mock_keys_add(&m.keys, key);
	}
	free(jwks);
	if (m.keys.n == 0) {
		struct mock_key *key = generate_key_or_exit(alg);

		if (!quiet)
			printf("Generated new %s key with kid \"%s\"\n",
			    alg <= JWS_ALG_PS512 ? "RSA" : alg == JWS_ALG_EDDSA ? "OKP" : "EC",
			    key->kid);
		mock_keys_add(&m.keys, key);
	}
	if (save)
		for (k = 0; k < m.keys.n; k++)
			save_jwk(m.keys.v[k], stdout);

	signal(SIGPIPE, SIG_IGN);
	if ((m.base = event_base_new()) == NULL || (m.http = evhttp_new(m.base)) == NULL)
		fatalx("cannot set up the event loop");
	log_libevent();
	evhttp_set_allowed_methods(m.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(m.http, MOCK_MAX_BODY);
	evhttp_set_max_headers_size(m.http, MOCK_MAX_HEADERS);
	evhttp_set_timeout(m.http, 5);	/* the Keep-Alive: timeout=5 we announce */
	evhttp_set_default_content_type(m.http, NULL);
	if (m.ssl != NULL)
		evhttp_set_bevcb(m.http, tls_bev, m.ssl);
	mock_server_routes(&m);

	if (addr != NULL)
		bound = evhttp_bind_socket_with_handle(m.http, addr, (ev_uint16_t)port);
	else if ((bound = evhttp_bind_socket_with_handle(m.http, "::",
	    (ev_uint16_t)port)) == NULL)
		bound = evhttp_bind_socket_with_handle(m.http, "0.0.0.0", (ev_uint16_t)port);
	if (bound == NULL) {
		fprintf(stderr, "mockidp: cannot listen on %s port %d: %s\n",
		    addr != NULL ? addr : "all interfaces", port, strerror(errno));
		return 1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss,
	    &sslen) == -1 || getnameinfo((struct sockaddr *)&ss, sslen, host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		fatal("getsockname");
	bound_port = ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);

	/* The issuer: --issuer, else --config's, else derived as oauth2-mock-server does. */
	if (issuer != NULL) {
		free(m.issuer);
		m.issuer = xstrdup(issuer);
	} else if (m.issuer == NULL) {
		const char *scheme = m.ssl != NULL ? "https" : "http";
		int dflt = bound_port == (m.ssl != NULL ? 443 : 80);
		char portpart[8] = "";

		if (!dflt)
			snprintf(portpart, sizeof(portpart), ":%d", bound_port);
		if (addr_is_local(addr))
			m.issuer = xasprintf("%s://localhost%s%s", scheme, portpart,
			    slash ? "/" : "");
		else
			m.issuer = xasprintf("%s://%s%s%s%s%s", scheme,
			    strchr(addr, ':') != NULL ? "[" : "", addr,
			    strchr(addr, ':') != NULL ? "]" : "", portpart, slash ? "/" : "");
	}
	if (ttl != 0)
		m.ttl = ttl;
	m.start_issuer = xstrdup(m.issuer);
	m.start_ttl = m.ttl;

	sigint = evsignal_new(m.base, SIGINT, on_signal, &m);
	sigterm = evsignal_new(m.base, SIGTERM, on_signal, &m);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	if (!quiet) {
		/* "http://" even for TLS: oauth2-mock-server prints it so and
		 * scripts match the line. */
		printf("OAuth 2 server listening on http://%s%s%s:%d\n",
		    strchr(host, ':') != NULL ? "[" : "", host,
		    strchr(host, ':') != NULL ? "]" : "", bound_port);
		printf("OAuth 2 issuer is %s\n", m.issuer);
	}
	m.pool = signpool_new(m.base);
	event_base_dispatch(m.base);

	/* First the pool: its unfinished jobs still name requests evhttp_free frees. */
	signpool_free(m.pool);
	event_free(sigint);
	event_free(sigterm);
	evhttp_free(m.http);
	event_base_free(m.base);
	if (m.ssl != NULL)
		SSL_CTX_free(m.ssl);
	mock_keys_clear(&m.keys);
	mock_custom_reset(&m.custom);
	json_decref(m.custom.failures);
	json_decref(m.pending);
	json_decref(m.start_config);
	free(m.issuer);
	free(m.start_issuer);
	return 0;
}
