/* test-clients.c: idp's client policy (scope and audience selection), client rows, and
 * the verified-secret cache with its Argon2id pool, without a database. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "../unit/check.h"
#include "clients.h"
#include "hashpool.h"
#include "store.h"

static struct client *
mkclient(const char *id, const char *scopes, const char *defaults, const char *auds,
    const char *default_aud, const char *secrets)
{
	const char *v[STORE_CC_SECRETS + 1] = {
		[STORE_CC_ID] = id, [STORE_CC_PUBLIC] = "f", [STORE_CC_DISABLED] = "f",
		[STORE_CC_GRANTS] = "[\"client_credentials\"]", [STORE_CC_SCOPES] = scopes,
		[STORE_CC_DEFAULT_SCOPES] = defaults, [STORE_CC_AUDIENCES] = auds,
		[STORE_CC_DEFAULT_AUDIENCE] = default_aud, [STORE_CC_SECRETS] = secrets,
	};
	const char *errstr;

	return client_parse(v, STORE_CC_SECRETS + 1, &errstr);
}

static void
test_parse(void)
{
	const char *bad[STORE_CC_SECRETS + 1] = { "x", "t", "t", "{\"a\":1}" };
	const char *errstr = NULL;
	struct client *c;

	c = mkclient("c1", "[\"read\",\"write\"]", "[\"read\"]", "[]", NULL, "[\"h1\",\"h2\"]");
	CHECK(c != NULL && strcmp(c->id, "c1") == 0 && !c->public && !c->disabled &&
	    c->nscopes == 2 && c->ndefault_scopes == 1 && c->naudiences == 0 &&
	    c->default_audience == NULL && c->nhashes == 2 && client_has_grant(c,
	    "client_credentials") && !client_has_grant(c, "password"));
	client_free(c);
	CHECK(client_parse(bad, STORE_CC_SECRETS + 1, &errstr) == NULL && errstr != NULL);
	CHECK(client_parse(bad, 2, &errstr) == NULL);
}

static int
scope_is(const struct client *c, const char *req, const char *want)
{
	const char *errstr;
	char *got;
	int ok;

	if (client_scope_select(c, req, &got, &errstr) == -1)
		return want == NULL;
	ok = want != NULL && strcmp(got, want) == 0;
	free(got);
	return ok;
}

static void
test_scope(void)
{
	struct client *c = mkclient("c", "[\"read\",\"write\",\"admin:all\"]",
	    "[\"read\",\"write\"]", "[]", NULL, "[]");
	struct client *none = mkclient("n", "[]", "[]", "[]", NULL, "[]");

	CHECK(scope_is(c, NULL, "read write"));
	CHECK(scope_is(c, "", "read write"));
	CHECK(scope_is(c, "   ", "read write"));
	CHECK(scope_is(c, "write", "write"));
	CHECK(scope_is(c, "write read", "write read"));
	CHECK(scope_is(c, " admin:all  read ", "admin:all read"));
	CHECK(scope_is(c, "read read write read", "read write"));
	CHECK(scope_is(c, "delete", NULL));
	CHECK(scope_is(c, "read delete", NULL));
	CHECK(scope_is(c, "READ", NULL));
	CHECK(scope_is(c, "re\"ad", NULL));
	CHECK(scope_is(c, "read\\", NULL));
	CHECK(scope_is(none, NULL, ""));
	CHECK(scope_is(none, "read", NULL));
	client_free(c);
	client_free(none);
}

static void
test_audience(void)
{
	struct client *c = mkclient("c", "[]", "[]",
	    "[\"https://api.example\",\"https://other.example\",\"billing\"]",
	    "https://api.example", "[]");
	struct client *plain = mkclient("p", "[]", "[]", "[]", NULL, "[]");
	const char *one[] = { "https://other.example" };
	const char *two[] = { "billing", "https://api.example", "billing" };
	const char *evil[] = { "https://api.example", "https://evil.example" };
	const char *errstr = NULL;
	json_t *a;

	a = client_audience_select(c, NULL, 0, "https://issuer", &errstr);
	CHECK(json_is_string(a) && strcmp(json_string_value(a), "https://api.example") == 0);
	json_decref(a);
	a = client_audience_select(plain, NULL, 0, "https://issuer", &errstr);
	CHECK(json_is_string(a) && strcmp(json_string_value(a), "https://issuer") == 0);
	json_decref(a);
	a = client_audience_select(c, one, 1, "https://issuer", &errstr);
	CHECK(json_is_string(a) && strcmp(json_string_value(a), one[0]) == 0);
	json_decref(a);
	a = client_audience_select(c, two, 3, "https://issuer", &errstr);
	CHECK(json_is_array(a) && json_array_size(a) == 2 &&
	    strcmp(json_string_value(json_array_get(a, 0)), "billing") == 0);
	json_decref(a);
	errstr = NULL;
	CHECK(client_audience_select(c, evil, 2, "https://issuer", &errstr) == NULL &&
	    errstr != NULL);
	CHECK(client_audience_select(plain, one, 1, "https://issuer", &errstr) == NULL);
	client_free(c);
	client_free(plain);
}

/* ---- the verified-secret cache ---- */

