// rp_jose.mjs: a relying party written with openid-client (discovery, client_credentials)
// and jose (createRemoteJWKSet + jwtVerify), as Node services verify tokens.
// Usage: node rp_jose.mjs ISSUER CLIENT_ID CLIENT_SECRET AUDIENCE
// Prints one JSON line {"ok": true, "claims": {...}} or exits 1 with the error.
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, clientId, clientSecret, audience] = process.argv.slice(2);
try {
	const config = await client.discovery(new URL(issuer), clientId, clientSecret,
		client.ClientSecretBasic(clientSecret), { execute: [client.allowInsecureRequests] });
	const meta = config.serverMetadata();
	const tokens = await client.clientCredentialsGrant(config, { scope: 'read' });
	const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
	const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
		issuer, audience, typ: 'at+jwt',
	});
	console.log(JSON.stringify({ ok: true, header: protectedHeader, claims: payload,
		expires_in: tokens.expires_in, token_type: tokens.token_type }));
} catch (e) {
	console.error(`rp_jose: ${e.name}: ${e.message}${e.cause ? ` (${JSON.stringify(e.cause)})` : ''}`);
	process.exit(1);
}
