/**
 * Automated accessibility check (WCAG 2.1 AA / BITV 2.0, design section 3) with axe-core of
 * the sign-in, password-change, self-service and admin pages, as rendered by Chromium.
 * Set AXE_REPORT to a file name to have every finding, of any impact, written there.
 */
import { writeFile } from 'node:fs/promises';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Page } from 'playwright-core';

import {
  axeViolations,
  BROWSER_TEST_TIMEOUT,
  newPage,
  signInToConsoleIn,
  startAuthorization,
  submitNewPassword,
  submitSignIn,
  tokensOf,
  useChromium,
  type AxeFinding,
} from '../support/chromium.ts';
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
const findings: Record<string, AxeFinding[]> = {};

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
}, BROWSER_TEST_TIMEOUT);
afterAll(async () => {
  if (process.env.AXE_REPORT)
    await writeFile(process.env.AXE_REPORT, JSON.stringify(findings, null, 2));
  await test?.close();
});

/** Runs axe on `page` as `name` and expects nothing of serious or critical impact. */
async function expectAccessible(page: Page, name: string) {
  expect({ page: name, title: await page.title() }).not.toMatchObject({
    title: expect.stringMatching(/^[a-z_]+\.[a-z_.]+ /),
  });
  const violations = await axeViolations(page);
  findings[name] = violations;
  const severe = violations.filter(({ impact }) => impact === 'serious' || impact === 'critical');
  expect({ page: name, severe }).toEqual({ page: name, severe: [] });
}

/** A context in which axe can be injected despite the pages' script policy. */
const axePage = () => newPage(chromium(), { bypassCSP: true });

describe('accessibility (axe-core)', () => {
  it(
    'finds nothing serious on the sign-in and first password-change pages',
    async () => {
      const person = await createAccount(test, tenantId, {}, { initial: true });
      const { context, page } = await axePage();
      try {
        const visit = await startAuthorization(page, client);
        await page.locator('form[action$="/login"]').waitFor();
        await expectAccessible(page, 'sign-in');

        await submitSignIn(page, person, 'Falsch-Kennwort-1!');
        await page.locator('.error-summary').waitFor();
        await expectAccessible(page, 'sign-in with an error');

        await submitSignIn(page, person);
        await page.locator('#new_password').waitFor();
        await expectAccessible(page, 'password change at first sign-in');

        await page.fill('#new_password', 'kurz');
        await page.fill('#new_password_confirm', 'anders');
        await Promise.all([page.waitForEvent('load'), page.click('form button[type=submit]')]);
        await page.locator('[aria-invalid="true"]').first().waitFor();
        await expectAccessible(page, 'password change with errors');

        await submitNewPassword(page, 'Eigenes-Kennwort-2024!');
        await tokensOf(client, visit);
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_TIMEOUT,
  );

  it(
    'finds nothing serious on the self-service pages',
    async () => {
      const person = await createAccount(test, tenantId);
      const { context, page } = await axePage();
      try {
        await signInToConsoleIn(page, test, person, '/account');
        await expectAccessible(page, '/account');

        await page.goto(`${test.issuer}/account/password`);
        await page.locator('#current_password').waitFor();
        await expectAccessible(page, '/account/password');

        await Promise.all([page.waitForEvent('load'), page.click('main form button[type=submit]')]);
        await page.locator('[aria-invalid="true"]').first().waitFor();
        await expectAccessible(page, '/account/password with errors');
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_TIMEOUT,
  );

  it(
    'finds nothing serious on the admin pages',
    async () => {
      const admin = await createAccount(test, tenantId, { roles: ['local_admin'] });
      const person: TestAccount = await createAccount(test, tenantId, {
        username: 'a.beispiel',
      });
      const { context, page } = await axePage();
      try {
        await signInToConsoleIn(page, test, admin, '/admin');
        await page.goto(`${test.issuer}/admin/accounts`);
        await page.locator('table.data').waitFor();
        await expectAccessible(page, '/admin/accounts');

        await page.goto(`${test.issuer}/admin/accounts/new`);
        await page.locator('#username').waitFor();
        await expectAccessible(page, '/admin/accounts/new');

        await Promise.all([page.waitForEvent('load'), page.click('main form button[type=submit]')]);
        await page.locator('[aria-invalid="true"]').first().waitFor();
        await expectAccessible(page, '/admin/accounts/new with errors');

        await page.fill('#username', 'n.neu');
        await page.fill('#given_name', 'Nina');
        await page.fill('#family_name', 'Neu');
        await page.check('#permission-meldeverfahren');
        await Promise.all([page.waitForEvent('load'), page.click('main form button[type=submit]')]);
        await page.locator('#one-time-password').waitFor();
        await expectAccessible(page, 'one-time password');

        const accountPage = `${test.issuer}/admin/accounts/${encodeURIComponent(person.account._id)}`;
        await page.goto(accountPage);
        await page.locator('form[action$="/permissions"]').waitFor();
        await expectAccessible(page, 'account page');

        await page.goto(`${accountPage}/retire`);
        await page.locator('#confirm').waitFor();
        await expectAccessible(page, 'retire confirmation');

        await Promise.all([page.waitForEvent('load'), page.click('main form button[type=submit]')]);
        await page.locator('#confirm[aria-invalid="true"]').waitFor();
        await expectAccessible(page, 'retire confirmation with an error');

        await page.goto(`${test.issuer}/admin/audit`);
        await page.locator('table.data').waitFor();
        await expectAccessible(page, '/admin/audit');
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_TIMEOUT,
  );

  it(
    'reflows at 320 CSS pixels (400 % zoom): no page scrolls sideways',
    async () => {
      const admin = await createAccount(test, tenantId, { roles: ['local_admin'] });
      const person = await createAccount(test, tenantId, {
        username: 'maximiliane.von.hohenzollern-sigmaringen',
        givenName: 'Maximiliane-Friederike',
        familyName: 'von Hohenzollern-Sigmaringen',
      });
      const { context, page } = await newPage(chromium(), {
        viewport: { width: 320, height: 640 },
      });
      const overflow = () =>
        page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      try {
        await startAuthorization(page, client);
        await page.locator('#tenant').waitFor();
        expect({ page: 'sign-in', overflow: await overflow() }).toEqual({
          page: 'sign-in',
          overflow: 0,
        });

        await signInToConsoleIn(page, test, admin, '/admin');
        const accountPage = `/admin/accounts/${encodeURIComponent(person.account._id)}`;
        for (const path of [
          '/admin/accounts',
          '/admin/accounts/new',
          accountPage,
          `${accountPage}/retire`,
          '/admin/audit',
          '/account',
          '/account/password',
        ]) {
          await page.goto(`${test.issuer}${path}`);
          expect({ page: path, overflow: await overflow() }).toEqual({ page: path, overflow: 0 });
        }

        await page.goto(`${test.issuer}${accountPage}`);
        await Promise.all([
          page.waitForEvent('load'),
          page.click('form[action$="/password"] button[type=submit]'),
        ]);
        await page.locator('#one-time-password').waitFor();
        expect({ page: 'one-time password', overflow: await overflow() }).toEqual({
          page: 'one-time password',
          overflow: 0,
        });
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_TIMEOUT,
  );
});
