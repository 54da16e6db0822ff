/* server.c: mockidp's HTTP surface: the routes of oauth2-mock-server 9.3.0, answered the
 * way it answers them (see shared/reference/oauth2-mock-server.md), plus /_mockidp/. */
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "form.h"
#include "httputil.h"
#include "log.h"
#include "mockidp.h"
#include "secret.h"
#include "token.h"
#include "xalloc.h"

#define GRANT_JWT_BEARER	"urn:ietf:params:oauth:grant-type:jwt-bearer"
#define DEFAULT_SUB		"johndoe"
#define DEFAULT_SCOPE		"dummy"
#define NBF_SKEW		10

static const char *internal_error_detail = "Most certainly a bug in the library code. "
    "Check the logs for more details and report this to the maintainers.";

/* The endpoint paths; E(p) in discovery is the issuer without a trailing '/' + p. */
#define P_DISCOVERY	"/.well-known/openid-configuration"
#define P_TOKEN		"/token"
#define P_JWKS		"/jwks"
#define P_AUTHORIZE	"/authorize"
#define P_USERINFO	"/userinfo"
#define P_REVOKE	"/revoke"
#define P_ENDSESSION	"/endsession"
#define P_INTROSPECT	"/introspect"
#define P_CONTROL	"/_mockidp"

static void
bad_request(struct evhttp_request *req, const char *detail)
{
	http_reply_problem(req, 400, detail);
}

static void
internal_error(struct evhttp_request *req, const char *why)
{
	log_warnx("Unexpected error: %s", why);
	http_reply_problem(req, 500, internal_error_detail);
}

static char *
endpoint(const struct mock *m, const char *path)
{
	size_t n = strlen(m->issuer);

	if (n > 0 && m->issuer[n - 1] == '/')
		n--;
	return xasprintf("%.*s%s", (int)n, m->issuer, path);
}

static void
h_discovery(struct mock *m, struct evhttp_request *req)
{
	json_t *d = json_object();
	static const struct { const char *field, *path; } eps[] = {
		{ "token_endpoint", P_TOKEN },
		{ "authorization_endpoint", P_AUTHORIZE },
		{ "userinfo_endpoint", P_USERINFO },
		{ NULL, NULL },
		{ "jwks_uri", P_JWKS },
	};
	size_t i;
	char *u;

	json_object_set_new(d, "issuer", json_string(m->issuer));
	for (i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
		if (eps[i].field == NULL) {
			json_object_set_new(d, "token_endpoint_auth_methods_supported",
			    json_pack("[s]", "none"));
			continue;
		}
		u = endpoint(m, eps[i].path);
		json_object_set_new(d, eps[i].field, json_string(u));
		free(u);
	}
	json_object_set_new(d, "response_types_supported", json_pack("[s]", "code"));
	json_object_set_new(d, "grant_types_supported", json_pack("[ssss]",
	    "client_credentials", "authorization_code", "password", GRANT_JWT_BEARER));
	json_object_set_new(d, "token_endpoint_auth_signing_alg_values_supported",
	    json_pack("[s]", "RS256"));
	json_object_set_new(d, "response_modes_supported", json_pack("[s]", "query"));
	json_object_set_new(d, "id_token_signing_alg_values_supported",
	    json_pack("[s]", "RS256"));
	u = endpoint(m, P_REVOKE);
	json_object_set_new(d, "revocation_endpoint", json_string(u));
	free(u);
	json_object_set_new(d, "subject_types_supported", json_pack("[s]", "public"));
	u = endpoint(m, P_ENDSESSION);
	json_object_set_new(d, "end_session_endpoint", json_string(u));
	free(u);
	u = endpoint(m, P_INTROSPECT);
	json_object_set_new(d, "introspection_endpoint", json_string(u));
	free(u);
	json_object_set_new(d, "code_challenge_methods_supported",
	    json_pack("[ss]", "plain", "S256"));
	http_reply_json(req, 200, d);
}

static void
h_jwks(struct mock *m, struct evhttp_request *req)
{
	http_reply_json(req, 200, mock_keys_jwks(&m->keys));
}

