/* users.h: signing a user in: the user found by username or email, the password
 * checked with Argon2id on the hash pool, and failed logins throttled per account, per
 * address, and per address and account together. */
#ifndef IDP_USERS_H
#define IDP_USERS_H

struct worker;

/*
 * The throttle. Failures are counted in the database (login_failures,
 * sql/003_browser.sql) in a fixed window of USERS_WINDOW_S from the first failure,
 * under three keys: the account (the login as typed, lower-cased), the address, and
 * the pair of both. Before a password is checked:
 *   - pair (one address guessing one account): from USERS_PAIR_DELAY failures each
 *     attempt waits, from USERS_PAIR_BLOCK it is refused (429) until the window ends;
 *   - address (one address spraying many accounts): the same from USERS_ADDR_DELAY
 *     and USERS_ADDR_BLOCK;
 *   - account (many addresses guessing one account): from USERS_ACCT_DELAY each
 *     attempt waits; from USERS_ACCT_BLOCK it is refused, but only from addresses
 *     that have themselves failed on this account in the window. The user, signing
 *     in from anywhere else, still gets in (after the delay): an attacker cannot lock
 *     a user out, and can lock out an address of the user's for one window at most.
 * The wait is USERS_DELAY_BASE_MS doubling per further failure, at most
 * USERS_DELAY_MAX_MS. A successful sign-in clears the pair's count (session
 * creation, STORE_BR_SESSION_NEW), not the account's: the user signing in must not
 * reset an attack on the account.
 */
#define USERS_WINDOW_S		900
#define USERS_PAIR_DELAY	3
#define USERS_PAIR_BLOCK	8
#define USERS_ADDR_DELAY	20
#define USERS_ADDR_BLOCK	100
#define USERS_ACCT_DELAY	5
#define USERS_ACCT_BLOCK	50
#define USERS_DELAY_BASE_MS	200
#define USERS_DELAY_MAX_MS	2000
#define USERS_LOGIN_MAX		254	/* bytes of a username or email */
#define USERS_PASSWORD_MAX	1024	/* bytes, as idpctl takes them */

enum users_result {
	USERS_OK = 0,		/* right password, user enabled */
	USERS_BAD,		/* wrong username or password: never says which */
	USERS_DISABLED,		/* right password, but the user is disabled */
	USERS_THROTTLED,	/* too many failures: retry_after seconds */
	USERS_UNAVAILABLE,	/* the database or the hash pool cannot now */
	USERS_CANCELLED,
};

/* What users_login gives its callback; the strings are borrowed for the call. */
struct users_outcome {
	enum users_result	 result;
	const char		*user_id;	/* USERS_OK */
	const char		*username;	/* USERS_OK */
	long			 retry_after;	/* USERS_THROTTLED, seconds */
};

typedef void	users_login_cb(const struct users_outcome *, void *arg);

struct users_login;

/* Check login (a username, or an email when it holds '@') and password (both copied;
 * the copy of the password is wiped) from address addr. A user who does not exist
 * costs the same Argon2id run as one who does, against a dummy hash. cb is called
 * exactly once, never before this returns. Returns a handle for users_login_cancel,
 * valid until cb has been called. */
struct users_login *users_login(struct worker *w, const char *login, const char *password,
		    const char *addr, users_login_cb *cb, void *arg);
/* The client went away. While the lookup or the throttle's wait is pending, cb is
 * called at once with USERS_CANCELLED. Once Argon2id runs, nothing changes: the check
 * finishes, a failure is counted (or closing the connection would be a way around
 * the throttle), and cb is called with the outcome. */
void		 users_login_cancel(struct users_login *);

#endif
