/**
 * The account console in a real browser: a local admin's actions take effect on the
 * account's sign-in and tokens at once (design sections 2, 3.1, 3.2, 3.5).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { BrowserContext, Page } from 'playwright-core';

import {
  BROWSER_TEST_TIMEOUT,
  mainText,
  newPage,
  signInForTokensIn,
  signInToConsoleIn,
  startAuthorization,
  submitNewPassword,
  submitSignIn,
  tokensOf,
  useChromium,
} from '../support/chromium.ts';
import { messages } from '../support/flows.ts';
import {
  createAccount,
  startWithClient,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

const chromium = useChromium();

let test: TestServer;
let client: TestClient;
let tenantId: string;
let adminContext: BrowserContext;
let admin: Page;

const allScopes = { scope: 'openid profile offline_access meldeverfahren zahlungsmitteilungen' };

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
  const person = await createAccount(test, tenantId, { roles: ['local_admin'] });
  await createAccount(test, tenantId, { roles: ['local_admin'] });
  ({ context: adminContext, page: admin } = await newPage(chromium()));
  await signInToConsoleIn(admin, test, person, '/admin');
}, BROWSER_TEST_TIMEOUT);
afterAll(async () => {
  await adminContext?.close();
  await test?.close();
});

/** Opens the account page of `person` in the admin's browser, from the account list. */
async function openAccountPage(person: TestAccount) {
  await admin.goto(`${test.issuer}/admin/accounts`);
  await admin.fill('#q', person.username);
  await Promise.all([admin.waitForURL(/[?&]q=/), admin.click('form.filters button')]);
  await Promise.all([
    admin.waitForURL(/\/admin\/accounts\/[^/?]+$/),
    admin.click(`table.data a:text-is("${person.username}")`),
  ]);
}

/** Submits the form of the account page whose action ends in `/action`, waits for the notice. */
async function accountAction(action: string) {
  await Promise.all([
    admin.waitForURL(new RegExp(`[?&]done=`)),
    admin.click(`form[action$="/${action}"] button[type=submit]`),
  ]);
}

/** Signs `person` in to the relying party in a browser of its own and returns the tokens. */
async function userSignsIn(person: TestAccount, params: Record<string, string> = allScopes) {
  const { context, page } = await newPage(chromium());
  try {
    return await signInForTokensIn(page, client, person, params);
  } finally {
    await context.close();
  }
}

describe('the account console in the browser', () => {
  it(
    'creates an account whose one-time password must be replaced at the first sign-in',
    async () => {
      await admin.goto(`${test.issuer}/admin/accounts`);
      await Promise.all([
        admin.waitForURL(/\/admin\/accounts\/new/),
        admin.click('a.button[href^="/admin/accounts/new"]'),
      ]);
      await admin.fill('#username', 'k.neumann');
      await admin.fill('#given_name', 'Karla');
      await admin.fill('#family_name', 'Neumann');
      await admin.check('#permission-meldeverfahren');
      await admin.check('#permission-zahlungsmitteilungen');
      await admin.click('form[action="/admin/accounts"] button[type=submit]');
      const oneTimePassword = (await admin.locator('#one-time-password').innerText()).trim();
      expect(await mainText(admin)).toContain('Das Konto „k.neumann“ ist angelegt.');
      expect(oneTimePassword.length).toBeGreaterThanOrEqual(12);

      const { context, page } = await newPage(chromium());
      try {
        const visit = await startAuthorization(page, client, allScopes);
        await submitSignIn(page, {
          tenantId,
          username: 'k.neumann',
          password: oneTimePassword,
        } as TestAccount);
        expect(await page.locator('h1').innerText()).toBe(messages.passwordChangeTitle);
        await submitNewPassword(page, 'Eigenes-Kennwort-2024!');
        const tokens = await tokensOf(client, visit);

        expect(tokens.scope?.split(' ').sort()).toEqual([
          'meldeverfahren',
          'offline_access',
          'openid',
          'profile',
          'zahlungsmitteilungen',
        ]);
        expect(tokens.claims()).toMatchObject({ given_name: 'Karla', family_name: 'Neumann' });
        expect(tokens.refresh_token).toBeTruthy();
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_TIMEOUT,
  );

  it(
    'withdraws zahlungsmitteilungen: the refresh token fails at once, a new sign-in gets only meldeverfahren',
    async () => {
      const person = await createAccount(test, tenantId);
      const tokens = await userSignsIn(person);
      expect(tokens.scope).toContain('zahlungsmitteilungen');

      await openAccountPage(person);
      await admin.uncheck('#permission-zahlungsmitteilungen');
      await accountAction('permissions');
      expect(await mainText(admin)).toContain('Die Berechtigungen wurden gespeichert.');

      await expect(
        oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
      const again = await userSignsIn(person);
      expect(again.scope?.split(' ').sort()).toEqual([
        'meldeverfahren',
        'offline_access',
        'openid',
        'profile',
      ]);
    },
    BROWSER_TEST_TIMEOUT,
  );

  it(
    'deactivates an account, whose sign-in is refused, and reactivates it',
    async () => {
      const person = await createAccount(test, tenantId);
      await openAccountPage(person);
      await accountAction('deactivate');
      expect(await mainText(admin)).toContain(
        'Das Konto ist deaktiviert; alle Sitzungen sind beendet.',
      );

      const { context, page } = await newPage(chromium());
      try {
        await startAuthorization(page, client, allScopes);
        await submitSignIn(page, person);
        expect(await mainText(page)).toContain(messages.deactivated);
        expect(page.url()).toContain('/interaction/');
      } finally {
        await context.close();
      }

      await accountAction('reactivate');
      expect(await mainText(admin)).toContain('Das Konto ist wieder aktiv.');
      const tokens = await userSignsIn(person);
      expect(tokens.claims()?.sub).toBe(person.account._id);
    },
    BROWSER_TEST_TIMEOUT,
  );

  it(
    'shows the lock after five wrong passwords and unlocks the account',
    async () => {
      const person = await createAccount(test, tenantId);
      const { context, page } = await newPage(chromium());
      try {
        await startAuthorization(page, client, allScopes);
        for (let attempt = 1; attempt <= 5; attempt += 1) {
          await submitSignIn(page, person, `Falsch-${attempt}-Kennwort!`);
        }
        expect(await mainText(page)).toContain(messages.locked);
      } finally {
        await context.close();
      }

      await admin.goto(`${test.issuer}/admin/accounts?state=locked`);
      const row = admin.locator('table.data tbody tr', { hasText: person.username });
      expect(await row.locator('.state').innerText()).toBe('gesperrt');
      await openAccountPage(person);
      expect(await admin.locator('.facts .state').innerText()).toBe('gesperrt');
      await accountAction('unlock');
      expect(await mainText(admin)).toContain('Die Sperre ist aufgehoben.');
      expect(await admin.locator('.facts .state').innerText()).toBe('aktiv');

      const tokens = await userSignsIn(person);
      expect(tokens.claims()?.sub).toBe(person.account._id);
    },
    BROWSER_TEST_TIMEOUT,
  );
});