/* The query of the request as a JSON object (repeated names become arrays), or NULL
 * (after replying 400) when it cannot be decoded. */
static json_t *
query_json(struct evhttp_request *req)
{
	const char *uri = evhttp_request_get_uri(req), *q, *errstr;
	struct form f;
	json_t *o;
	size_t n;

	if ((q = strchr(uri, '?')) == NULL)
		return json_object();
	q++;
	n = strcspn(q, "#");
	if (form_parse(&f, q, n, &errstr) == -1) {
		bad_request(req, errstr);
		return NULL;
	}
	o = form_to_json(&f);
	form_free(&f);
	return o;
}

/* 1 if params[name] is absent or a string; else reply 400 "<label>" and return 0. */
static int
opt_string(struct evhttp_request *req, json_t *params, const char *name,
    const char *detail)
{
	json_t *v = json_object_get(params, name);

	if (v == NULL || json_is_string(v))
		return 1;
	bad_request(req, detail);
	return 0;
}

static void
pending_trim(struct mock *m)
{
	const char *k;
	void *it;

	/* The table is bounded: the oldest codes go first (insertion order). */
	while (json_object_size(m->pending) > MOCK_MAX_PENDING &&
	    (it = json_object_iter(m->pending)) != NULL) {
		k = json_object_iter_key(it);
		json_object_del(m->pending, k);
	}
}

static void
h_authorize(struct mock *m, struct evhttp_request *req)
{
	static const char *checks[][2] = {
		{ "nonce", "Invalid nonce type" },
		{ "scope", "Invalid scope type" },
		{ "state", "Invalid state type" },
		{ "code_challenge", "Invalid code_challenge type" },
		{ "code_challenge_method", "Invalid code_challenge_method type" },
	};
	const char *names[3], *values[3], *rt, *state, *challenge, *method;
	json_t *q, *nonce;
	char *code = NULL, *loc, *probe;
	size_t i, nset = 0;

	if ((q = query_json(req)) == NULL)
		return;
	if (!json_is_string(json_object_get(q, "redirect_uri"))) {
		bad_request(req, "Invalid redirectUri type");
		goto done;
	}
	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		if (!opt_string(req, q, checks[i][0], checks[i][1]))
			goto done;
	code = secret_uuid_v4();
	probe = mock_url_set_params(json_string_value(json_object_get(q, "redirect_uri")),
	    NULL, NULL, 0);
	if (probe == NULL) {
		internal_error(req, "redirect_uri is not an absolute URL");
		goto done;
	}
	free(probe);
	rt = json_string_value(json_object_get(q, "response_type"));
	if (rt != NULL && strcmp(rt, "code") == 0) {
		json_t *entry = json_object();

		challenge = json_string_value(json_object_get(q, "code_challenge"));
		if (challenge != NULL && *challenge != '\0') {
			method = json_string_value(json_object_get(q,
			    "code_challenge_method"));
			if (method == NULL)
				method = "plain";
			if (strcmp(method, "plain") != 0 && strcmp(method, "S256") != 0) {
				char *d = xasprintf("Unsupported code_challenge method %s. "
				    "The following code_challenge_method are supported: "
				    "plain, S256", method);

				bad_request(req, d);
				free(d);
				json_decref(entry);
				goto done;
			}
			json_object_set_new(entry, "challenge", json_string(challenge));
			json_object_set_new(entry, "method", json_string(method));
		}
		if ((nonce = json_object_get(q, "nonce")) != NULL)
			json_object_set(entry, "nonce", nonce);
		if (json_object_size(entry) > 0) {
			json_object_set_new(m->pending, code, entry);
			pending_trim(m);
		} else
			json_decref(entry);
		names[nset] = "code";
		values[nset++] = code;
	} else {
		names[nset] = "error";
		values[nset++] = "unsupported_response_type";
		names[nset] = "error_description";
		values[nset++] = "The authorization server does not support obtaining an "
		    "access token using this response_type.";
	}
	state = json_string_value(json_object_get(q, "state"));
	if (state != NULL && *state != '\0') {
		names[nset] = "state";
		values[nset++] = state;
	}
	loc = mock_url_set_params(json_string_value(json_object_get(q, "redirect_uri")),
	    names, values, nset);
	http_reply_redirect(req, 302, loc);
	free(loc);
done:
	free(code);
	json_decref(q);
}

