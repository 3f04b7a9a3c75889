/**
 * The library's own ceiling: a bare oidc-provider with its in-memory adapter, one
 * confidential client and rotating refresh tokens, measured with the same refresh loop as
 * flueag-idp. Its grants and refresh tokens are made through the library's models, as its
 * authorization-code grant would make them, so only the refresh grant itself is timed.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

import Provider from 'oidc-provider';

import { freePort } from '../src/db/ferretdb.ts';
import { benchRefresh, type Measured } from './tokens.ts';

export async function benchBareRefresh(
  databasePid: number,
  options: { concurrency: number; seconds: number },
): Promise<Measured> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = 'bare-rp';
  const clientSecret = randomBytes(24).toString('base64url');
  const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    format: 'jwk',
  });
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['https://rp.example.test/cb'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [{ ...signingKey, alg: 'ES256', use: 'sig', kid: 'bench' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access'],
    features: { devInteractions: { enabled: false } },
    rotateRefreshToken: () => true,
    findAccount: (_ctx: unknown, accountId: string) => ({
      accountId,
      claims: () => ({ sub: accountId }),
    }),
    // The lifetimes flueag-idp uses by default, set so the library does not warn about them.
    ttl: { AccessToken: 300, IdToken: 300, Grant: 86_400, RefreshToken: 86_400 },
  } as ConstructorParameters<typeof Provider>[1]);
  const server = provider.listen(port, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  try {
    const client = await provider.Client.find(clientId);
    if (!client) throw new Error('the bare provider does not know its client');
    const chains: string[] = [];
    for (let index = 0; index < options.concurrency; index += 1) {
      const accountId = `bench-${index}`;
      const grant = new provider.Grant({ accountId, clientId });
      grant.addOIDCScope('openid offline_access');
      const grantId = await grant.save();
      const token = new provider.RefreshToken({
        client,
        accountId,
        grantId,
        scope: 'openid offline_access',
        gty: 'authorization_code',
        authTime: Math.floor(Date.now() / 1000),
      });
      chains.push(await token.save());
    }
    return await benchRefresh(
      {
        tokenEndpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
        clientId,
        clientSecret,
      },
      databasePid,
      chains,
      options.seconds,
    );
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
