/* control.c: the control API under /_mockidp/ and the --config file: what a test changes
 * about mockidp at run time (claims, the /userinfo body, forced failures), from any
 * language, with plain HTTP and JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httputil.h"
#include "log.h"
#include "mockidp.h"
#include "xalloc.h"

/* The routes a failure can be armed for. */
static const char *fail_routes[] = {
	"/.well-known/openid-configuration", "/jwks", "/token", "/authorize",
	"/userinfo", "/revoke", "/introspect", "/endsession", NULL,
};

void
mock_custom_reset(struct mock_custom *c)
{
	json_decref(c->at_claims);
	json_decref(c->id_claims);
	json_decref(c->at_once);
	json_decref(c->id_once);
	json_decref(c->userinfo);
	json_decref(c->failures);
	memset(c, 0, sizeof(*c));
	c->failures = json_object();
}

/* Validate and store {"access_token": {...}, "id_token": {...}, "once": bool}. */
static int
custom_claims(struct mock_custom *c, const json_t *v, char *err, size_t errlen)
{
	const json_t *at, *idt, *once;
	const char *k;
	json_t *x;

	if (!json_is_object(v)) {
		snprintf(err, errlen, "\"claims\" must be an object");
		return -1;
	}
	json_object_foreach((json_t *)v, k, x) {
		if (strcmp(k, "access_token") != 0 && strcmp(k, "id_token") != 0 &&
		    strcmp(k, "once") != 0) {
			snprintf(err, errlen, "unknown member \"%s\" in claims "
			    "(access_token, id_token, once)", k);
			return -1;
		}
	}
	at = json_object_get(v, "access_token");
	idt = json_object_get(v, "id_token");
	once = json_object_get(v, "once");
	if ((at != NULL && !json_is_object(at)) || (idt != NULL && !json_is_object(idt))) {
		snprintf(err, errlen, "\"access_token\" and \"id_token\" must be objects "
		    "of claims");
		return -1;
	}
	if (once != NULL && !json_is_boolean(once)) {
		snprintf(err, errlen, "\"once\" must be true or false");
		return -1;
	}
	if (json_is_true(once)) {
		json_decref(c->at_once);
		json_decref(c->id_once);
		c->at_once = at != NULL ? json_deep_copy(at) : NULL;
		c->id_once = idt != NULL ? json_deep_copy(idt) : NULL;
	} else {
		json_decref(c->at_claims);
		json_decref(c->id_claims);
		c->at_claims = at != NULL ? json_deep_copy(at) : NULL;
		c->id_claims = idt != NULL ? json_deep_copy(idt) : NULL;
	}
	return 0;
}

/* Validate and arm {"route", "status", "body", "count"}. */
static int
custom_failure(struct mock_custom *c, const json_t *v, char *err, size_t errlen)
{
	const json_t *route, *status, *count, *body;
	const char *k;
	json_t *x, *f;
	size_t i;

	if (!json_is_object(v)) {
		snprintf(err, errlen, "a failure must be an object");
		return -1;
	}
	json_object_foreach((json_t *)v, k, x) {
		if (strcmp(k, "route") != 0 && strcmp(k, "status") != 0 &&
		    strcmp(k, "body") != 0 && strcmp(k, "count") != 0) {
			snprintf(err, errlen, "unknown member \"%s\" in a failure "
			    "(route, status, body, count)", k);
			return -1;
		}
	}
	route = json_object_get(v, "route");
	status = json_object_get(v, "status");
	count = json_object_get(v, "count");
	body = json_object_get(v, "body");
	for (i = 0; fail_routes[i] != NULL; i++)
		if (json_is_string(route) &&
		    strcmp(json_string_value(route), fail_routes[i]) == 0)
			break;
	if (fail_routes[i] == NULL) {
		snprintf(err, errlen, "\"route\" must be one of /.well-known/"
		    "openid-configuration, /jwks, /token, /authorize, /userinfo, "
		    "/revoke, /introspect, /endsession");
		return -1;
	}
	if (!json_is_integer(status) || json_integer_value(status) < 200 ||
	    json_integer_value(status) > 599) {
		snprintf(err, errlen, "\"status\" must be an integer from 200 to 599");
		return -1;
	}
	if (count != NULL && (!json_is_integer(count) || json_integer_value(count) < 1 ||
	    json_integer_value(count) > 1000000)) {
		snprintf(err, errlen, "\"count\" must be an integer from 1 to 1000000");
		return -1;
	}
	f = json_pack("{s:O, s:I}", "status", status, "count",
	    count != NULL ? json_integer_value(count) : (json_int_t)1);
	if (body != NULL)
		json_object_set(f, "body", (json_t *)body);
	json_object_set_new(c->failures, json_string_value(route), f);
	return 0;
}