static void
h_endsession(struct mock *m, struct evhttp_request *req)
{
	const char *target, *state, *name = "state";
	json_t *q, *v;
	char *loc;

	if ((q = query_json(req)) == NULL)
		return;
	v = json_object_get(q, "post_logout_redirect_uri");
	if (json_is_array(v)) {
		bad_request(req, "Invalid post_logout_redirect_uri type");
		goto done;
	}
	target = json_string_value(v);
	if (target == NULL || *target == '\0') {
		http_reply_raw(req, 200, HTTP_CT_TEXT, "Logout successful", 17);
		goto done;
	}
	if ((loc = mock_url_set_params(target, NULL, NULL, 0)) == NULL) {
		internal_error(req, "post_logout_redirect_uri is not an absolute URL");
		goto done;
	}
	free(loc);
	if (!opt_string(req, q, "state", "Invalid state type"))
		goto done;
	state = json_string_value(json_object_get(q, "state"));
	if (state != NULL && *state == '\0')
		state = NULL;
	loc = mock_url_set_params(target, &name, &state, state != NULL ? 1 : 0);
	http_reply_redirect(req, 302, loc);
	free(loc);
done:
	json_decref(q);
}

static void
h_userinfo(struct mock *m, struct evhttp_request *req)
{
	if (m->custom.userinfo != NULL)
		http_reply_json(req, 200, json_incref(m->custom.userinfo));
	else
		http_reply_json(req, 200, json_pack("{s:s}", "sub", DEFAULT_SUB));
}

static void
h_revoke(struct mock *m, struct evhttp_request *req)
{
	http_reply_empty(req, 200);
}

static void
h_introspect(struct mock *m, struct evhttp_request *req)
{
	http_reply_json(req, 200, json_pack("{s:b}", "active", 1));
}

/* --- /token ------------------------------------------------------------------- */

static int
content_type_has(struct evhttp_request *req, const char *needle)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");

	return ct != NULL && strstr(ct, needle) != NULL;
}

/* The token request body as a JSON value, or NULL after replying 400. Form bodies
 * turn repeated names into arrays; JSON bodies are taken as they are. */
static json_t *
token_body(struct evhttp_request *req)
{
	const char *body, *errstr;
	json_error_t jerr;
	struct form f;
	json_t *v;
	size_t len;

	body = http_body(req, &len);
	/* Content types are matched case-sensitively, as oauth2-mock-server does. */
	if (content_type_has(req, "application/x-www-form-urlencoded")) {
		if (form_parse(&f, body != NULL ? body : "", len, &errstr) == -1) {
			bad_request(req, "Invalid token request body");
			return NULL;
		}
		v = form_to_json(&f);
		form_free(&f);
		return v;
	}
	if (content_type_has(req, "application/json")) {
		if (body == NULL ||
		    (v = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
		    &jerr)) == NULL) {
			bad_request(req, "Malformed JSON payload");
			return NULL;
		}
		if (!json_is_object(v) && !json_is_array(v)) {
			json_decref(v);
			bad_request(req, "Invalid JSON body: expected an object or array");
			return NULL;
		}
		return v;
	}
	return json_null();
}

/* JavaScript's String(v) for the values a body can hold (arrays join with ','). */
static char *
js_string(const json_t *v)
{
	struct evbuffer *b;
	char *s;
	size_t i, n;

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_array(v)) {
		b = evbuffer_new();
		for (i = 0; i < json_array_size(v); i++) {
			const json_t *e = json_array_get(v, i);

			if (i > 0)
				evbuffer_add(b, ",", 1);
			if (!json_is_null(e)) {
				char *es = js_string(e);

				evbuffer_add(b, es, strlen(es));
				free(es);
			}
		}
		n = evbuffer_get_length(b);
		s = xmalloc(n + 1);
		evbuffer_remove(b, s, n);
		s[n] = '\0';
		evbuffer_free(b);
		return s;
	}
	if (json_is_object(v))
		return xstrdup("[object Object]");
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	return s != NULL ? s : xstrdup("");
}

