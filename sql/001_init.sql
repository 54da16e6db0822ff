-- 001_init.sql: clients and their hashed secrets, signing keys (private parts encrypted),
-- and the notifications that tell every idp process about changes.
-- Applied by `idpctl migrate` inside one transaction; recorded in schema_migrations.

CREATE TABLE clients (
	id			text PRIMARY KEY,
	name			text NOT NULL,
	public			boolean NOT NULL DEFAULT false,	-- no secret; PKCE required
	first_party		boolean NOT NULL DEFAULT false,	-- no consent page
	grants			text[] NOT NULL DEFAULT '{client_credentials}',
	scopes			text[] NOT NULL DEFAULT '{}',	-- allowed scopes
	default_scopes		text[] NOT NULL DEFAULT '{}',	-- when none is requested
	audiences		text[] NOT NULL DEFAULT '{}',	-- allowed audiences
	default_audience	text,
	redirect_uris		text[] NOT NULL DEFAULT '{}',
	post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
	disabled		boolean NOT NULL DEFAULT false,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now()
);

-- A client may hold two live secrets at once, to rotate without downtime.
-- Only Argon2id hashes (crypto_pwhash_str format) are stored.
CREATE TABLE client_secrets (
	id			bigserial PRIMARY KEY,
	client_id		text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
	hash			text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	revoked_at		timestamptz
);
CREATE INDEX client_secrets_client ON client_secrets (client_id) WHERE revoked_at IS NULL;

-- Signing keys. state: next (published, not signing) -> active (signing) -> retired
-- (published, not signing) -> deleted. withdrawn: taken out of the JWKS at once
-- (emergency rotation). private_enc is XChaCha20-Poly1305 (libsodium IETF AEAD) of the
-- private JWK's JSON under the key-encryption key, with the kid as associated data.
CREATE TABLE signing_keys (
	kid			text PRIMARY KEY,
	alg			text NOT NULL,
	state			text NOT NULL CHECK (state IN ('next', 'active', 'retired')),
	public_jwk		jsonb NOT NULL,
	private_enc		bytea NOT NULL,
	nonce			bytea NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),	-- published from
	activated_at		timestamptz,
	retired_at		timestamptz,
	delete_after		timestamptz,
	withdrawn		boolean NOT NULL DEFAULT false
);
-- At most one active and one next key at a time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

-- Rotation requests from idpctl (the signer, which alone holds the key-encryption key,
-- carries them out).
CREATE TABLE key_rotation_requests (
	id			bigserial PRIMARY KEY,
	emergency		boolean NOT NULL DEFAULT false,
	requested_at		timestamptz NOT NULL DEFAULT now(),
	done_at			timestamptz
);

CREATE FUNCTION idp_notify_clients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_TABLE_NAME = 'clients' THEN
		PERFORM pg_notify('idp_clients', COALESCE(NEW.id, OLD.id));
	ELSE
		PERFORM pg_notify('idp_clients', COALESCE(NEW.client_id, OLD.client_id));
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER clients_notify AFTER INSERT OR UPDATE OR DELETE ON clients
	FOR EACH ROW EXECUTE FUNCTION idp_notify_clients();
CREATE TRIGGER client_secrets_notify AFTER INSERT OR UPDATE OR DELETE ON client_secrets
	FOR EACH ROW EXECUTE FUNCTION idp_notify_clients();

CREATE FUNCTION idp_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('idp_keys', '');
	RETURN NULL;
END $$;
CREATE TRIGGER signing_keys_notify AFTER INSERT OR UPDATE OR DELETE ON signing_keys
	FOR EACH STATEMENT EXECUTE FUNCTION idp_notify_keys();
CREATE TRIGGER key_rotation_requests_notify AFTER INSERT ON key_rotation_requests
	FOR EACH STATEMENT EXECUTE FUNCTION idp_notify_keys();