int
mock_custom_apply(struct mock *m, const json_t *cfg, char *err, size_t errlen)
{
	const char *k;
	json_t *v, *e;
	size_t i;

	if (!json_is_object(cfg)) {
		snprintf(err, errlen, "the settings must be a JSON object");
		return -1;
	}
	/* Check every member before changing anything. */
	json_object_foreach((json_t *)cfg, k, v) {
		if (strcmp(k, "issuer") == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0) {
				snprintf(err, errlen, "\"issuer\" must be a non-empty string");
				return -1;
			}
		} else if (strcmp(k, "ttl") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 10LL * 365 * 86400) {
				snprintf(err, errlen, "\"ttl\" must be a number of seconds "
				    "from 1 to 315360000");
				return -1;
			}
		} else if (strcmp(k, "userinfo") == 0) {
			if (!json_is_object(v)) {
				snprintf(err, errlen, "\"userinfo\" must be an object");
				return -1;
			}
		} else if (strcmp(k, "failures") == 0) {
			if (!json_is_array(v)) {
				snprintf(err, errlen, "\"failures\" must be an array");
				return -1;
			}
		} else if (strcmp(k, "claims") != 0) {
			snprintf(err, errlen, "unknown setting \"%s\" (issuer, ttl, claims, "
			    "userinfo, failures)", k);
			return -1;
		}
	}
	if ((v = json_object_get(cfg, "claims")) != NULL) {
		struct mock_custom probe = { 0 };

		if (custom_claims(&probe, v, err, errlen) == -1)
			return -1;
		json_decref(probe.at_claims);
		json_decref(probe.id_claims);
		json_decref(probe.at_once);
		json_decref(probe.id_once);
	}
	if ((v = json_object_get(cfg, "failures")) != NULL) {
		struct mock_custom probe = { 0 };
		int r = 0;

		probe.failures = json_object();
		json_array_foreach(v, i, e)
			if (r == 0)
				r = custom_failure(&probe, e, err, errlen);
		json_decref(probe.failures);
		if (r == -1)
			return -1;
	}

	if ((v = json_object_get(cfg, "issuer")) != NULL) {
		free(m->issuer);
		m->issuer = xstrdup(json_string_value(v));
	}
	if ((v = json_object_get(cfg, "ttl")) != NULL)
		m->ttl = json_integer_value(v);
	if ((v = json_object_get(cfg, "claims")) != NULL)
		custom_claims(&m->custom, v, err, errlen);
	if ((v = json_object_get(cfg, "userinfo")) != NULL) {
		json_decref(m->custom.userinfo);
		m->custom.userinfo = json_deep_copy(v);
	}
	if ((v = json_object_get(cfg, "failures")) != NULL)
		json_array_foreach(v, i, e)
			custom_failure(&m->custom, e, err, errlen);
	return 0;
}

void
mock_reset(struct mock *m)
{
	char err[256];

	free(m->issuer);
	m->issuer = xstrdup(m->start_issuer);
	m->ttl = m->start_ttl;
	mock_custom_reset(&m->custom);
	json_object_clear(m->pending);
	if (m->start_config != NULL && mock_custom_apply(m, m->start_config, err,
	    sizeof(err)) == -1)
		log_warnx("reset: %s", err);
	/* The command line wins over the --config file, so its values stay. */
	free(m->issuer);
	m->issuer = xstrdup(m->start_issuer);
	m->ttl = m->start_ttl;
}

int
mock_custom_fail(struct mock *m, struct evhttp_request *req, const char *route)
{
	json_t *f = json_object_get(m->custom.failures, route), *body;
	json_int_t count;
	int status;

	if (f == NULL)
		return 0;
	status = (int)json_integer_value(json_object_get(f, "status"));
	body = json_object_get(f, "body");
	if (json_is_string(body))
		http_reply_raw(req, status, HTTP_CT_TEXT, json_string_value(body),
		    json_string_length(body));
	else if (body != NULL)
		http_reply_json(req, status, json_incref(body));
	else
		http_reply_empty(req, status);
	count = json_integer_value(json_object_get(f, "count")) - 1;
	if (count <= 0)
		json_object_del(m->custom.failures, route);
	else
		json_object_set_new(f, "count", json_integer(count));
	return 1;
}