static int
pkce_verifier_ok(const char *v)
{
	size_t n = strlen(v), i;

	if (n < 43 || n > 128)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && strchr("-._~", v[i]) == NULL)
			return 0;
	return 1;
}

/* RFC 7636 check as oauth2-mock-server runs it. 0 if fine, -1 after replying 400. */
static int
token_pkce(struct mock *m, struct evhttp_request *req, json_t *body)
{
	const char *code = json_string_value(json_object_get(body, "code"));
	json_t *entry = code != NULL ? json_object_get(m->pending, code) : NULL;
	char *verifier = NULL, *challenge = NULL, *method = NULL, *computed = NULL;
	int ok = -1;

	if (entry == NULL || json_object_get(entry, "challenge") == NULL) {
		bad_request(req, "code_challenge required");
		return -1;
	}
	challenge = xstrdup(json_string_value(json_object_get(entry, "challenge")));
	method = xstrdup(json_string_value(json_object_get(entry, "method")));
	/* The challenge is used up by the first attempt, whatever its outcome. */
	json_object_del(entry, "challenge");
	json_object_del(entry, "method");
	if (json_object_size(entry) == 0)
		json_object_del(m->pending, code);
	verifier = js_string(json_object_get(body, "code_verifier"));
	if (!pkce_verifier_ok(verifier)) {
		bad_request(req, "Invalid 'code_verifier'. The verifier does not conform "
		    "with the RFC7636 spec. Ref: "
		    "https://datatracker.ietf.org/doc/html/rfc7636#section-4.1");
		goto done;
	}
	if (strcmp(method, "S256") == 0) {
		unsigned char md[32];
		size_t mdlen = 0;

		EVP_Q_digest(NULL, "SHA256", NULL, verifier, strlen(verifier), md, &mdlen);
		computed = b64url_encode(md, mdlen);
	} else
		computed = xstrdup(verifier);
	if (!secret_str_equal(computed, challenge)) {
		bad_request(req, "code_verifier provided does not match code_challenge");
		goto done;
	}
	ok = 0;
done:
	free(computed);
	free(verifier);
	free(challenge);
	free(method);
	return ok;
}

/* The client id the id_token's aud is set to: the Basic user name, else the body's
 * client_id as it is; NULL when neither is there. Returns a new reference. */
static json_t *
token_client_id(struct evhttp_request *req, json_t *body)
{
	const char *authz = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	char *user, *pass;
	json_t *id;

	if (http_basic_credentials(authz, &user, &pass) == 1) {
		id = json_string(user);
		free(user);
		sodium_memzero(pass, strlen(pass));
		free(pass);
		if (id != NULL)
			return id;
	}
	if ((id = json_object_get(body, "client_id")) != NULL)
		return json_incref(id);
	return NULL;
}

/* The payload of a jwt-bearer assertion; NULL after replying 400. */
static json_t *
token_assertion(struct evhttp_request *req, const char *assertion)
{
	const char *p1, *p2;
	unsigned char *dec;
	json_error_t jerr;
	json_t *payload;
	size_t n;

	if ((p1 = strchr(assertion, '.')) == NULL) {
		bad_request(req, "Invalid 'assertion' format: expected at least "
		    "header.payload");
		return NULL;
	}
	p1++;
	p2 = strchr(p1, '.');
	n = p2 != NULL ? (size_t)(p2 - p1) : strlen(p1);
	dec = b64url_decode_lenient(p1, n, &n);
	payload = dec != NULL ? json_loadb((char *)dec, n, JSON_DECODE_ANY, &jerr) : NULL;
	free(dec);
	if (payload == NULL) {
		bad_request(req, "Invalid 'assertion' payload: malformed JSON");
		return NULL;
	}
	if (!json_is_object(payload)) {
		json_decref(payload);
		bad_request(req, "Invalid 'assertion' payload: expected an object");
		return NULL;
	}
	if (!json_is_string(json_object_get(payload, "sub"))) {
		json_decref(payload);
		bad_request(req, "Invalid 'assertion' payload: 'sub' claim is expected "
		    "to be a string");
		return NULL;
	}
	return payload;
}

