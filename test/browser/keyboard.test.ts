/**
 * Keyboard-only use (WCAG 2.1.1, 2.4.3, 2.4.7, 3.3.1): the sign-in and account-creation
 * pages are reached, filled and sent with the keyboard alone, focus is always visible, and
 * field errors are announced and tied to their fields.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Page } from 'playwright-core';

import {
  BROWSER_TEST_TIMEOUT,
  newPage,
  signInToConsoleIn,
  startAuthorization,
  tokensOf,
  useChromium,
} from '../support/chromium.ts';
import {
  createAccount,
  startWithClient,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

const chromium = useChromium();

let test: TestServer;
let client: TestClient;
let tenantId: string;

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
}, BROWSER_TEST_TIMEOUT);
afterAll(() => test?.close());

interface Focus {
  /** The element's id, or its tag and text when it has none. */
  name: string;
  inMain: boolean;
  /** `:focus-visible` matches and draws an outline of at least 2 px. */
  visible: boolean;
}

/** The element that has the focus, as the tests name it. */
function focused(page: Page): Promise<Focus> {
  return page.evaluate(() => {
    const element = document.activeElement as HTMLElement | null;
    if (!element || element === document.body)
      return { name: 'body', inMain: false, visible: false };
    const style = getComputedStyle(element);
    const outlined = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
    return {
      name: element.id || `${element.tagName.toLowerCase()}:${element.textContent?.trim() ?? ''}`,
      inMain: element.closest('main') !== null,
      visible: element.matches(':focus-visible') && outlined,
    };
  });
}

/** Presses `key` `count` times and returns where the focus went at each press. */
async function walk(page: Page, count: number, key = 'Tab'): Promise<Focus[]> {
  const stops: Focus[] = [];
  for (let press = 0; press < count; press += 1) {
    await page.keyboard.press(key);
    stops.push(await focused(page));
  }
  return stops;
}

/** Presses Enter on the focused submit button and waits for the answer to load. */
async function submitWithEnter(page: Page) {
  await Promise.all([page.waitForEvent('load'), page.keyboard.press('Enter')]);
}

/** The error of field `id` as assistive technology finds it: aria-invalid and its description. */
function fieldError(page: Page, id: string) {
  return page.evaluate((fieldId) => {
    const field = document.getElementById(fieldId)!;
    const describedBy = (field.getAttribute('aria-describedby') ?? '').split(/\s+/);
    const errorId = describedBy.find((ref) => ref.endsWith('-error'));
    return {
      invalid: field.getAttribute('aria-invalid'),
      error: errorId ? (document.getElementById(errorId)?.textContent?.trim() ?? null) : null,
    };
  }, id);
}

/** Whether the error summary is announced: it is role=alert, or it has the focus. */
function summaryAnnounced(page: Page) {
  return page.evaluate(() => {
    const summary = document.querySelector('.error-summary');
    return (
      summary !== null &&
      (summary.getAttribute('role') === 'alert' || summary.contains(document.activeElement))
    );
  });
}

describe('keyboard-only use', () => {
  it(
    'signs in on the sign-in page with the keyboard alone',
    async () => {
      const person = await createAccount(test, tenantId);
      const { context, page } = await newPage(chromium());
      try {
        const visit = await startAuthorization(page, client);
        await page.locator('#tenant').waitFor();

        expect((await focused(page)).name).toBe('tenant');
        const forward = await walk(page, 3);
        expect(forward.map(({ name }) => name)).toEqual([
          'username',
          'password',
          'button:Anmelden',
        ]);
        expect(forward.every(({ visible }) => visible)).toBe(true);
        const back = await walk(page, 4, 'Shift+Tab');
        expect(back.map(({ name }) => name)).toEqual([
          'password',
          'username',
          'tenant',
          'a:Zum Inhalt springen',
        ]);
        expect(back.every(({ visible }) => visible)).toBe(true);

        await page.keyboard.press('Tab');
        await page.keyboard.type(person.tenantId);
        await page.keyboard.press('Tab');
        await page.keyboard.type(person.username);
        await walk(page, 2);
        await submitWithEnter(page);

        expect(await summaryAnnounced(page)).toBe(true);
        expect(await fieldError(page, 'password')).toEqual({
          invalid: 'true',
          error: 'Bitte füllen Sie dieses Feld aus.',
        });
        expect(await fieldError(page, 'username')).toEqual({ invalid: null, error: null });
        expect(await focused(page)).toMatchObject({ name: 'password' });

        await page.keyboard.type(person.password);
        await page.keyboard.press('Enter');
        const tokens = await tokensOf(client, visit);
        expect(tokens.claims()?.sub).toBe(person.account._id);
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_TIMEOUT,
  );

  it(
    'creates an account on the account-creation page with the keyboard alone',
    async () => {
      const admin = await createAccount(test, tenantId, { roles: ['local_admin'] });
      const { context, page } = await newPage(chromium());
      try {
        await signInToConsoleIn(page, test, admin, '/admin');
        await page.goto(`${test.issuer}/admin/accounts/new`);
        await page.locator('#username').waitFor();

        expect((await focused(page)).name).toBe('username');
        const forward = await walk(page, 8);
        expect(forward.map(({ name }) => name)).toEqual([
          'given_name',
          'family_name',
          'email',
          'permission-meldeverfahren',
          'permission-zahlungsmitteilungen',
          'local_admin',
          'button:Konto anlegen',
          'a:Abbrechen',
        ]);
        expect(forward.every(({ visible, inMain }) => visible && inMain)).toBe(true);
        const [beforeForm] = await walk(page, 9, 'Shift+Tab').then((stops) => stops.slice(-1));
        expect(beforeForm).toMatchObject({ inMain: false, visible: true });

        await page.keyboard.press('Tab');
        expect((await focused(page)).name).toBe('username');
        await page.keyboard.type('t.tastatur');
        await walk(page, 7);
        expect((await focused(page)).name).toBe('button:Konto anlegen');
        await submitWithEnter(page);

        expect(await summaryAnnounced(page)).toBe(true);
        for (const field of ['given_name', 'family_name'])
          expect(await fieldError(page, field)).toEqual({
            invalid: 'true',
            error: expect.stringMatching(/^Bitte geben Sie den (Vor|Nach)namen ein\.$/),
          });
        expect(await fieldError(page, 'username')).toEqual({ invalid: null, error: null });
        expect(await page.inputValue('#username')).toBe('t.tastatur');

        expect((await focused(page)).name).toBe('username');
        const toSummary = await walk(page, 2, 'Shift+Tab');
        expect(toSummary.map(({ name }) => name)).toEqual([
          'a:Nachname: Bitte geben Sie den Nachnamen ein.',
          'a:Vorname: Bitte geben Sie den Vornamen ein.',
        ]);
        await page.keyboard.press('Enter');
        await page.waitForFunction(() => document.activeElement?.id === 'given_name');
        await page.keyboard.type('Tilo');
        await page.keyboard.press('Tab');
        await page.keyboard.type('Tastatur');
        await walk(page, 2);
        expect((await focused(page)).name).toBe('permission-meldeverfahren');
        await page.keyboard.press('Space');
        await walk(page, 3);
        expect((await focused(page)).name).toBe('button:Konto anlegen');
        await submitWithEnter(page);

        await page.locator('#one-time-password').waitFor();
        const created = await test.services.db
          .collection('accounts')
          .findOne({ tenantId, username: 't.tastatur' });
        expect(created).toMatchObject({
          givenName: 'Tilo',
          familyName: 'Tastatur',
          permissions: ['meldeverfahren'],
        });
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_TIMEOUT,
  );
});
