/**
 * Headless Chromium (Debian's package, driven by playwright-core) for the browser tests: one
 * browser per test file, a fresh context per person, and the steps of the real pages.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { afterAll, beforeAll } from '@jest/globals';
import type { AxeResults, ImpactValue } from 'axe-core';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

import { authorizationRequest, exchange, type Authorization } from './browser.ts';
import type { TestAccount, TestClient, TestServer } from './server.ts';

/** How long one page step may take on a loaded machine (argon2 runs on every sign-in). */
export const STEP_TIMEOUT = 30_000;

/** How long one browser test may take. */
export const BROWSER_TEST_TIMEOUT = 180_000;

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Launches Chromium before the file's tests and closes it after them; the returned function
 * gives the running browser.
 */
export function useChromium(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
      timeout: STEP_TIMEOUT * 2,
    });
  }, STEP_TIMEOUT * 2);
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error('Chromium is not running');
    return browser;
  };
}

/**
 * A new context (cookies of its own, as another person's browser) with one page, German
 * and desktop-sized unless told otherwise. `bypassCSP` lets tests inject axe-core.
 */
export async function newPage(
  browser: Browser,
  options: Parameters<Browser['newContext']>[0] = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    locale: 'de-DE',
    viewport: { width: 1280, height: 900 },
    ...options,
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  return { context, page };
}

/** Fills the sign-in form with `person`'s credentials (or `password`) and submits it. */
export async function submitSignIn(page: Page, person: TestAccount, password = person.password) {
  await page.locator('form[action$="/login"]').waitFor();
  await page.fill('#tenant', person.tenantId);
  await page.fill('#username', person.username);
  await page.fill('#password', password);
  await Promise.all([page.waitForEvent('load'), page.click('form[action$="/login"] button')]);
}

/** Fills the password-change step with `password` twice and submits it. */
export async function submitNewPassword(page: Page, password: string) {
  await page.locator('form[action$="/password"]').waitFor();
  await page.fill('#new_password', password);
  await page.fill('#new_password_confirm', password);
  await Promise.all([page.waitForEvent('load'), page.click('form[action$="/password"] button')]);
}

/** Opens `path` of the console in `page`, signs `person` in on the way and waits for it. */
export async function signInToConsoleIn(
  page: Page,
  test: TestServer,
  person: TestAccount,
  path = '/admin',
) {
  await page.goto(`${test.issuer}${path}`);
  await submitSignIn(page, person);
  await page.waitForURL((url) => url.pathname.startsWith(path));
}

export interface RelyingPartyVisit {
  authorization: Authorization;
  /** Resolves with the redirect to the relying party's redirect_uri once the browser makes it. */
  callback: Promise<URL>;
}

/**
 * Starts an authorization request of `client` in `page`, as a link on the relying party's
 * site would. The relying party's host is not served: the browser's request to its
 * redirect_uri is answered here, and its URL is what `callback` resolves with.
 */
export async function startAuthorization(
  page: Page,
  client: TestClient,
  params: Record<string, string> = {},
): Promise<RelyingPartyVisit> {
  const authorization = await authorizationRequest(client, params);
  const origin = new URL(client.redirectUri).origin;
  await page.unroute(`${origin}/**`);
  const callback = new Promise<URL>((resolve) => {
    void page.route(`${origin}/**`, async (route) => {
      const url = new URL(route.request().url());
      if (url.href.startsWith(client.redirectUri)) resolve(url);
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<title>RP</title>' });
    });
  });
  await page.goto(authorization.url.href);
  return { authorization, callback };
}

/** Waits for the redirect to the relying party and exchanges its code for tokens. */
export async function tokensOf(client: TestClient, visit: RelyingPartyVisit) {
  const callback = await visit.callback;
  return exchange(client, visit.authorization, callback);
}

/** Signs `person` in to `client` through the pages in `page` and returns the tokens. */
export async function signInForTokensIn(
  page: Page,
  client: TestClient,
  person: TestAccount,
  params: Record<string, string> = {},
) {
  const visit = await startAuthorization(page, client, params);
  await submitSignIn(page, person);
  return tokensOf(client, visit);
}

/** The visible text of the page's main region, white space folded. */
export async function mainText(page: Page): Promise<string> {
  return (await page.locator('main').innerText()).replace(/\s+/g, ' ').trim();
}

let axeSource: string | undefined;

export interface AxeFinding {
  id: string;
  impact: ImpactValue | null | undefined;
  help: string;
  targets: string[];
}

/**
 * Runs axe-core on the page as it stands against WCAG 2.x A/AA and axe's best practices,
 * and returns the violations. The context must have been created with `bypassCSP`: the
 * pages allow only their own scripts.
 */
export async function axeViolations(page: Page): Promise<AxeFinding[]> {
  axeSource ??= await readFile(
    createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
    'utf8',
  );
  await page.addScriptTag({ content: axeSource });
  const results = await page.evaluate(() =>
    (
      window as unknown as { axe: { run(context: Document, options: object): Promise<AxeResults> } }
    ).axe.run(document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'],
      },
      resultTypes: ['violations'],
    }),
  );
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    targets: violation.nodes.map((node) => node.target.join(' ')),
  }));
}