/* The 200 token response: {"access_token", "token_type", "expires_in"}, then "scope",
 * then for grants with an id token "refresh_token" and "id_token" (id_jws not NULL). */
static void
token_reply(struct evhttp_request *req, const char *at_jws, const char *id_jws,
    json_t *scope, int default_scope, long long ttl)
{
	json_t *resp;
	char *refresh;

	resp = token_response(at_jws, ttl);
	if (scope != NULL || default_scope)
		json_object_set_new(resp, "scope", scope != NULL ? json_incref(scope) :
		    json_string(DEFAULT_SCOPE));
	if (id_jws != NULL) {
		refresh = secret_uuid_v4();
		json_object_set_new(resp, "refresh_token", json_string(refresh));
		json_object_set_new(resp, "id_token", json_string(id_jws));
		free(refresh);
	}
	http_reply_json(req, 200, resp);
}

/*
 * A /token response waiting for the pool to sign its tokens. Between h_token and
 * token_signed nothing touches req: libevent 2.1 stops reading the connection once the
 * request is in, and should the connection fail anyway, it detaches the request
 * (evcon NULL) instead of freeing it, and evhttp_send_reply then just frees it.
 */
struct token_job {
	struct signjob		 sj;
	struct evhttp_request	*req;
	json_t			*scope;		/* the response's "scope", or NULL */
	int			 default_scope;
	long long		 ttl;		/* as it was when the claims were built */
};

static void
token_job_free(struct token_job *tj)
{
	signpool_job_clear(&tj->sj);
	json_decref(tj->scope);
	free(tj);
}

/* signjob callback, on the loop: reply as h_token would have, or drop the request at
 * shutdown (a detached one is ours to free; evhttp_free frees the others). */
static void
token_signed(struct signjob *sj, void *arg)
{
	struct token_job *tj = arg;

	if (sj->cancelled) {
		if (evhttp_request_get_connection(tj->req) == NULL)
			evhttp_request_free(tj->req);
	} else if (sj->errstr != NULL)
		internal_error(tj->req, sj->errstr);
	else
		token_reply(tj->req, sj->tok[0].jws, sj->ntok > 1 ? sj->tok[1].jws : NULL,
		    tj->scope, tj->default_scope, tj->ttl);
	token_job_free(tj);
}

/* 1 if this response's tokens go to the pool: it is running and has room. */
static int
token_pooled(struct mock *m)
{
	return m->pool != NULL && !signpool_full(m->pool) && m->keys.n > 0;
}

/* Add one token to a job: the header for key k and a private copy of the claims. */
static void
token_job_add(struct signjob *sj, const struct mock_key *k, const json_t *claims)
{
	sj->tok[sj->ntok].pkey = k->pkey;
	sj->tok[sj->ntok].alg = k->alg;
	sj->tok[sj->ntok].header = token_header("JWT", k->kid, k->alg_name);
	sj->tok[sj->ntok].payload = json_deep_copy(claims);
	if (sj->tok[sj->ntok].payload == NULL)
		fatalx("out of memory");
	sj->ntok++;
}

