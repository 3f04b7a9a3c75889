/**
 * Signing in to the console (`/admin`, `/account`) through the provider's sign-in form,
 * and the forms of its pages.
 */
import { asPage, Browser, text, type Page } from './browser.ts';
import { credentials, formOf, postRaw, encodeForm } from './flows.ts';
import type { TestAccount, TestServer } from './server.ts';

/** Opens `path` of the console, signs in on the way and returns the page reached. */
export async function signInToConsole(
  test: TestServer,
  person: TestAccount,
  path = '/admin',
  browser = new Browser(),
): Promise<{ browser: Browser; page: Page }> {
  const login = asPage(await browser.visit(`${test.issuer}${path}`));
  if (!login.document.querySelector('form[action$="/login"]'))
    throw new Error(
      `expected the sign-in form, got ${login.status} ${login.url}: ${text(login).slice(0, 300)}`,
    );
  const page = asPage(await browser.submit(login, credentials(person)));
  return { browser, page };
}

/** Posts the form of `page` matched by `selector`, with `fields` added to its hidden ones. */
export async function postForm(
  browser: Browser,
  page: Page,
  selector: string,
  fields: Array<[string, string]> = [],
) {
  const { action, hidden } = formOf(page, selector);
  const response = await browser.request(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: encodeForm([...Object.entries(hidden), ...fields]),
  });
  const html = await response.text();
  return { status: response.status, location: response.headers.get('location'), html };
}

export { postRaw };
