-- 002_users.sql: people and what the browser flows keep for them: users (Argon2id
-- password hashes), login sessions, consents, authorization codes, refresh tokens and
-- their families, revoked access-token ids, and the notifications for users and
-- revocations.
-- Applied by `idpctl migrate` inside one transaction; recorded in schema_migrations.
--
-- Nothing here ever holds a raw password, cookie, code or token. Passwords are stored
-- as crypto_pwhash_str (Argon2id) strings; cookies, codes and tokens, which are 256-bit
-- random values, as their SHA-256 (32 bytes), which is enough to find them and useless
-- to present. Single-use rows are consumed by one atomic
--   UPDATE ... SET used_at = now() WHERE <hash> = $1 AND used_at IS NULL
--     AND expires_at > now() RETURNING ...
-- so two requests racing with the same value cannot both win.

-- A client may allow PKCE's "plain" method (RFC 7636 section 4.2); S256 otherwise.
ALTER TABLE clients ADD COLUMN allow_plain_pkce boolean NOT NULL DEFAULT false;

-- People who sign in. id is the OIDC `sub`: 16 random bytes in base64url, made by
-- idpctl, never reused and never changed. Usernames and emails are unique regardless
-- of case (lower(); the database's collation decides what lower means). A username
-- never holds '@' and an email always does, so one login field can take either and
-- match at most one user. roles become the ID and access tokens' `roles` claim.
CREATE TABLE users (
	id			text PRIMARY KEY,
	username		text NOT NULL
				CHECK (username <> '' AND position('@' in username) = 0),
	email			text CHECK (position('@' in email) > 1),
	email_verified		boolean NOT NULL DEFAULT false,
	name			text,				-- display name
	password_hash		text NOT NULL,			-- crypto_pwhash_str
	roles			text[] NOT NULL DEFAULT '{}'
				CHECK (array_position(roles, NULL) IS NULL),
	disabled		boolean NOT NULL DEFAULT false,	-- cannot sign in
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	password_changed_at	timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower ON users (lower(email)) WHERE email IS NOT NULL;

-- Signed-in browser sessions. The cookie holds a random value; id_hash is its SHA-256.
-- A session is live while ended_at IS NULL, absolute_expires_at > now() and
-- last_seen_at + the idle lifetime (configuration) > now(). auth_time is when the
-- user last entered the password (OIDC `auth_time`, `max_age`, `prompt=login`).
-- Logout sets ended_at; rows past absolute_expires_at can be deleted.
CREATE TABLE sessions (
	id_hash			bytea PRIMARY KEY CHECK (octet_length(id_hash) = 32),
	user_id			text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	auth_time		timestamptz NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	last_seen_at		timestamptz NOT NULL DEFAULT now(),
	absolute_expires_at	timestamptz NOT NULL,
	ended_at		timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (absolute_expires_at);

-- What a user allowed a client that is not first-party (the consent page's "Allow"):
-- the scopes granted so far. A request for scopes outside this set asks again.
CREATE TABLE consents (
	user_id			text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	client_id		text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
	scopes			text[] NOT NULL,
	granted_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

-- Refresh-token families: every refresh token descended from one authorization (one
-- code redemption or password grant). Revoking the family (reuse of a rotated token,
-- a replayed code, /revoke, logout, an admin) kills all its tokens at once:
-- revoked_at set, revoke_reason one of 'reuse', 'code_replay', 'revoked', 'logout',
-- 'user_disabled', 'password_changed' (free text; for the audit trail).
-- session_id_hash, when the family came from a browser session, lets logout find it.
CREATE TABLE refresh_families (
	id			text PRIMARY KEY,
	client_id		text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
	user_id			text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	session_id_hash		bytea REFERENCES sessions(id_hash) ON DELETE SET NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	revoked_at		timestamptz,
	revoke_reason		text
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE INDEX refresh_families_client ON refresh_families (client_id);
CREATE INDEX refresh_families_session ON refresh_families (session_id_hash)
	WHERE session_id_hash IS NOT NULL;

-- Authorization codes, stored as the SHA-256 of the code; single use, about a minute.
-- Bound to the client, the exact redirect_uri and the PKCE challenge (code_challenge
-- as sent; method 'S256', or 'plain' only for clients.allow_plain_pkce).
-- Redemption is the atomic UPDATE above, which also records what was issued from
-- the code: family_id (its refresh-token family, if any) and access_jti and
-- access_expires_at (its access token). A second redemption finds used_at set: the
-- code was replayed, so the family is revoked and access_jti goes into revoked_jtis.
-- Rows past expires_at can be deleted.
CREATE TABLE auth_codes (
	code_hash		bytea PRIMARY KEY CHECK (octet_length(code_hash) = 32),
	client_id		text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
	user_id			text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	session_id_hash		bytea REFERENCES sessions(id_hash) ON DELETE SET NULL,
	redirect_uri		text NOT NULL,
	scope			text NOT NULL,			-- space-separated, granted
	nonce			text,
	code_challenge		text,
	code_challenge_method	text CHECK (code_challenge_method IN ('S256', 'plain')),
	auth_time		timestamptz NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	expires_at		timestamptz NOT NULL,
	used_at			timestamptz,
	family_id		text REFERENCES refresh_families(id) ON DELETE SET NULL,
	access_jti		text,
	access_expires_at	timestamptz,
	CHECK ((code_challenge IS NULL) = (code_challenge_method IS NULL))
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

-- Refresh tokens, stored as the SHA-256 of the token, each in a family. Rotation: the
-- atomic UPDATE above marks the presented token used and records successor_hash, the
-- hash of the token that replaces it, in the same transaction as the successor's
-- INSERT. A token presented again after used_at:
--   - within the grace window (configuration) of used_at, a concurrent refresh: it
--     gets the same successor. So that the successor can be handed out again without
--     storing it, successor_enc holds it encrypted under a key derived from the
--     presented token (which only its holder has; never the SHA-256 above, which the
--     database holds), e.g. crypto_secretbox_easy keyed by BLAKE2b-256 of the token
--     with a fixed personalization; NULL when that is not used.
--   - later: reuse. The whole family is revoked (refresh_families.revoked_at).
-- access_jti and access_expires_at name the access token issued with this token, so
-- that revoking the family can also put it into revoked_jtis.
-- scope is what the token may ask for (space-separated); auth_time is carried into
-- refreshed ID tokens. Rows past expires_at can be deleted.
CREATE TABLE refresh_tokens (
	token_hash		bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
	family_id		text NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
	client_id		text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
	user_id			text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	scope			text NOT NULL,
	auth_time		timestamptz NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	expires_at		timestamptz NOT NULL,
	used_at			timestamptz,
	successor_hash		bytea CHECK (octet_length(successor_hash) = 32),
	successor_enc		bytea,
	revoked_at		timestamptz,
	access_jti		text,
	access_expires_at	timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- JWT access tokens revoked before they expire (/revoke, a replayed code, a revoked
-- family), by their `jti`. Workers keep the set in memory: they load it at start and
-- the trigger below NOTIFYs idp_revocations with the jti of every new row, so each
-- worker learns of a revocation within a second. Rows past expires_at (the token's
-- own `exp`) can be deleted: the token is dead anyway. Insert with ON CONFLICT DO
-- NOTHING; a jti is short (NOTIFY payloads are limited to 8000 bytes).
CREATE TABLE revoked_jtis (
	jti			text PRIMARY KEY CHECK (octet_length(jti) BETWEEN 1 AND 256),
	client_id		text,
	expires_at		timestamptz NOT NULL,
	revoked_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_jtis_expires ON revoked_jtis (expires_at);

CREATE FUNCTION idp_notify_revocations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('idp_revocations', NEW.jti);
	RETURN NULL;
END $$;
CREATE TRIGGER revoked_jtis_notify AFTER INSERT ON revoked_jtis
	FOR EACH ROW EXECUTE FUNCTION idp_notify_revocations();

-- Workers may cache users (for /userinfo, refresh, sign-in): every change NOTIFYs
-- idp_users with the user's id, and the cached entry is dropped.
CREATE FUNCTION idp_notify_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('idp_users', COALESCE(NEW.id, OLD.id));
	RETURN NULL;
END $$;
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION idp_notify_users();