static void
h_token(struct mock *m, struct evhttp_request *req)
{
	json_t *body, *at = NULL, *idt = NULL, *v, *assertion = NULL;
	json_t *scope, *client_id = NULL, *entry;
	const char *grant, *errstr = NULL;
	char *at_jws = NULL, *id_jws = NULL;
	struct mock_key *at_key = NULL, *id_key = NULL;
	struct token_job *tj;
	long long now = (long long)time(NULL);
	int with_id = 0, default_scope = 0, pooled;
	size_t i;

	if ((body = token_body(req)) == NULL)
		return;
	if (!json_is_object(body)) {
		bad_request(req, "Invalid token request body");
		goto done;
	}
	if (!json_is_string(json_object_get(body, "grant_type"))) {
		bad_request(req, "Invalid 'grant_type' type");
		goto done;
	}
	if (!opt_string(req, body, "scope", "Invalid 'scope' type") ||
	    !opt_string(req, body, "code", "Invalid 'code' type"))
		goto done;
	if ((v = json_object_get(body, "aud")) != NULL && !json_is_string(v)) {
		int ok = json_is_array(v);

		for (i = 0; ok && i < json_array_size(v); i++)
			ok = json_is_string(json_array_get(v, i));
		if (!ok) {
			bad_request(req, "Invalid 'aud' type");
			goto done;
		}
	}
	if (!opt_string(req, body, "assertion", "Invalid 'assertion' type"))
		goto done;
	http_set_no_store(req);
	if (json_object_get(body, "code") != NULL &&
	    json_object_get(body, "code_verifier") != NULL &&
	    token_pkce(m, req, body) == -1)
		goto done;

	grant = json_string_value(json_object_get(body, "grant_type"));
	scope = json_object_get(body, "scope");
	at = token_claims(m->issuer, now, m->ttl, NBF_SKEW);
	if (strcmp(grant, "client_credentials") == 0) {
		if (scope != NULL)
			json_object_set(at, "scope", scope);
		if ((v = json_object_get(body, "aud")) != NULL)
			json_object_set(at, "aud", v);
	} else if (strcmp(grant, "password") == 0) {
		if ((v = json_object_get(body, "username")) != NULL)
			json_object_set(at, "sub", v);
		json_object_set_new(at, "amr", json_pack("[s]", "pwd"));
		if (scope != NULL)
			json_object_set(at, "scope", scope);
		with_id = 1;
	} else if (strcmp(grant, "authorization_code") == 0 ||
	    strcmp(grant, "refresh_token") == 0) {
		json_object_set_new(at, "sub", json_string(DEFAULT_SUB));
		json_object_set_new(at, "amr", json_pack("[s]", "pwd"));
		default_scope = scope == NULL;
		json_object_set_new(at, "scope", scope != NULL ? json_incref(scope) :
		    json_string(DEFAULT_SCOPE));
		with_id = 1;
	} else if (strcmp(grant, GRANT_JWT_BEARER) == 0) {
		v = json_object_get(body, "assertion");
		if (v == NULL) {
			bad_request(req, "Invalid 'assertion' type");
			goto done;
		}
		if ((assertion = token_assertion(req, json_string_value(v))) == NULL)
			goto done;
		json_object_set(at, "sub", json_object_get(assertion, "sub"));
		json_object_set(at, "client_id", json_object_get(assertion, "sub"));
		if (scope != NULL)
			json_object_set(at, "scope", scope);
	} else {
		bad_request(req, "Invalid grant type");
		goto done;
	}
	token_claims_merge(at, m->custom.at_claims);
	token_claims_merge(at, m->custom.at_once);
	/* Keys are taken and claims built here, in this order, whoever signs. */
	if ((pooled = token_pooled(m)))
		at_key = mock_keys_next(&m->keys);
	else if ((at_jws = mock_sign(&m->keys, "JWT", at, &errstr)) == NULL) {
		internal_error(req, errstr);
		goto done;
	}
	if (with_id) {
		idt = token_claims(m->issuer, now, m->ttl, NBF_SKEW);
		json_object_set_new(idt, "sub", json_string(DEFAULT_SUB));
		if ((client_id = token_client_id(req, body)) != NULL)
			json_object_set(idt, "aud", client_id);
		v = json_object_get(body, "code");
		entry = v != NULL ? json_object_get(m->pending, json_string_value(v)) : NULL;
		if (entry != NULL && json_object_get(entry, "nonce") != NULL) {
			json_object_set(idt, "nonce", json_object_get(entry, "nonce"));
			json_object_del(entry, "nonce");
			if (json_object_size(entry) == 0)
				json_object_del(m->pending, json_string_value(v));
		}
		token_claims_merge(idt, m->custom.id_claims);
		token_claims_merge(idt, m->custom.id_once);
		if (pooled)
			id_key = mock_keys_next(&m->keys);
		else if ((id_jws = mock_sign(&m->keys, "JWT", idt, &errstr)) == NULL) {
			internal_error(req, errstr);
			goto done;
		}
	}
	/* One-shot claims are spent by the response that carried them. */
	json_decref(m->custom.at_once);
	json_decref(m->custom.id_once);
	m->custom.at_once = m->custom.id_once = NULL;
	if (!pooled) {
		token_reply(req, at_jws, id_jws, scope, default_scope, m->ttl);
		goto done;
	}
	tj = xcalloc(1, sizeof(*tj));
	tj->req = req;
	tj->scope = scope != NULL ? json_incref(scope) : NULL;
	tj->default_scope = default_scope;
	tj->ttl = m->ttl;
	token_job_add(&tj->sj, at_key, at);
	if (with_id)
		token_job_add(&tj->sj, id_key, idt);
	tj->sj.done = token_signed;
	tj->sj.arg = tj;
	signpool_submit(m->pool, &tj->sj);
done:
	json_decref(body);
	json_decref(at);
	json_decref(idt);
	json_decref(assertion);
	json_decref(client_id);
	free(at_jws);
	free(id_jws);
}

