// oidc-provider-introspect.mjs: the npm oidc-provider as bench/idp/run-flows.sh's peer
// for token introspection: in memory (its default MemoryAdapter), one confidential
// client (client_credentials grant, client_secret_basic), features.introspection on,
// and opaque client_credentials access tokens (no resource indicators: oidc-provider
// cannot introspect its JWT-format access tokens, it only looks tokens up in its
// adapter). The client introspects its own token.
//
//   node oidc-provider-introspect.mjs PORT
//
// Environment: OP_CLIENT_ID [bench], OP_CLIENT_SECRET (required), OP_SCOPE [a b].
// Listens on 127.0.0.1:PORT only.

import Provider from 'oidc-provider';

import { listenLoopback, rsaSigningJwk } from './op-common.mjs';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node oidc-provider-introspect.mjs PORT');
  process.exit(2);
}
const clientId = process.env.OP_CLIENT_ID || 'bench';
const clientSecret = process.env.OP_CLIENT_SECRET;
if (!clientSecret) {
  console.error('oidc-provider-introspect.mjs: OP_CLIENT_SECRET must be set');
  process.exit(2);
}
const scope = process.env.OP_SCOPE || 'a b';
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
    introspection: { enabled: true },
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

listenLoopback(provider, port, issuer);
