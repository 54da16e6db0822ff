// oidc-provider-flows.mjs: the npm oidc-provider as bench/idp/run-flows.sh's peer for
// people's flows: the authorization code flow with PKCE through a server-rendered
// login form, refresh tokens rotated on every use, introspection of opaque tokens.
//
//   node oidc-provider-flows.mjs PORT USERS_FILE
//   node oidc-provider-flows.mjs scrypt-cost N
//
// USERS_FILE holds "username password" lines (the users idp has too). At start every
// password is hashed with scrypt, the memory-hard KDF node has built in (node 20 has
// no Argon2), and the login form verifies against that hash on libuv's thread pool, so
// a login costs a memory-hard hash as it does in idp. The cost: OP_SCRYPT_LOG2N [14]
// and OP_SCRYPT_R [13], p=1 (26 MiB). The default was chosen so that one
// verification takes as long as one of idp's Argon2id at libsodium's interactive cost
// (64 MiB, 2 passes): about 81 ms each on the 2-core machine we measured, where 64 MiB
// of scrypt takes 3.5 times as long. run-flows.sh measures both every run
// ("scrypt-cost" below, flows.py argon2-cost). OP_KDF=none skips the hash (the
// password is compared as given): an upper bound.
//
// The set-up mirrors idp's in bench/idp/run-flows.sh:
//   - client "web" (OP_WEB_ID, OP_WEB_SECRET), confidential, client_secret_basic,
//     authorization_code + refresh_token, redirect URI OP_REDIRECT, first party: the
//     grant is made at login (loadExistingGrant), so there is no consent page;
//   - client "rs" (OP_RS_ID, OP_RS_SECRET), client_credentials only, introspects;
//   - /authorize (renamed from /auth), /token, /token/introspection;
//   - access tokens RS256 JWTs for one resource (resource indicators), ID tokens RS256,
//     a refresh token on every code, rotated on every refresh (rotateRefreshToken);
//   - its default in-memory adapter: no database, unlike idp's PostgreSQL.
// Listens on 127.0.0.1:PORT only and prints "listening on http://127.0.0.1:PORT" once
// it accepts requests; SIGTERM/SIGINT close it.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';

import Provider from 'oidc-provider';

import { listenLoopback, rsaSigningJwk } from './op-common.mjs';

const scryptAsync = promisify(scrypt);
const log2N = Number(process.env.OP_SCRYPT_LOG2N || 14);
const blockR = Number(process.env.OP_SCRYPT_R || 13);
if (!Number.isInteger(log2N) || log2N < 10 || log2N > 20 || !Number.isInteger(blockR)
    || blockR < 1 || blockR > 64) {
  console.error('oidc-provider-flows.mjs: OP_SCRYPT_LOG2N is 10..20, OP_SCRYPT_R 1..64');
  process.exit(2);
}
const SCRYPT = { N: 2 ** log2N, r: blockR, p: 1, maxmem: 2 * 128 * blockR * 2 ** log2N + (1 << 20) };

// "scrypt-cost N": scrypt hashes at the cost above, as the login form makes them (on
// libuv's pool): N in a row, then N on each of nproc chains at once; prints
// "seq_ms=<mean ms> par_per_s=<hashes/s> par_cpu_ms=<CPU ms each>".
if (process.argv[2] === 'scrypt-cost') {
  const n = Number(process.argv[3]);
  if (!Number.isInteger(n) || n <= 0) {
    console.error('usage: node oidc-provider-flows.mjs scrypt-cost N');
    process.exit(2);
  }
  const salt = randomBytes(16);
  const chain = async () => {
    for (let i = 0; i < n; i += 1) await scryptAsync('a password', salt, 32, SCRYPT);
  };
  let t0 = process.hrtime.bigint();
  await chain();
  const seq = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  const nt = availableParallelism();
  const c0 = process.cpuUsage();
  t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: nt }, chain));
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  console.log(`seq_ms=${seq.toFixed(1)} par_per_s=${((n * nt) / dt).toFixed(1)} `
    + `par_cpu_ms=${((c.user + c.system) / 1000 / (n * nt)).toFixed(1)}`);
  process.exit(0);
}
const port = Number(process.argv[2]);
const usersFile = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !usersFile) {
  console.error('usage: node oidc-provider-flows.mjs PORT USERS_FILE');
  process.exit(2);
}
const env = (k) => {
  if (!process.env[k]) {
    console.error(`oidc-provider-flows.mjs: ${k} must be set`);
    process.exit(2);
  }
  return process.env[k];
};
const web = { id: env('OP_WEB_ID'), secret: env('OP_WEB_SECRET'), redirect: env('OP_REDIRECT') };
const rs = { id: env('OP_RS_ID'), secret: env('OP_RS_SECRET') };
const kdf = process.env.OP_KDF || 'scrypt';
if (kdf !== 'scrypt' && kdf !== 'none') {
  console.error('oidc-provider-flows.mjs: OP_KDF is scrypt or none');
  process.exit(2);
}
const audience = 'https://api.example';
const apiScope = 'api';
const issuer = `http://127.0.0.1:${port}`;

