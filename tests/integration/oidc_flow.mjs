// oidc_flow.mjs: the whole authorization code flow as a Node relying party does it,
// with openid-client (discovery, PKCE S256, nonce, state, code grant, refresh,
// userinfo, introspection, revocation) and jose (ID token against the remote JWKS),
// signing in through idp's HTML login form with a small cookie jar of its own.
// Usage: node oidc_flow.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD
// Prints one JSON line {"ok": true, ...} or exits 1 with the error.
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, clientId, clientSecret, redirectUri, username, password] =
	process.argv.slice(2);

// name -> value; enough for one host's HttpOnly cookies.
const jar = new Map();
function remember(res) {
	for (const c of res.headers.getSetCookie()) {
		const [pair] = c.split(';');
		const i = pair.indexOf('=');
		const name = pair.slice(0, i).trim(), value = pair.slice(i + 1).trim();
		if (/max-age=0/i.test(c))
			jar.delete(name);
		else
			jar.set(name, value);
	}
}
function cookieHeader() {
	return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}
async function browse(url, init = {}) {
	const res = await fetch(url, { ...init, redirect: 'manual',
		headers: { ...(init.headers || {}), cookie: cookieHeader() } });
	remember(res);
	return res;
}

const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'")
	.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

// The form of an HTML page: its action and its hidden fields.
function parseForm(html, base) {
	const form = html.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/);
	if (!form)
		throw new Error(`no form in the page: ${html.slice(0, 300)}`);
	const fields = new URLSearchParams();
	for (const m of form[2].matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g))
		fields.append(unescape(m[1]), unescape(m[2]));
	return { action: new URL(unescape(form[1]), base), fields };
}

// Follow redirects until one points at the redirect_uri; answer forms on the way.
async function signIn(url) {
	let res = await browse(url);
	for (let step = 0; step < 10; step++) {
		if (res.status >= 300 && res.status < 400) {
			const loc = new URL(res.headers.get('location'), url);
			if (loc.href.startsWith(redirectUri))
				return loc;
			url = loc;
			res = await browse(loc);
			continue;
		}
		const html = await res.text();
		if (res.status !== 200)
			throw new Error(`HTTP ${res.status}: ${html.slice(0, 300)}`);
		const { action, fields } = parseForm(html, url);
		if (html.includes('name="password"')) {
			fields.set('username', username);
			fields.set('password', password);
		} else
			fields.set('decision', 'allow');
		url = action;
		res = await browse(action, { method: 'POST', body: fields,
			headers: { 'content-type': 'application/x-www-form-urlencoded' } });
	}
	throw new Error('too many steps');
}

try {
	const config = await client.discovery(new URL(issuer), clientId, clientSecret,
		client.ClientSecretBasic(clientSecret), { execute: [client.allowInsecureRequests] });
	const meta = config.serverMetadata();
	const verifier = client.randomPKCECodeVerifier();
	const challenge = await client.calculatePKCECodeChallenge(verifier);
	const nonce = client.randomNonce(), state = client.randomState();
	const authUrl = client.buildAuthorizationUrl(config, {
		redirect_uri: redirectUri, scope: 'openid profile email', nonce, state,
		code_challenge: challenge, code_challenge_method: 'S256',
	});
	const callback = await signIn(authUrl);
	const tokens = await client.authorizationCodeGrant(config, callback, {
		pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state,
		idTokenExpected: true,
	});
	const idClaims = tokens.claims();
	const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
	const { payload: idPayload, protectedHeader: idHeader } = await jwtVerify(
		tokens.id_token, jwks, { issuer, audience: clientId });
	const { protectedHeader: atHeader } = await jwtVerify(tokens.access_token, jwks,
		{ issuer, typ: 'at+jwt' });

	const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
	const userinfo = await client.fetchUserInfo(config, refreshed.access_token,
		idClaims.sub);
	const introspected = await client.tokenIntrospection(config, refreshed.access_token);
	const introspectedRefresh = await client.tokenIntrospection(config,
		refreshed.refresh_token);
	await client.tokenRevocation(config, refreshed.access_token);
	const afterRevoke = await client.tokenIntrospection(config, refreshed.access_token);
	await client.tokenRevocation(config, refreshed.refresh_token);
	let refreshAfterRevoke = null;
	try {
		await client.refreshTokenGrant(config, refreshed.refresh_token);
		refreshAfterRevoke = 'accepted';
	} catch (e) {
		refreshAfterRevoke = e.error || e.code || e.message;
	}
	console.log(JSON.stringify({
		ok: true, id_claims: idClaims, id_payload: idPayload, id_header: idHeader,
		at_header: atHeader, scope: tokens.scope,
		first_refresh: tokens.refresh_token, second_refresh: refreshed.refresh_token,
		refreshed_has_id_token: typeof refreshed.id_token === 'string',
		userinfo, introspected, introspected_refresh: introspectedRefresh,
		after_revoke: afterRevoke, refresh_after_revoke: refreshAfterRevoke,
	}));
} catch (e) {
	console.error(`oidc_flow: ${e.name}: ${e.message}` +
		`${e.cause ? ` (${JSON.stringify(e.cause)})` : ''}` +
		`${e.error ? ` ${e.error}: ${e.error_description}` : ''}`);
	process.exit(1);
}
