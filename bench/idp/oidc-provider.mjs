// oidc-provider.mjs: the npm oidc-provider as a peer for client_credentials: in memory
// (its default MemoryAdapter), one confidential client (client_credentials grant,
// client_secret_basic), one RSA-2048 signing key made at start. Its access tokens are
//   OP_TOKENS=jwt (the default; bench/idp/run.sh): RS256 JWTs (RFC 9068) through
//     resource indicators;
//   OP_TOKENS=opaque (bench/idp/run-flows.sh): opaque, with features.introspection on,
//     since oidc-provider only introspects tokens it keeps in its adapter, not its JWTs;
//     the client introspects its own token.
//
//   node oidc-provider.mjs PORT
//
// Environment: OP_CLIENT_ID [bench], OP_CLIENT_SECRET (required), OP_SCOPE [a b],
// OP_AUDIENCE [https://api.example], OP_TOKENS [jwt]. Listens on 127.0.0.1:PORT only and prints
// "listening on http://127.0.0.1:PORT" when it accepts requests.

import Provider from 'oidc-provider';

import { listenLoopback, rsaSigningJwk } from './op-common.mjs';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node oidc-provider.mjs PORT');
  process.exit(2);
}
const clientId = process.env.OP_CLIENT_ID || 'bench';
const clientSecret = process.env.OP_CLIENT_SECRET;
if (!clientSecret) {
  console.error('oidc-provider.mjs: OP_CLIENT_SECRET must be set');
  process.exit(2);
}
const scope = process.env.OP_SCOPE || 'a b';
const audience = process.env.OP_AUDIENCE || 'https://api.example';
const tokens = process.env.OP_TOKENS || 'jwt';
if (tokens !== 'jwt' && tokens !== 'opaque') {
  console.error('oidc-provider.mjs: OP_TOKENS is jwt or opaque');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const jwk = rsaSigningJwk();

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope,
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'offline_access', ...scope.split(' ')],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: tokens === 'opaque' },
    resourceIndicators: {
      enabled: tokens === 'jwt',
      // No resource parameter: the token is for our one API.
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience,
        accessTokenTTL: 900,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

listenLoopback(provider, port, issuer);