/* --- routing ------------------------------------------------------------------ */

static const struct route {
	const char	*path;
	enum evhttp_cmd_type method;
	void		(*handler)(struct mock *, struct evhttp_request *);
} routes[] = {
	{ P_DISCOVERY,	EVHTTP_REQ_GET,		h_discovery },
	{ P_JWKS,	EVHTTP_REQ_GET,		h_jwks },
	{ P_TOKEN,	EVHTTP_REQ_POST,	h_token },
	{ P_AUTHORIZE,	EVHTTP_REQ_GET,		h_authorize },
	{ P_USERINFO,	EVHTTP_REQ_GET,		h_userinfo },
	{ P_REVOKE,	EVHTTP_REQ_POST,	h_revoke },
	{ P_INTROSPECT,	EVHTTP_REQ_POST,	h_introspect },
	{ P_ENDSESSION,	EVHTTP_REQ_GET,		h_endsession },
};

static const char *
method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "?";
}

static void
mock_dispatch(struct evhttp_request *req, void *arg)
{
	struct mock *m = arg;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *errstr, *uri, *conn;
	char *path;
	size_t i;

	http_set_cors_any(req);
	/* Node announces its keep-alive on every HTTP/1.1 response. */
	conn = evhttp_find_header(evhttp_request_get_input_headers(req), "Connection");
	if (conn == NULL || strcasecmp(conn, "close") != 0) {
		/* libevent 2.1 has no getter for the version: http_struct.h has it. */
		if (req->major == 1 && req->minor == 1) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Connection", "keep-alive");
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Keep-Alive", "timeout=5");
		}
	}
	if (http_check_framing(req, &errstr) == -1) {
		log_warnx("rejected request: %s", errstr);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		bad_request(req, errstr);
		return;
	}
	if (method == EVHTTP_REQ_OPTIONS) {
		http_reply_empty(req, 204);
		return;
	}
	uri = evhttp_request_get_uri(req);
	/* "//host/path" is a network-path reference: a URL parser takes "host" as the
	 * authority, and so does the npm server's router. */
	if (uri[0] == '/' && uri[1] == '/')
		uri = strchr(uri + 2, '/') != NULL ? strchr(uri + 2, '/') : "/";
	path = http_path_normalize(uri);
	if (!m->quiet)
		log_debug("%s %s", method_name(method), path);
	if (strcmp(path, P_CONTROL) == 0 ||
	    strncmp(path, P_CONTROL "/", sizeof(P_CONTROL)) == 0) {
		mock_control(m, req, path);
		free(path);
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) != 0 || method != routes[i].method)
			continue;
		if (!mock_custom_fail(m, req, routes[i].path))
			routes[i].handler(m, req);
		free(path);
		return;
	}
	free(path);
	http_reply_empty(req, 404);
}

void
mock_server_routes(struct mock *m)
{
	evhttp_set_gencb(m->http, mock_dispatch, m);
}
