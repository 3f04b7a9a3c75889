/**
 * The provider's storage: a session is found by its uid through a small entry keyed by that
 * uid (FerretDB reads a whole collection for any other filter), sessions stored without such
 * an entry still count, and housekeeping removes whatever has expired, so that no collection
 * grows without bound.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { Housekeeping } from '../../src/db/housekeeping.ts';
import { collectionName, SESSION_UID_COLLECTION } from '../../src/oidc/adapter.ts';
import { asRedirect, exchange } from '../support/browser.ts';
import { credentials, DAY, openSignIn, signInForTokens } from '../support/flows.ts';
import {
  createAccount,
  startWithClient,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let person: TestAccount;

beforeAll(async () => {
  let tenantId: string;
  ({ test, client, tenantId } = await startWithClient());
  person = await createAccount(test, tenantId);
});
afterAll(() => test.close());

const collection = (name: string) => test.services.db.collection(name);

/** Signs in up to the code; without `offline_access` the code is bound to the session. */
async function codeOfNewSession() {
  const { browser, authorization, login } = await openSignIn(client);
  const callback = asRedirect(await browser.submit(login, credentials(person), client.redirectUri));
  return { browser, authorization, callback };
}

describe('sessions found by uid', () => {
  it('exchanges a code of a session stored without its uid entry, as before the entries', async () => {
    const { authorization, callback } = await codeOfNewSession();
    const deleted = await collection(SESSION_UID_COLLECTION).deleteMany({});
    expect(deleted.deletedCount).toBeGreaterThan(0);

    const tokens = await exchange(client, authorization, callback);

    expect(tokens.claims()?.sub).toBe(person.account._id);
  });

  it('refuses a code whose session has ended, although its uid entry is left', async () => {
    const { authorization, callback } = await codeOfNewSession();
    const ended = await collection(collectionName('Session')).deleteMany({
      accountId: person.account._id,
    });
    expect(ended.deletedCount).toBeGreaterThan(0);
    expect(await collection(SESSION_UID_COLLECTION).countDocuments()).toBeGreaterThan(0);

    await expect(exchange(client, authorization, callback)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });
});

describe('housekeeping', () => {
  const expiring = [
    ...['Session', 'Grant', 'AuthorizationCode', 'AccessToken', 'RefreshToken', 'Interaction'].map(
      collectionName,
    ),
    'oidc_consumption',
    SESSION_UID_COLLECTION,
  ];
  const counts = async () =>
    Object.fromEntries(
      await Promise.all(
        expiring.map(async (name) => [name, await collection(name).countDocuments()] as const),
      ),
    );
  const housekeeping = () =>
    new Housekeeping(test.services.db, test.services.audit, 400, test.services.log);

  it('keeps what still runs and removes every provider record once it has expired', async () => {
    const { tokens } = await signInForTokens(client, person, {
      scope: 'openid offline_access',
    });
    const rotated = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);

    await housekeeping().runOnce(new Date());
    const kept = await counts();
    for (const name of ['Session', 'Grant', 'AccessToken', 'RefreshToken'].map(collectionName))
      expect({ name, kept: kept[name]! > 0 }).toEqual({ name, kept: true });
    await expect(
      oidc.refreshTokenGrant(client.config, rotated.refresh_token!),
    ).resolves.toMatchObject({ access_token: expect.any(String) });

    await housekeeping().runOnce(new Date(Date.now() + 2 * DAY));
    expect(await counts()).toEqual(Object.fromEntries(expiring.map((name) => [name, 0])));
  });
});
