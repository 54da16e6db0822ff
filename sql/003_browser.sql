-- 003_browser.sql: what the browser flow (h_authorize.c, h_login.c, h_consent.c) keeps
-- between its pages: pending authorization requests, and the failed-login counters
-- that throttle password guessing.
-- Applied by `idpctl migrate` inside one transaction; recorded in schema_migrations.

-- An authorization request that /authorize has validated and that waits for the
-- login or consent form. A worker's memory is not shared with the other workers (or
-- instances) that may receive the form's POST, so the request lives here. The form
-- carries a random 256-bit request id; id_hash is its SHA-256 (of the 43 ASCII
-- characters). browser_hash is the SHA-256 of the browser cookie (session.c) of the
-- browser that started the request: only that browser can continue it. params is the
-- validated request (redirect_uri, scope, state, nonce, code_challenge and method,
-- prompt, max_age, login_hint), as h_authorize.c writes it. A row goes when its code
-- is issued; rows past expires_at are dead and deleted a few at a time by the next
-- insert.
CREATE TABLE authorization_requests (
	id_hash			bytea PRIMARY KEY CHECK (octet_length(id_hash) = 32),
	browser_hash		bytea NOT NULL CHECK (octet_length(browser_hash) = 32),
	client_id		text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
	params			jsonb NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	expires_at		timestamptz NOT NULL
);
CREATE INDEX authorization_requests_expires ON authorization_requests (expires_at);

-- Failed logins, counted in a fixed window from the first failure (users.c has the
-- policy). key_hash is the SHA-256 of 'acct:' || lower(login), 'addr:' || address or
-- 'pair:' || address || ':' || lower(login): no username or address in the clear.
-- Kept in the database, not in a worker's memory, so the limits hold across workers
-- and instances and through restarts. Rows whose window has ended are dead and
-- deleted a few at a time by the next failure.
CREATE TABLE login_failures (
	key_hash		bytea PRIMARY KEY CHECK (octet_length(key_hash) = 32),
	window_start		timestamptz NOT NULL,
	failures		integer NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