/* The current settings, in the form mock_custom_apply takes. */
static json_t *
custom_state(struct mock *m)
{
	json_t *s = json_object(), *claims = json_object(), *failures = json_array();
	json_t *once = json_object();
	const char *k;
	json_t *v, *f;

	json_object_set_new(s, "issuer", json_string(m->issuer));
	json_object_set_new(s, "ttl", json_integer(m->ttl));
	if (m->custom.at_claims != NULL)
		json_object_set(claims, "access_token", m->custom.at_claims);
	if (m->custom.id_claims != NULL)
		json_object_set(claims, "id_token", m->custom.id_claims);
	if (m->custom.at_once != NULL)
		json_object_set(once, "access_token", m->custom.at_once);
	if (m->custom.id_once != NULL)
		json_object_set(once, "id_token", m->custom.id_once);
	json_object_set_new(s, "claims", claims);
	json_object_set_new(s, "claims_once", once);
	json_object_set_new(s, "userinfo", m->custom.userinfo != NULL ?
	    json_incref(m->custom.userinfo) : json_null());
	json_object_foreach(m->custom.failures, k, v) {
		f = json_deep_copy(v);
		json_object_set_new(f, "route", json_string(k));
		json_array_append_new(failures, f);
	}
	json_object_set_new(s, "failures", failures);
	return s;
}

/* The request body as JSON (duplicates rejected); NULL after replying 400. */
static json_t *
control_body(struct evhttp_request *req)
{
	json_error_t jerr;
	const char *body;
	json_t *v;
	size_t len;
	char *d;

	body = http_body(req, &len);
	if (body == NULL) {
		http_reply_problem(req, 400, "the request needs a JSON body");
		return NULL;
	}
	if ((v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &jerr)) == NULL) {
		d = xasprintf("malformed JSON at line %d, column %d: %s", jerr.line,
		    jerr.column, jerr.text);
		http_reply_problem(req, 400, d);
		free(d);
		return NULL;
	}
	return v;
}

void
mock_control(struct mock *m, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *sub = path + strlen("/_mockidp");
	char err[256];
	json_t *body = NULL, *wrap;
	int r;

	if (*sub == '/')
		sub++;
	if (strcmp(sub, "") == 0 || strcmp(sub, "config") == 0) {
		if (method == EVHTTP_REQ_GET) {
			http_reply_json(req, 200, custom_state(m));
			return;
		}
		if (method != EVHTTP_REQ_POST || strcmp(sub, "config") != 0)
			goto not_allowed;
		if ((body = control_body(req)) == NULL)
			return;
		r = mock_custom_apply(m, body, err, sizeof(err));
	} else if (strcmp(sub, "claims") == 0 || strcmp(sub, "userinfo") == 0) {
		if (method == EVHTTP_REQ_DELETE) {
			if (strcmp(sub, "claims") == 0) {
				json_decref(m->custom.at_claims);
				json_decref(m->custom.id_claims);
				json_decref(m->custom.at_once);
				json_decref(m->custom.id_once);
				m->custom.at_claims = m->custom.id_claims = NULL;
				m->custom.at_once = m->custom.id_once = NULL;
			} else {
				json_decref(m->custom.userinfo);
				m->custom.userinfo = NULL;
			}
			http_reply_json(req, 200, custom_state(m));
			return;
		}
		if (method != EVHTTP_REQ_POST && method != EVHTTP_REQ_PUT)
			goto not_allowed;
		if ((body = control_body(req)) == NULL)
			return;
		wrap = json_pack("{s:O}", sub, body);
		r = mock_custom_apply(m, wrap, err, sizeof(err));
		json_decref(wrap);
	} else if (strcmp(sub, "fail") == 0) {
		if (method == EVHTTP_REQ_DELETE) {
			json_object_clear(m->custom.failures);
			http_reply_json(req, 200, custom_state(m));
			return;
		}
		if (method != EVHTTP_REQ_POST)
			goto not_allowed;
		if ((body = control_body(req)) == NULL)
			return;
		r = custom_failure(&m->custom, body, err, sizeof(err));
	} else if (strcmp(sub, "reset") == 0) {
		if (method != EVHTTP_REQ_POST)
			goto not_allowed;
		mock_reset(m);
		r = 0;
	} else {
		http_reply_problem(req, 404, "unknown control route; see mockidp --help");
		return;
	}
	json_decref(body);
	if (r == -1)
		http_reply_problem(req, 400, err);
	else
		http_reply_json(req, 200, custom_state(m));
	return;
not_allowed:
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    strcmp(sub, "reset") == 0 || strcmp(sub, "config") == 0 ? "POST" :
	    strcmp(sub, "") == 0 ? "GET" : "POST, PUT, DELETE");
	http_reply_problem(req, 405, "method not allowed on this control route");
}
