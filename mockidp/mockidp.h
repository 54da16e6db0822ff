/* mockidp.h: the state of the mock server, shared by its files (one process, one loop,
 * and signpool.c's threads that only compute signatures). */
#ifndef MOCKIDP_H
#define MOCKIDP_H

#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "jws.h"

struct signpool;

#define MOCK_DEFAULT_PORT	8080
#define MOCK_DEFAULT_TTL	3600
#define MOCK_MAX_BODY		(1024 * 1024)	/* bytes; larger bodies get 413 */
#define MOCK_MAX_HEADERS	(64 * 1024)
#define MOCK_MAX_PENDING	100000		/* remembered codes (nonce, PKCE) */

/* One signing key. jwk holds every member, private ones included (for --save-jwk). */
struct mock_key {
	EVP_PKEY	*pkey;
	enum jws_alg	 alg;
	char		*alg_name;	/* as given ("EdDSA" or its alias "Ed25519") */
	char		*kid;
	json_t		*jwk;
};

struct mock_keys {
	struct mock_key	**v;		/* v[0] signs next; round robin moves it last */
	size_t		  n;
};

/* What tests change at run time through /_mockidp/ or --config. */
struct mock_custom {
	json_t		*at_claims;	/* merged into access tokens until reset, or NULL */
	json_t		*id_claims;	/* merged into id tokens until reset, or NULL */
	json_t		*at_once;	/* merged after those, for the next response only */
	json_t		*id_once;
	json_t		*userinfo;	/* /userinfo body, or NULL for {"sub":"johndoe"} */
	json_t		*failures;	/* route -> {"status", "body", "count"} */
};

struct mock {
	struct event_base	*base;
	struct evhttp		*http;
	struct signpool		*pool;		/* signs /token's tokens, or NULL */
	SSL_CTX			*ssl;
	char			*issuer;
	long long		 ttl;
	struct mock_keys	 keys;
	json_t			*pending;	/* code -> {"nonce", "challenge", "method"} */
	struct mock_custom	 custom;
	/* What reset returns to: the start-up issuer, ttl and --config settings. */
	char			*start_issuer;
	long long		 start_ttl;
	json_t			*start_config;
	int			 quiet;
};

/* keys.c */
/* Load a key from a JWK file; on error returns NULL and writes a one-line reason
 * to err. The caller owns the result (mock_key_free). */
struct mock_key	*mock_key_load(const char *path, char *err, size_t errlen);
/* Generate a key for alg with an 80-hex-character kid. */
struct mock_key	*mock_key_generate(enum jws_alg alg, char *err, size_t errlen);
void		 mock_key_free(struct mock_key *);
/* Append k; a key with the same kid replaces the earlier one (in its place). */
void		 mock_keys_add(struct mock_keys *, struct mock_key *k);
/* The key that signs next, moved to the end of the list (round robin). */
struct mock_key	*mock_keys_next(struct mock_keys *);
/* {"keys": [public JWKs in list order]} as a new object. */
json_t		*mock_keys_jwks(const struct mock_keys *);
void		 mock_keys_clear(struct mock_keys *);
/* Sign header (typ, kid, alg filled in here) and payload with the next key.
 * Returns a new compact JWS (caller frees) or NULL with *errstr. */
char		*mock_sign(struct mock_keys *, const char *typ, json_t *payload,
		    const char **errstr);

/* signpool.c */
#define SIGNPOOL_MAXTHREADS	8
#define SIGNPOOL_MAXJOBS	4096	/* in flight; /token signs on the loop beyond */
#define SIGNJOB_MAXTOK		2	/* an access token and an id token */

/* The signatures of one response, computed by a pool thread. The submitter fills in
 * tok[0..ntok-1], done and arg; the pool owns the job from signpool_submit until done
 * is called, and the submitter frees the job after that. */
struct signjob {
	struct {
		EVP_PKEY	*pkey;		/* borrowed: keys outlive the pool */
		enum jws_alg	 alg;
		json_t		*header;	/* owned; neither shares a value with */
		json_t		*payload;	/* other JSON; the pool frees them once signed */
		char		*jws;		/* out: the compact JWS, or NULL */
	} tok[SIGNJOB_MAXTOK];
	size_t		 ntok;
	const char	*errstr;	/* out: why signing failed (the rest unsigned), or NULL */
	int		 cancelled;	/* out: the pool stopped before delivering it */
	/* Called once, on the loop thread. */
	void		(*done)(struct signjob *, void *arg);
	void		*arg;
	struct signjob	*next;		/* the pool's */
};

/* Start min(online CPUs, SIGNPOOL_MAXTHREADS) threads, at least one, with all signals
 * blocked, whose results come back on base's loop. Exits (fatal) if it cannot. */
struct signpool	*signpool_new(struct event_base *base);
/* 1 if SIGNPOOL_MAXJOBS jobs are in flight; until the loop submits, the answer 0 holds. */
int		 signpool_full(const struct signpool *);
/* Queue sj (signpool_full must be 0); its done callback reports the outcome. */
void		 signpool_submit(struct signpool *, struct signjob *sj);
/* Stop and join the threads, call done with cancelled set for every job not yet
 * delivered (it must not submit again), and free the pool. Call on the loop thread,
 * with the loop stopped. */
void		 signpool_free(struct signpool *);
/* Free what a job still holds (inputs, signed tokens); the job itself is the caller's. */
void		 signpool_job_clear(struct signjob *);

/* server.c */
/* Install the routes on m->http. */
void	mock_server_routes(struct mock *m);

/* control.c */
/* Handle a request under /_mockidp/ (path is normalised). */
void	mock_control(struct mock *m, struct evhttp_request *req, const char *path);
/* Apply a JSON object of settings (the --config file and POST /_mockidp/config share
 * this form). 0 on success, -1 with a message in err. */
int	mock_custom_apply(struct mock *m, const json_t *cfg, char *err, size_t errlen);
void	mock_custom_reset(struct mock_custom *);
/* Back to the start-up state: issuer, ttl, --config settings; codes forgotten. */
void	mock_reset(struct mock *m);
/* If a failure is armed for route, reply with it, count it down and return 1. */
int	mock_custom_fail(struct mock *m, struct evhttp_request *req, const char *route);

/* url.c */
/* Parse an absolute URL the way the WHATWG URL parser normalises it (lower-case
 * scheme and host, default port dropped, empty path "/"), set each (name, value)
 * pair in its query as URLSearchParams.set does, re-serialise the query form-style,
 * keep the fragment. names/values are nset pairs. Returns the new href or NULL if
 * the URL is not absolute. */
char	*mock_url_set_params(const char *url, const char *const *names,
	    const char *const *values, size_t nset);

#endif