// ---------------------------------------------------------------- users
const users = new Map();
const lines = readFileSync(usersFile, 'utf8').split('\n').filter((l) => l.trim());
const hashStart = process.hrtime.bigint();
await Promise.all(lines.map(async (line) => {
  const sp = line.indexOf(' ');
  const name = line.slice(0, sp);
  const pw = line.slice(sp + 1);
  const u = { sub: createHash('sha256').update(name).digest('hex').slice(0, 32), name };
  if (kdf === 'scrypt') {
    u.salt = randomBytes(16);
    u.hash = await scryptAsync(pw, u.salt, 32, SCRYPT);
  } else {
    u.password = Buffer.from(pw);
  }
  users.set(name, u);
}));
const hashMs = Number(process.hrtime.bigint() - hashStart) / 1e6;
const bySub = new Map([...users.values()].map((u) => [u.sub, u]));

async function verify(name, pw) {
  const u = users.get(name);
  if (kdf === 'none') {
    const got = Buffer.from(pw);
    return u && got.length === u.password.length && timingSafeEqual(got, u.password) ? u : null;
  }
  // Hash even for an unknown name, as a real login page must.
  const salt = u ? u.salt : randomBytes(16);
  const h = await scryptAsync(pw, salt, 32, SCRYPT);
  return u && timingSafeEqual(h, u.hash) ? u : null;
}

// ---------------------------------------------------------------- provider
const jwk = rsaSigningJwk();

const provider = new Provider(issuer, {
  clients: [{
    client_id: web.id,
    client_secret: web.secret,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [web.redirect],
    token_endpoint_auth_method: 'client_secret_basic',
  }, {
    client_id: rs.id,
    client_secret: rs.secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  routes: { authorization: '/authorize' },
  scopes: ['openid', 'offline_access', 'profile', 'email', apiScope],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'] },
  pkce: { required: () => true },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      claims: async () => ({ sub, name: u.name, preferred_username: u.name }),
    };
  },
  // First party: the grant is made here, not on a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email');
    grant.addResourceScope(audience, apiScope);
    await grant.save();
    return grant;
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: apiScope,
        audience,
        accessTokenTTL: 900,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// ---------------------------------------------------------------- login page
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (uid, msg) => `<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in</h1>${msg ? `<p>${esc(msg)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}">
<input type="text" name="username" autocomplete="username">
<input type="password" name="password" autocomplete="current-password">
<button type="submit">Sign in</button>
</form></body></html>`;

async function readForm(req) {
  const chunks = [];
  let n = 0;
  for await (const c of req) {
    n += c.length;
    if (n > 8192) throw new Error('form too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(ctx.path);
  if (!m) return next();
  ctx.set('Cache-Control', 'no-store');
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.prompt.name !== 'login') {
    ctx.status = 400;
    ctx.body = `unexpected prompt ${details.prompt.name}`;
    return undefined;
  }
  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = page(details.uid);
    return undefined;
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405;
    return undefined;
  }
  const form = await readForm(ctx.req);
  const u = await verify(form.get('username') || '', form.get('password') || '');
  if (!u) {
    ctx.status = 200;
    ctx.type = 'html';
    ctx.body = page(details.uid, 'Wrong username or password.');
    return undefined;
  }
  const returnTo = await provider.interactionResult(ctx.req, ctx.res,
    { login: { accountId: u.sub } }, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
  return undefined;
});

listenLoopback(provider, port, issuer, () => {
  console.log(`${users.size} users, ${kdf} (N=${SCRYPT.N}, r=${SCRYPT.r}, p=${SCRYPT.p}) `
    + `hashed in ${hashMs.toFixed(0)} ms`);
});