static struct event_base *base;
static int pending;

struct outcome {
	int		 done;
	enum clients_auth a;
};

static void
verified(enum clients_auth a, void *arg)
{
	struct outcome *o = arg;

	o->done = 1;
	o->a = a;
	if (--pending == 0)
		event_base_loopbreak(base);
}

static void
run(void)
{
	struct timeval tv = { 10, 0 };

	if (pending > 0) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

/* An Argon2id hash: cheap, or at interactive cost (tens of ms, so that jobs queue). */
static char *
hash_of(const char *pw, int slow)
{
	char out[crypto_pwhash_STRBYTES];

	if (crypto_pwhash_str(out, pw, strlen(pw), slow ?
	    crypto_pwhash_OPSLIMIT_INTERACTIVE : crypto_pwhash_OPSLIMIT_MIN, slow ?
	    crypto_pwhash_MEMLIMIT_INTERACTIVE : crypto_pwhash_MEMLIMIT_MIN) != 0)
		abort();
	return strdup(out);
}

static void
test_cache(void)
{
	struct hashpool *hp = hashpool_new(base, 2, 8);
	struct clients *cl = clients_new(NULL, hp, 4);
	struct client_entry *ce, *ce2;
	struct clients_wait *w;
	struct outcome o1 = { 0 }, o2 = { 0 }, o3 = { 0 }, o4 = { 0 };
	char *h1 = hash_of("secret-one", 0), *h2 = hash_of("secret-two", 0), secrets[512];
	const char *s1 = "secret-one", *s2 = "secret-two";

	snprintf(secrets, sizeof(secrets), "[\"%s\",\"%s\"]", h1, h2);
	clients_put(cl, mkclient("c1", "[]", "[]", "[]", NULL, secrets));
	CHECK(clients_count(cl) == 1);
	CHECK(clients_get(cl, "c1", &ce, &w, NULL, NULL) == CLIENTS_OK && ce != NULL);
	CHECK(clients_entry_client(ce) != NULL &&
	    clients_entry_client(ce)->nhashes == 2);
	/* Without a database, an unknown client cannot be looked up. */
	CHECK(clients_get(cl, "nobody", &ce2, &w, NULL, NULL) == CLIENTS_UNAVAILABLE);

	CHECK(clients_secret_cached(cl, ce, s1, strlen(s1)) == CLIENTS_AUTH_UNKNOWN);
	/* Two checks of the same secret share one Argon2id run; both hear of it. */
	pending = 4;
	CHECK(clients_secret_verify(cl, ce, s1, strlen(s1), verified, &o1) != NULL);
	CHECK(clients_secret_verify(cl, ce, s1, strlen(s1), verified, &o2) != NULL);
	CHECK(hashpool_waiting(hp) <= 1);
	CHECK(clients_secret_verify(cl, ce, s2, strlen(s2), verified, &o3) != NULL);
	CHECK(clients_secret_verify(cl, ce, "wrong", 5, verified, &o4) != NULL);
	run();
	CHECK(o1.done && o1.a == CLIENTS_AUTH_OK && o2.done && o2.a == CLIENTS_AUTH_OK);
	CHECK(o3.done && o3.a == CLIENTS_AUTH_OK);
	CHECK(o4.done && o4.a == CLIENTS_AUTH_BAD);
	/* Now both secrets, and the wrong one, are known without Argon2id. */
	CHECK(clients_secret_cached(cl, ce, s1, strlen(s1)) == CLIENTS_AUTH_OK);
	CHECK(clients_secret_cached(cl, ce, s2, strlen(s2)) == CLIENTS_AUTH_OK);
	CHECK(clients_secret_cached(cl, ce, "wrong", 5) == CLIENTS_AUTH_BAD);
	CHECK(clients_secret_cached(cl, ce, "secret-on", 9) == CLIENTS_AUTH_UNKNOWN);
	CHECK(clients_secret_cached(cl, ce, "secret-one ", 11) == CLIENTS_AUTH_UNKNOWN);

	/* A NOTIFY drops the entry with its MACs; a holder keeps its reference. */
	clients_invalidate(cl, "c1");
	CHECK(clients_count(cl) == 0);
	CHECK(clients_get(cl, "c1", &ce2, &w, NULL, NULL) == CLIENTS_UNAVAILABLE);
	CHECK(clients_entry_client(ce) != NULL);
	clients_release(ce);

	/* A reloaded client starts with no verified secrets. */
	clients_put(cl, mkclient("c1", "[]", "[]", "[]", NULL, secrets));
	CHECK(clients_get(cl, "c1", &ce, &w, NULL, NULL) == CLIENTS_OK);
	CHECK(clients_secret_cached(cl, ce, s1, strlen(s1)) == CLIENTS_AUTH_UNKNOWN);
	clients_release(ce);

	/* A client without live secrets: nothing to verify. */
	clients_put(cl, mkclient("c2", "[]", "[]", "[]", NULL, "[]"));
	CHECK(clients_get(cl, "c2", &ce, &w, NULL, NULL) == CLIENTS_OK);
	CHECK(clients_secret_cached(cl, ce, s1, strlen(s1)) == CLIENTS_AUTH_BAD);
	clients_release(ce);

	/* The table is bounded: the oldest entries go. */
	clients_put(cl, mkclient("c3", "[]", "[]", "[]", NULL, "[]"));
	clients_put(cl, mkclient("c4", "[]", "[]", "[]", NULL, "[]"));
	clients_put(cl, mkclient("c5", "[]", "[]", "[]", NULL, "[]"));
	CHECK(clients_count(cl) == 4);
	CHECK(clients_get(cl, "c1", &ce, &w, NULL, NULL) == CLIENTS_UNAVAILABLE);
	CHECK(clients_get(cl, "c5", &ce, &w, NULL, NULL) == CLIENTS_OK);
	clients_release(ce);
	clients_flush(cl);
	CHECK(clients_count(cl) == 0);
	clients_put(cl, mkclient("c6", "[]", "[]", "[]", NULL, "[]"));
	clients_free(cl);
	free(h1);
	free(h2);
}

/* The pool's queue is bounded, and a queued job can be cancelled. */
static int pool_results[8], pool_done;

static void
pool_cb(int result, void *arg)
{
	pool_results[(size_t)arg] = result;
	pool_done++;
	if (--pending == 0)
		event_base_loopbreak(base);
}

static void
test_pool(void)
{
	struct hashpool *hp = hashpool_new(base, 1, 2);
	struct hash_job *j[4];
	char *h = hash_of("pw", 1);
	const char *hashes[2] = { "not a hash", h };
	size_t i;
	int n = 0;

	for (i = 0; i < 4; i++) {
		pool_results[i] = 99;
		j[i] = hashpool_verify(hp, i == 2 ? "nope" : "pw", i == 2 ? 4 : 2,
		    hashes, 2, pool_cb, (void *)i);
		n += j[i] != NULL;
	}
	/* One may be running already; at most two wait, the rest are refused. */
	CHECK(n >= 2 && n <= 3);
	CHECK(j[0] != NULL && j[1] != NULL);
	CHECK(hashpool_waiting(hp) <= 2);
	pending = n;
	/* The last job taken, still queued or not: cancelling calls back at once
	 * (and pool_cb counts that callback too). */
	for (i = 4; i-- > 0;) {
		if (j[i] != NULL) {
			hashpool_cancel(j[i]);
			CHECK(pool_results[i] == HASHPOOL_CANCELLED);
			break;
		}
	}
	run();
	CHECK(pool_results[0] == 1);		/* the second hash matched */
	if (j[2] != NULL && i != 2)
		CHECK(pool_results[2] == HASHPOOL_NOMATCH);
	free(h);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	base = event_base_new();
	test_parse();
	test_scope();
	test_audience();
	test_cache();
	test_pool();
	return CHECK_DONE();
}
