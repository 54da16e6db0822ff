// op-common.mjs: what the oidc-provider peers of bench/idp share.
import { generateKeyPairSync, createHash } from 'node:crypto';

// A fresh RSA-2048 private JWK for RS256 signatures, its kid from the modulus.
export function rsaSigningJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = createHash('sha256').update(jwk.n).digest('base64url').slice(0, 16);
  jwk.use = 'sig';
  jwk.alg = 'RS256';
  return jwk;
}

// Listen on 127.0.0.1 only, say so once it accepts, close on SIGTERM and SIGINT.
export function listenLoopback(provider, port, issuer, before = () => {}) {
  const server = provider.listen(port, '127.0.0.1', () => {
    before();
    console.log(`listening on ${issuer}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}
