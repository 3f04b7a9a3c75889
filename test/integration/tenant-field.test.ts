/**
 * The field "Kommune / Behörde" of the sign-in form (design 3.1) takes a tenant's key, its
 * name in any case, or key and name together; each names exactly one tenant.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { asRedirect, exchange } from '../support/browser.ts';
import { openSignIn } from '../support/flows.ts';
import {
  createAccount,
  createTenant,
  startWithClient,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;

beforeAll(async () => {
  ({ test, client } = await startWithClient());
});
afterAll(() => test.close());

/** Signs `person` in with `tenant` typed into the field and returns whom the tokens name. */
async function signedInAs(person: TestAccount, tenant: string): Promise<string | undefined> {
  const { browser, authorization, login } = await openSignIn(client);
  const callback = asRedirect(
    await browser.submit(
      login,
      { tenant, username: person.username, password: person.password },
      client.redirectUri,
    ),
  );
  return (await exchange(client, authorization, callback)).claims()?.sub;
}

describe('tenant field', () => {
  it('finds the tenant by key, by name in any case, and by key and name together', async () => {
    const tenant = await createTenant(test, '05158004', 'Stadt Erkrath');
    const person = await createAccount(test, tenant.id, { username: 'erkrath' });

    for (const typed of [
      '05158004',
      'stadt erkrath',
      ' STADT  ERKRATH ',
      '05158004 – Stadt Erkrath',
    ]) {
      expect({ typed, sub: await signedInAs(person, typed) }).toEqual({
        typed,
        sub: person.account._id,
      });
    }
  });

  it('finds a tenant whose name starts with another key by its name, not by that key', async () => {
    const genuine = await createTenant(test, '05158008', 'Stadt Haan');
    const lookalike = await createTenant(test, '05158012', '05158008 – Stadt Haan Süd');
    const username = 'gleichname';
    await createAccount(test, genuine.id, { username });
    const other = await createAccount(test, lookalike.id, { username });

    expect(await signedInAs(other, '05158008 – Stadt Haan Süd')).toBe(other.account._id);
  });
});
