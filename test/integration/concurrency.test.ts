/**
 * One-time credentials under parallel use (design 4): of parallel redemptions of one
 * authorization code, or of one rotating refresh token, exactly one succeeds.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asRedirect, exchange } from '../support/browser.ts';
import { auditEvents, credentials, openSignIn, signInForTokens } from '../support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let person: TestAccount;

beforeAll(async () => {
  test = await startTestServer();
  client = await createClient(test);
  person = await createAccount(test, (await createTenant(test)).id);
});
afterAll(() => test.close());

// Parallel requests race in the database; a few rounds make a lost update show reliably.
const rounds = 10;

/** Which of the settled requests succeeded, and the OAuth error codes of the others. */
function outcomes(results: PromiseSettledResult<unknown>[]) {
  return {
    succeeded: results.filter((result) => result.status === 'fulfilled').length,
    errors: results
      .filter((result): result is PromiseRejectedResult => result.status === 'rejected')
      .map((result) => (result.reason as { error?: string }).error ?? String(result.reason)),
  };
}

describe('parallel redemption', () => {
  it('redeems one authorization code exactly once among three parallel token requests, and audits the reuse', async () => {
    const someone = await createAccount(test, person.tenantId);
    for (let round = 1; round <= rounds; round += 1) {
      const { browser, authorization, login } = await openSignIn(client);
      const callback = asRedirect(
        await browser.submit(login, credentials(someone), client.redirectUri),
      );

      const results = await Promise.allSettled(
        [1, 2, 3].map(() => exchange(client, authorization, callback)),
      );

      expect({ round, ...outcomes(results) }).toEqual({
        round,
        succeeded: 1,
        errors: ['invalid_grant', 'invalid_grant'],
      });
    }
    // Each round's grant is revoked by the first loser that finds the code used.
    const revocations = await auditEvents(test, {
      action: 'grant.revoked',
      'target.accountId': someone.account._id,
    });
    expect(new Set(revocations.map((event) => event.details?.grant_id)).size).toBe(rounds);
    for (const event of revocations) {
      expect(event).toMatchObject({
        tenantId: someone.tenantId,
        actor: { kind: 'client', clientId: client.clientId },
        details: { route: 'token' },
      });
    }
  });

  it('revokes what a code issued once the code is presented a second time, also in parallel', async () => {
    const { browser, authorization, login } = await openSignIn(client, {
      scope: 'openid offline_access',
    });
    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );

    const results = await Promise.allSettled(
      [1, 2].map(() => exchange(client, authorization, callback)),
    );
    const winner = results.find((result) => result.status === 'fulfilled');
    expect(winner).toBeDefined();
    const tokens = (winner as PromiseFulfilledResult<Awaited<ReturnType<typeof exchange>>>).value;

    expect(await oidc.tokenIntrospection(client.config, tokens.access_token)).toMatchObject({
      active: false,
    });
    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('rotates one refresh token exactly once among two parallel refreshes', async () => {
    for (let round = 1; round <= rounds; round += 1) {
      const { tokens } = await signInForTokens(client, person, { scope: 'openid offline_access' });

      const results = await Promise.allSettled(
        [1, 2].map(() => oidc.refreshTokenGrant(client.config, tokens.refresh_token!)),
      );

      expect({ round, ...outcomes(results) }).toEqual({
        round,
        succeeded: 1,
        errors: ['invalid_grant'],
      });
    }
  });
});
