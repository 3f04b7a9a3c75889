/**
 * Usernames are compared after RFC 8265 UsernameCaseMapped preparation (design 2): case and
 * Unicode composition do not matter, `ß` and `ss` stay different, and a name is unique
 * within its tenant only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { asRedirect, exchange } from '../support/browser.ts';
import { openSignIn } from '../support/flows.ts';
import {
  createAccount,
  createTenant,
  startWithClient,
  system,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let tenantId: string;

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
});
afterAll(() => test.close());

const composed = 'M\u00fcller';
const spellings = [
  ['composed', composed],
  ['upper case', 'M\u00dcLLER'],
  ['decomposed (NFD)', 'Mu\u0308ller'],
  ['upper case decomposed', 'MU\u0308LLER'],
  ['surrounded by spaces', `  ${composed} `],
] as const;

/** Signs in through the form with `username` and returns the `sub` of the ID token. */
async function signInAs(person: TestAccount, username: string): Promise<string | undefined> {
  const { browser, authorization, login } = await openSignIn(client);
  const callback = asRedirect(
    await browser.submit(
      login,
      { tenant: person.tenantId, username, password: person.password },
      client.redirectUri,
    ),
  );
  const tokens = await exchange(client, authorization, callback);
  return tokens.claims()?.sub;
}

function newAccount(tenant: string, username: string) {
  return test.services.accounts.create(
    {
      tenantId: tenant,
      username,
      givenName: 'Hans',
      familyName: 'Müller',
      permissions: [],
      roles: [],
    },
    system,
  );
}

describe('usernames', () => {
  let mueller: TestAccount;

  beforeAll(async () => {
    mueller = await createAccount(test, tenantId, { username: composed });
  });

  it.each(spellings)(
    'signs the same account in when the name is typed %s',
    async (_name, username) => {
      expect(await signInAs(mueller, username)).toBe(mueller.account._id);
    },
  );

  it.each(spellings)(
    'refuses a second account whose name is the same typed %s',
    async (_name, username) => {
      await expect(newAccount(tenantId, username)).rejects.toMatchObject({
        status: 409,
        code: 'username.taken',
      });
      expect(await test.services.db.collection('accounts').countDocuments({ tenantId })).toBe(1);
    },
  );

  it('allows the same name in another tenant as an unrelated account', async () => {
    const other = await createTenant(test);

    const { account } = await newAccount(other.id, 'MU\u0308LLER');

    expect(account._id).not.toBe(mueller.account._id);
    expect(account.username).toBe('M\u00dcLLER');
    expect((await test.services.accounts.findByUsername(other.id, composed))?._id).toBe(
      account._id,
    );
    expect((await test.services.accounts.findByUsername(tenantId, composed))?._id).toBe(
      mueller.account._id,
    );
  });

  it('keeps ß and ss apart', async () => {
    const tenant = await createTenant(test);
    const strasse = await createAccount(test, tenant.id, { username: 'strasse' });

    const strasze = await createAccount(test, tenant.id, { username: 'straße' });

    expect(strasze.account._id).not.toBe(strasse.account._id);
    expect(await signInAs(strasse, 'STRASSE')).toBe(strasse.account._id);
    expect(await signInAs(strasze, 'Straße')).toBe(strasze.account._id);
    expect(await signInAs(strasze, 'STRA\u1e9eE')).toBe(strasze.account._id);
    const { browser, login } = await openSignIn(client);
    const refused = await browser.submit(
      login,
      { tenant: tenant.id, username: 'straße', password: strasse.password },
      client.redirectUri,
    );
    expect(refused).not.toBeInstanceOf(URL);
  });

  it('creates one account when the same name is created twice at the same time', async () => {
    const tenant = await createTenant(test);

    const results = await Promise.allSettled([
      newAccount(tenant.id, 'Jörg'),
      newAccount(tenant.id, 'JO\u0308RG'),
    ]);

    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(results.find((result) => result.status === 'rejected')).toMatchObject({
      reason: { code: 'username.taken' },
    });
    expect(
      await test.services.db.collection('accounts').countDocuments({ tenantId: tenant.id }),
    ).toBe(1);
  });

  describe('entries by username', () => {
    const entries = () =>
      test.services.db.collection<{ _id: string; accountId: string }>('usernames');

    it('signs in an account stored without its entry and enters it, as after a crash between the writes', async () => {
      const tenant = await createTenant(test);
      const person = await createAccount(test, tenant.id, { username: 'Ohne.Eintrag' });
      await entries().deleteMany({ accountId: person.account._id });

      expect(await signInAs(person, 'ohne.eintrag')).toBe(person.account._id);

      expect(await entries().findOne({ accountId: person.account._id })).toEqual({
        _id: `${tenant.id}/ohne.eintrag`,
        accountId: person.account._id,
      });
    });

    it('does not follow an entry that names another account', async () => {
      const tenant = await createTenant(test);
      const holder = await createAccount(test, tenant.id, { username: 'echt' });
      const intruder = await createAccount(test, tenant.id, { username: 'fremd' });
      await entries().updateOne(
        { _id: `${tenant.id}/echt` },
        { $set: { accountId: intruder.account._id } },
      );

      const { browser, login } = await openSignIn(client);
      const refused = await browser.submit(
        login,
        { tenant: tenant.id, username: 'echt', password: intruder.password },
        client.redirectUri,
      );
      expect(refused).not.toBeInstanceOf(URL);
      expect(await signInAs(holder, 'echt')).toBe(holder.account._id);
      expect((await test.services.accounts.findByUsername(tenant.id, 'echt'))?._id).toBe(
        holder.account._id,
      );
      expect((await entries().findOne({ _id: `${tenant.id}/echt` }))?.accountId).toBe(
        holder.account._id,
      );
    });
  });
});
