/**
 * No secret reaches the log (ASVS 5.0 16.2.5): the server's pino lines, captured at the most
 * detailed level, while a person signs in with a one-time password, types a wrong one, sets
 * and later changes their password, and a relying party redeems the code, refreshes,
 * introspects and revokes.
 */
import { Writable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, asRedirect, Browser, exchange } from '../support/browser.ts';
import { postForm, signInToConsole } from '../support/console.ts';
import { credentials, formOf, openSignIn } from '../support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
const log: string[] = [];

beforeAll(async () => {
  test = await startTestServer(
    { LOG_LEVEL: 'trace' },
    {
      log: new Writable({
        write(chunk: Buffer, _encoding, done) {
          log.push(chunk.toString());
          done();
        },
      }),
    },
  );
  client = await createClient(test);
});
afterAll(() => test.close());

/** Every cookie value the server set in `browser`, by cookie name and value. */
function cookieValues(browser: Browser): Record<string, string> {
  const pairs = browser.setCookies.map((header) => header.split(';')[0]!.split('='));
  return Object.fromEntries(
    pairs
      .filter(([, value]) => value !== undefined && value !== '')
      .map(([name, value]) => [`${name} ${value!.slice(0, 8)}`, value!]),
  );
}

describe('the log', () => {
  it('holds no password, one-time password, code, token, client secret or cookie value', async () => {
    const tenantId = (await createTenant(test)).id;
    const person = await createAccount(test, tenantId, {}, { initial: true });
    const wrongPassword = 'Falsches-Kennwort-3!';
    const newPassword = 'Eigenes-Kennwort-5!';
    const laterPassword = 'Spaeteres-Kennwort-8!';

    const { browser, authorization, login } = await openSignIn(client, {
      scope: 'openid profile offline_access',
    });
    const refused = asPage(await browser.submit(login, credentials(person, wrongPassword)));
    const change = asPage(await browser.submit(refused, credentials(person)));
    const callback = asRedirect(
      await browser.submit(
        change,
        { new_password: newPassword, new_password_confirm: newPassword },
        client.redirectUri,
      ),
    );
    const code = callback.searchParams.get('code')!;
    const tokens = await exchange(client, authorization, callback);
    const refreshed = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);
    await oidc.fetchUserInfo(client.config, refreshed.access_token, person.account._id);
    await oidc.tokenIntrospection(client.config, refreshed.access_token);
    await oidc.tokenRevocation(client.config, refreshed.refresh_token!);
    const formCsrf = formOf(change).hidden.csrf!;

    const own = new Browser();
    const { page } = await signInToConsole(
      test,
      { ...person, password: newPassword },
      '/account',
      own,
    );
    const passwordForm = asPage(await own.visit(`${test.issuer}/account/password`));
    const changed = await postForm(own, passwordForm, 'main form', [
      ['current_password', newPassword],
      ['new_password', laterPassword],
      ['new_password_confirm', laterPassword],
    ]);
    expect(changed.status).toBe(303);

    const secrets: Record<string, string> = {
      'one-time password': person.password,
      'wrong password': wrongPassword,
      'new password': newPassword,
      'later password': laterPassword,
      'authorization code': code,
      'code verifier': authorization.verifier,
      'client secret': client.clientSecret!,
      'access token': tokens.access_token,
      'ID token': tokens.id_token!,
      'refresh token': tokens.refresh_token!,
      'rotated refresh token': refreshed.refresh_token!,
      'CSRF token': formCsrf,
      'console CSRF token': formOf(page, 'form.sign-out').hidden.csrf!,
    };
    // Cookies that hold no secret: the interaction cookies hold the interaction's uid,
    // which the page's own address (/interaction/<uid>) shows by design, their signatures
    // are checked; the remembered authority is the tenant key that log lines name.
    const notSecret = new Set(['_interaction', '_interaction_resume', 'flueag.tenant']);
    for (const [key, value] of Object.entries({ ...cookieValues(browser), ...cookieValues(own) })) {
      if (!notSecret.has(key.split(' ')[0]!)) secrets[`cookie ${key}`] = value;
    }
    const cookieNames = new Set(Object.keys(secrets).map((key) => key.split(' ')[1]));
    for (const name of [
      '_session',
      '_session.sig',
      '_interaction.sig',
      'flueag.csrf',
      'flueag.console',
    ])
      expect([name, cookieNames.has(name)]).toEqual([name, true]);

    const text = log.join('');
    expect(text).toContain('"event":"login"');
    expect(text).toContain('"event":"password.changed"');
    expect(text).toContain('"path":"/token"');
    const found = Object.entries(secrets)
      .filter(([, value]) => value.length >= 8 && text.includes(value))
      .map(([name]) => name);
    expect(found).toEqual([]);
  });
});
