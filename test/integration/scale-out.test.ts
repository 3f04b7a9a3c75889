import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { newKeyMaterial, saveKeyMaterial } from '../../src/oidc/keys.ts';
import { asRedirect } from '../support/browser.ts';
import { credentials, openSignIn } from '../support/flows.ts';
import { startLoadBalancer, type LoadBalancer } from '../support/load-balancer.ts';
import {
  createAccount,
  createClient,
  createTenant,
  newDatabaseName,
  startTestServer,
  type TestServer,
} from '../support/server.ts';

/**
 * Two servers of one installation behind a load balancer: one database, one key file, one
 * issuer. Whatever one server stored or signed, the other must accept.
 */
describe('scale-out', () => {
  let balancer: LoadBalancer;
  let keysDir: string;
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    balancer = await startLoadBalancer();
    keysDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-keys-'));
    const keysFile = path.join(keysDir, 'keys.json');
    await saveKeyMaterial(keysFile, newKeyMaterial());
    const env = { ISSUER: balancer.url, KEYS_FILE: keysFile };
    const database = newDatabaseName();
    first = await startTestServer(env, { database });
    second = await startTestServer(env, { database });
  });

  afterAll(async () => {
    await second?.stop();
    await first?.close();
    await balancer?.close();
    await rm(keysDir, { recursive: true, force: true });
  });

  it('signs in through one server and refreshes through the other', async () => {
    balancer.target = first.server.url;
    const client = await createClient(first);
    const tenantId = (await createTenant(first)).id;
    const person = await createAccount(first, tenantId);

    // The sign-in page comes from the first server, the form goes to the second: the
    // interaction, its cookies and the CSRF secret are shared through database and keys.
    const { browser, authorization, login } = await openSignIn(client, {
      scope: 'openid profile offline_access meldeverfahren',
    });
    balancer.target = second.server.url;
    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );

    balancer.target = first.server.url;
    const tokens = await oidc.authorizationCodeGrant(client.config, callback, {
      pkceCodeVerifier: authorization.verifier,
      expectedState: authorization.state,
    });
    expect(tokens.refresh_token).toEqual(expect.any(String));

    balancer.target = second.server.url;
    const refreshed = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);
    expect(refreshed.claims()?.sub).toBe(person.account._id);

    balancer.target = first.server.url;
    const userinfo = await oidc.fetchUserInfo(
      client.config,
      refreshed.access_token,
      person.account._id,
    );
    expect(userinfo).toMatchObject({ sub: person.account._id, permissions: ['meldeverfahren'] });

    expect(balancer.served.get(first.server.url)).toEqual(
      expect.arrayContaining(['GET /auth', 'POST /token', 'GET /me']),
    );
    expect(balancer.served.get(second.server.url)).toEqual(
      expect.arrayContaining([`POST ${new URL(login.url).pathname}/login`, 'POST /token']),
    );
  });

  it('detects a reused refresh token on the other server and revokes the grant', async () => {
    balancer.target = first.server.url;
    const client = await createClient(first);
    const person = await createAccount(first, (await createTenant(first)).id);
    const { browser, authorization, login } = await openSignIn(client, {
      scope: 'openid offline_access',
    });
    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );
    const tokens = await oidc.authorizationCodeGrant(client.config, callback, {
      pkceCodeVerifier: authorization.verifier,
      expectedState: authorization.state,
    });
    const rotated = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);

    balancer.target = second.server.url;
    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    balancer.target = first.server.url;
    await expect(
      oidc.refreshTokenGrant(client.config, rotated.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
