// verify.mjs: ask a server for one client_credentials token exactly as the wrk load
// does (POST, client_secret_basic, the same body), then check that the access token
// is a JWS-signed JWT that verifies against the server's JWKS with the expected alg
// (jose, which oidc-provider depends on). Prints one summary line; exit 1 otherwise.
//
//   node verify.mjs BASE_URL JWKS_PATH CLIENT_ID CLIENT_SECRET BODY ALG
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

const [base, jwksPath, id, secret, body, alg] = process.argv.slice(2);
if (!alg || !base.startsWith('http://127.0.0.1:')) {
  console.error('usage: node verify.mjs http://127.0.0.1:PORT JWKS_PATH ID SECRET BODY ALG');
  process.exit(2);
}
const basic = Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)
  .toString('base64');
const res = await fetch(`${base}/token`, {
  method: 'POST',
  headers: {
    'content-type': 'application/x-www-form-urlencoded',
    authorization: `Basic ${basic}`,
  },
  body,
});
const text = await res.text();
if (res.status !== 200) {
  console.error(`verify.mjs: ${base}/token: ${res.status} ${text}`);
  process.exit(1);
}
const tok = JSON.parse(text).access_token;
if (typeof tok !== 'string' || tok.split('.').length !== 3) {
  console.error(`verify.mjs: no compact JWS access_token in ${text}`);
  process.exit(1);
}
const header = decodeProtectedHeader(tok);
const jwks = createRemoteJWKSet(new URL(`${base}${jwksPath}`));
try {
  const { payload } = await jwtVerify(tok, jwks, { algorithms: [alg], issuer: base });
  const sig = Buffer.from(tok.split('.')[2], 'base64url');
  console.log(`ok: ${alg} JWT access token verified against ${jwksPath}: `
    + `typ=${header.typ} kid=${header.kid} signature ${sig.length} bytes, `
    + `claims ${Object.keys(payload).join(',')}, aud=${payload.aud}, scope=${payload.scope}, `
    + `token ${tok.length} bytes, response ${text.length} bytes`);
} catch (e) {
  console.error(`verify.mjs: token does not verify: ${e.code || ''} ${e.message}`);
  process.exit(1);
}
