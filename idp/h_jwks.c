/* h_jwks.c: GET /jwks (and its aliases): the public keys the signer last sent
 * (IPC_KEYS), serialized once per change, with Cache-Control from the key schedule and
 * a strong ETag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "xalloc.h"

static struct blob	*jwks_doc;		/* NULL until the signer has spoken */
static char		 jwks_etag[48];
static char		 jwks_cache_control[48];
static json_t		*jwks_keyinfo;		/* the "keys" array of IPC_KEYS */

/* Seconds since the epoch of a JSON number, or of a string in the forms
 * "2024-05-01T12:00:00Z", "2024-05-01 12:00:00.123+00", "...+02:00"; -1 otherwise. */
static long long
jwks_time(const json_t *v)
{
	struct tm tm;
	const char *s, *p;
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0, sign = 1;
	time_t t;

	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	if ((s = json_string_value(v)) == NULL)
		return -1;
	if (sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
	    &n) != 6 || n == 0)
		return -1;
	p = s + n;
	if (*p == '.')
		p += 1 + strspn(p + 1, "0123456789");
	if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (sscanf(p + 1, "%2d", &oh) != 1)
			return -1;
		p += 3;
		if (*p == ':')
			p++;
		if (*p >= '0' && *p <= '9' && sscanf(p, "%2d", &om) != 1)
			return -1;
	} else if (*p != 'Z' && *p != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return (long long)t - sign * (oh * 3600 + om * 60);
}

void
h_jwks_update(const char *payload, size_t len, long default_max_age)
{
	json_error_t jerr;
	json_t *msg, *jwks, *v;
	const char *kid, *alg;
	long long max_age = default_max_age;
	char *s;

	msg = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	jwks = json_object_get(msg, "jwks");
	if (!json_is_object(msg) || !json_is_object(jwks) ||
	    !json_is_array(json_object_get(jwks, "keys"))) {
		log_warnx("signer: unusable key set (%s); keeping the one before",
		    msg == NULL ? jerr.text : "no jwks.keys");
		json_decref(msg);
		return;
	}
	if (json_is_integer(v = json_object_get(msg, "max_age")) &&
	    json_integer_value(v) >= 0)
		max_age = json_integer_value(v);
	if ((s = json_dumps(jwks, JSON_COMPACT)) == NULL)
		fatalx("jwks: json_dumps");
	blob_unref(jwks_doc);
	jwks_doc = blob_new(s, strlen(s));
	worker_etag(s, strlen(s), jwks_etag, sizeof(jwks_etag));
	free(s);
	snprintf(jwks_cache_control, sizeof(jwks_cache_control), "public, max-age=%lld",
	    max_age);
	json_decref(jwks_keyinfo);
	v = json_object_get(msg, "keys");
	jwks_keyinfo = json_is_array(v) ? json_incref(v) : NULL;
	kid = json_string_value(json_object_get(msg, "active_kid"));
	alg = json_string_value(json_object_get(msg, "active_alg"));
	log_info("signer: %zu public keys, active %s (%s)",
	    json_array_size(json_object_get(jwks, "keys")), kid != NULL ? kid : "none",
	    alg != NULL ? alg : "-");
	json_decref(msg);
}

int
h_jwks_loaded(void)
{
	return jwks_doc != NULL;
}

json_t *
h_jwks_find(const char *kid)
{
	json_error_t jerr;
	json_t *doc, *k, *found = NULL;
	size_t i;

	if (jwks_doc == NULL || kid == NULL)
		return NULL;
	if ((doc = json_loadb(jwks_doc->data, jwks_doc->len, 0, &jerr)) == NULL)
		return NULL;
	json_array_foreach(json_object_get(doc, "keys"), i, k) {
		if (json_is_string(json_object_get(k, "kid")) &&
		    strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0) {
			found = json_incref(k);
			break;
		}
	}
	json_decref(doc);
	return found;
}

void
h_jwks_render_metrics(struct evbuffer *out, long long now)
{
	const char *kid, *state;
	long long created;
	json_t *k;
	size_t i;

	evbuffer_add_printf(out,
	    "# HELP idp_signing_key_age_seconds Age of each published signing key.\n"
	    "# TYPE idp_signing_key_age_seconds gauge\n");
	json_array_foreach(jwks_keyinfo, i, k) {
		kid = json_string_value(json_object_get(k, "kid"));
		state = json_string_value(json_object_get(k, "state"));
		if (kid == NULL || (created = jwks_time(json_object_get(k,
		    "created_at"))) < 0)
			continue;
		evbuffer_add(out, "idp_signing_key_age_seconds{kid=\"", 33);
		metrics_label_value(out, kid);
		evbuffer_add(out, "\",state=\"", 9);
		metrics_label_value(out, state != NULL ? state : "");
		evbuffer_add_printf(out, "\"} %lld\n", now > created ? now - created : 0);
	}
}

void
h_jwks(struct wreq *r)
{
	if (jwks_doc == NULL) {
		wreq_header(r, "Cache-Control", "no-store");
		wreq_header(r, "Retry-After", "1");
		wreq_reply_error(r, 503, "temporarily_unavailable",
		    "the signing keys have not been loaded yet");
		return;
	}
	wreq_header(r, "Cache-Control", jwks_cache_control);
	wreq_header(r, "ETag", jwks_etag);
	if (wreq_etag_matches(r, jwks_etag)) {
		wreq_reply_empty(r, 304);
		return;
	}
	wreq_reply_blob(r, 200, WORKER_CT_JSON, jwks_doc);
}
