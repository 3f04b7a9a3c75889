/**
 * The password-change step of a sign-in (design 3.2) when its form is sent twice, or when
 * the password changes elsewhere while the step is open.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { asPage, asRedirect, exchange } from '../support/browser.ts';
import { auditEvents, credentials, formOf, openSignIn, storedAccount } from '../support/flows.ts';
import {
  createAccount,
  startWithClient,
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

const first = 'Erstes-Kennwort-1!';
const second = 'Zweites-Kennwort-2!';

describe('password change step', () => {
  it('takes a form sent twice as one change and continues the sign-in', async () => {
    const person = await createAccount(test, tenantId, {}, { initial: true });
    const { browser, authorization, login } = await openSignIn(client);
    const change = asPage(await browser.submit(login, credentials(person)));
    const { action, hidden } = formOf(change);
    const post = (password: string) =>
      browser.request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          ...hidden,
          new_password: password,
          new_password_confirm: password,
        }),
      });

    const accepted = await post(first);
    const resent = await post(second);

    expect(accepted.status).toBe(303);
    expect(resent.status).toBe(303);
    expect(resent.headers.get('location')).toBe(accepted.headers.get('location'));
    const changes = await auditEvents(test, {
      action: 'password.changed',
      'target.accountId': person.account._id,
    });
    expect(changes).toHaveLength(1);
    const stored = await storedAccount(test, person.account._id);
    expect(await test.services.hasher.verify(stored.password.hash, first)).toBe(true);

    const callback = asRedirect(
      await browser.visit(
        new URL(resent.headers.get('location')!, action).href,
        client.redirectUri,
      ),
    );
    const tokens = await exchange(client, authorization, callback);
    expect(tokens.claims()?.sub).toBe(person.account._id);
  });

  it('asks for the current password when the password was changed in another tab meanwhile', async () => {
    const person = await createAccount(test, tenantId, {}, { initial: true });
    const tabA = await openSignIn(client);
    const tabB = await openSignIn(client, {}, tabA.browser);
    const changeA = asPage(await tabA.browser.submit(tabA.login, credentials(person)));
    const changeB = asPage(await tabB.browser.submit(tabB.login, credentials(person)));
    asRedirect(
      await tabA.browser.submit(
        changeA,
        { new_password: first, new_password_confirm: first },
        client.redirectUri,
      ),
    );

    const refused = asPage(
      await tabB.browser.submit(changeB, { new_password: second, new_password_confirm: second }),
    );

    expect(refused.status).toBe(400);
    expect(refused.document.querySelector('#current_password')).not.toBeNull();
    const stored = await storedAccount(test, person.account._id);
    expect(await test.services.hasher.verify(stored.password.hash, first)).toBe(true);

    asRedirect(
      await tabB.browser.submit(
        refused,
        { current_password: first, new_password: second, new_password_confirm: second },
        client.redirectUri,
      ),
    );
    const changed = await storedAccount(test, person.account._id);
    expect(await test.services.hasher.verify(changed.password.hash, second)).toBe(true);
  });

  it('names every quality rule a new password breaks, in German, and keeps the sign-in open', async () => {
    const person = await createAccount(
      test,
      tenantId,
      { givenName: 'Annegret', familyName: 'Brückner' },
      { initial: true },
    );
    const { browser, login } = await openSignIn(client);
    const change = asPage(await browser.submit(login, credentials(person)));
    const attempt = async (password: string) => {
      const page = asPage(
        await browser.submit(change, { new_password: password, new_password_confirm: password }),
      );
      expect(page.status).toBe(400);
      return page.document.querySelector('#new_password-error')?.textContent ?? '';
    };

    expect(await attempt('Annegret#2')).toContain('Es enthält Ihren Vor- oder Nachnamen.');
    expect(await attempt('Passwort123!')).toContain(
      'Es gehört zu den am häufigsten verwendeten Kennwörtern',
    );
    expect(await attempt('Flueag-Sommer2026')).toMatch(
      /Namen dieses Verfahrens.*Jahreszeit oder einen Monat/s,
    );
    expect(change.document.querySelector('#password-rules')?.textContent).toContain(
      'ist kein häufig verwendetes Kennwort',
    );
    const stored = await storedAccount(test, person.account._id);
    expect(stored.password.mustChange).toBe(true);
  });
});
