/**
 * Hostile input on the forms of the sign-in and password-change pages: every refusal is a
 * German message with a 4xx status, never a 5xx, and leaves nothing half-written — no
 * counted failure, no changed password, no audit event of an action that did not happen.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { asPage, authorizationRequest, Browser, text, type Page } from '../support/browser.ts';
import {
  auditEvents,
  credentials,
  encodeForm,
  formOf,
  messages,
  openSignIn,
  postRaw,
  storedAccount,
} from '../support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let person: TestAccount;

beforeAll(async () => {
  test = await startTestServer();
  client = await createClient(test);
  person = await createAccount(test, (await createTenant(test)).id);
});
afterAll(() => test.close());

/** The label of each form field, which the error summary names before the message. */
const labels: Record<string, string> = {
  tenant: 'Kommune / Behörde',
  username: 'Benutzername',
  password: 'Kennwort',
  current_password: 'Bisheriges Kennwort',
  new_password: 'Neues Kennwort',
  new_password_confirm: 'Neues Kennwort wiederholen',
};

/** A field's value: one string, several (a repeated field), or absent. */
type Value = string | readonly string[] | undefined;

const fieldMessages = [
  messages.fieldRequired,
  messages.fieldTooLong,
  messages.fieldInvalid,
  messages.fieldNotValid,
];

/** The urlencoded body of `page`'s form: its CSRF token, then `fields` in order. */
function body(page: Page, fields: Record<string, Value>): string {
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries({ csrf: formOf(page).hidden.csrf, ...fields })) {
    for (const one of value === undefined ? [] : [value].flat()) pairs.push([name, one]);
  }
  return encodeForm(pairs);
}

/** Bad values for one field; `valid` is a good value for it. */
function badValues(valid: string) {
  return [
    ['empty', '', messages.fieldRequired],
    ['missing', undefined, messages.fieldRequired],
    ['blank', ' \t\u00a0\u3000 ', messages.fieldRequired],
    ['10 kB long', `${valid}${'x'.repeat(10_240)}`, messages.fieldTooLong],
    ['with a NUL byte', `${valid}\0`, messages.fieldInvalid],
    ['repeated', [valid, valid], messages.fieldNotValid],
  ] as const;
}

describe('sign-in form', () => {
  const fields = ['tenant', 'username', 'password'] as const;
  const cases = fields.flatMap((field) =>
    badValues('a').map(([name, , message]) => [field, name, message] as const),
  );

  it.each(cases)(
    'refuses the %s field %s with a field message and status 400',
    async (field, name, message) => {
      const valid = credentials(person);
      const value = badValues(valid[field]).find(([candidate]) => candidate === name)![1];
      const { browser, login } = await openSignIn(client);
      const before = await auditEvents(test, {});

      const page = await postRaw(browser, login, body(login, { ...valid, [field]: value }));

      expect(page.status).toBe(400);
      expect(page.location).toBeNull();
      const fieldError = page.document.querySelector(`#${field}-error`)?.textContent;
      if (message) expect(fieldError).toBe(message);
      else expect(fieldMessages).toContain(fieldError);
      expect(page.document.querySelector(`.error-summary a[href="#${field}"]`)?.textContent).toBe(
        `${labels[field]}: ${fieldError}`,
      );
      expect(page.document.querySelector(`#${field}`)?.getAttribute('aria-invalid')).toBe('true');
      expect(page.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
      expect(page.html).not.toContain(person.password);
      expect((await storedAccount(test, person.account._id)).lockout.count).toBe(0);
      expect(await auditEvents(test, {})).toHaveLength(before.length);
    },
  );

  it.each([
    [
      'without a CSRF token',
      (page: Page) => body(page, { csrf: undefined, ...credentials(person) }),
    ],
    [
      'with the CSRF token of another browser',
      (_page: Page, other: Page) => body(other, credentials(person)),
    ],
    [
      'with a made-up CSRF token',
      (page: Page) => body(page, { csrf: 'abc-def', ...credentials(person) }),
    ],
    [
      'with a repeated CSRF token',
      (page: Page) =>
        body(page, {
          csrf: [formOf(page).hidden.csrf!, formOf(page).hidden.csrf!],
          ...credentials(person),
        }),
    ],
  ])('refuses a sign-in %s with status 403 and a German error page', async (_name, make) => {
    const { browser, login } = await openSignIn(client);
    const { login: other } = await openSignIn(client);

    const page = await postRaw(browser, login, make(login, other));

    expect(page.status).toBe(403);
    expect(page.location).toBeNull();
    expect(page.document.querySelector('html')?.getAttribute('lang')).toBe('de');
    expect(text(page)).toContain(messages.csrfInvalid);
    expect(
      await auditEvents(test, { action: 'login', 'target.accountId': person.account._id }),
    ).toHaveLength(0);
  });

  it('refuses a 100 kB body with status 413 and a German error page', async () => {
    const { browser, login } = await openSignIn(client);

    const page = await postRaw(
      browser,
      login,
      body(login, { ...credentials(person), password: 'x'.repeat(100 * 1024) }),
    );

    expect(page.status).toBe(413);
    expect(text(page)).toContain(messages.tooLarge);
    expect((await storedAccount(test, person.account._id)).lockout.count).toBe(0);
  });

  const urlencoded = { 'content-type': 'application/x-www-form-urlencoded' };
  it.each([
    [
      'a field in bracket notation',
      urlencoded,
      (csrf: string) => `csrf=${csrf}&tenant[x]=a&username=b&password=c`,
    ],
    [
      'a JSON body',
      { 'content-type': 'application/json' },
      (csrf: string) =>
        JSON.stringify({
          csrf: decodeURIComponent(csrf),
          tenant: 'a',
          username: 'b',
          password: 'c',
        }),
    ],
    [
      'a text/plain body',
      { 'content-type': 'text/plain' },
      (csrf: string) => `csrf=${csrf}&tenant=a&username=b&password=c`,
    ],
    [
      '3000 fields',
      urlencoded,
      (csrf: string) =>
        `csrf=${csrf}&tenant=a&username=b&password=c&${Array.from({ length: 3000 }, (_, n) => `f${n}=1`).join('&')}`,
    ],
    [
      'malformed percent-encoding',
      urlencoded,
      (csrf: string) => `csrf=${csrf}&tenant=%E0%A4%A&username=%ZZ&password=%`,
    ],
    [
      'bytes that are no UTF-8',
      urlencoded,
      (csrf: string) => `csrf=${csrf}&tenant=a&username=%FF%FE&password=%C3%28`,
    ],
    [
      'a gzip Content-Encoding over a plain body',
      { ...urlencoded, 'content-encoding': 'gzip' },
      (csrf: string) => `csrf=${csrf}&tenant=a&username=b&password=c`,
    ],
  ])(
    'answers %s with a 4xx status and a German page, never a 5xx',
    async (_name, headers, make) => {
      const { browser, login } = await openSignIn(client);

      const page = await postRaw(
        browser,
        login,
        make(encodeURIComponent(formOf(login).hidden.csrf!)),
        headers,
      );

      expect(page.status).toBeGreaterThanOrEqual(400);
      expect(page.status).toBeLessThan(500);
      expect(page.document.querySelector('html')?.getAttribute('lang')).toBe('de');
      expect(text(page)).not.toContain('interner Fehler');
    },
  );

  it('still signs in on the same page after refused input', async () => {
    const { browser, login } = await openSignIn(client);
    const refused = await postRaw(
      browser,
      login,
      body(login, { ...credentials(person), username: '' }),
    );
    expect(refused.status).toBe(400);

    const callback = await browser.submit(refused, credentials(person), client.redirectUri);

    expect(callback).toBeInstanceOf(URL);
    expect((callback as URL).searchParams.get('code')).toEqual(expect.any(String));
  });
});

describe('password-change form', () => {
  const newPassword = 'Neues-Kennwort-7!';
  let newcomer: TestAccount;
  let browser: Browser;

  beforeAll(async () => {
    newcomer = await createAccount(test, (await createTenant(test)).id, {}, { initial: true });
    const opened = await openSignIn(client);
    browser = opened.browser;
    const change = asPage(
      await browser.submit(opened.login, credentials(newcomer), client.redirectUri),
    );
    expect(change.document.querySelector('h1')?.textContent).toBe(messages.passwordChangeTitle);
  });

  /** A fresh password-change page in the browser whose session must change its password. */
  async function changePage(): Promise<Page> {
    const authorization = await authorizationRequest(client);
    const page = asPage(await browser.visit(authorization.url.href, client.redirectUri));
    expect(page.document.querySelector('h1')?.textContent).toBe(messages.passwordChangeTitle);
    return page;
  }

  /** The stored password and the audit trail stay as they were before the refused change. */
  async function expectUnchanged(before: { hash: string }) {
    const stored = await storedAccount(test, newcomer.account._id);
    expect(stored.password.hash).toBe(before.hash);
    expect(stored.password.mustChange).toBe(true);
    expect(
      await auditEvents(test, {
        action: 'password.changed',
        'target.accountId': newcomer.account._id,
      }),
    ).toHaveLength(0);
  }

  /**
   * The body of a change in a browser whose session is older than this authorization, which
   * must confirm the current password (here the one-time password).
   */
  const changeBody = (page: Page, fields: Record<string, Value>) =>
    body(page, { current_password: newcomer.password, ...fields });

  const fields = ['current_password', 'new_password', 'new_password_confirm'] as const;
  const cases = fields.flatMap((field) =>
    badValues('a').map(([name, , message]) => [field, name, message] as const),
  );

  it.each(cases)(
    'refuses the %s field %s with a field message and status 400',
    async (field, name, message) => {
      const value = badValues(newPassword).find(([candidate]) => candidate === name)![1];
      const page = await changePage();
      const before = (await storedAccount(test, newcomer.account._id)).password;

      const refused = await postRaw(
        browser,
        page,
        changeBody(page, {
          new_password: newPassword,
          new_password_confirm: newPassword,
          [field]: value,
        }),
      );

      expect(refused.status).toBe(400);
      expect(refused.location).toBeNull();
      const fieldError = refused.document.querySelector(`#${field}-error`)?.textContent;
      if (message) expect(fieldError).toBe(message);
      else expect(fieldMessages).toContain(fieldError);
      expect(
        refused.document.querySelector(`.error-summary a[href="#${field}"]`)?.textContent,
      ).toBe(`${labels[field]}: ${fieldError}`);
      expect(refused.document.querySelector('form')?.getAttribute('action')).toMatch(/\/password$/);
      expect(refused.html).not.toContain(newPassword);
      await expectUnchanged(before);
    },
  );

  it.each([
    [
      'without a CSRF token',
      (page: Page) =>
        changeBody(page, {
          csrf: undefined,
          new_password: newPassword,
          new_password_confirm: newPassword,
        }),
    ],
    [
      'with a made-up CSRF token',
      (page: Page) =>
        changeBody(page, {
          csrf: 'abc-def',
          new_password: newPassword,
          new_password_confirm: newPassword,
        }),
    ],
  ])('refuses a change %s with status 403 and a German error page', async (_name, make) => {
    const page = await changePage();
    const before = (await storedAccount(test, newcomer.account._id)).password;

    const refused = await postRaw(browser, page, make(page));

    expect(refused.status).toBe(403);
    expect(text(refused)).toContain(messages.csrfInvalid);
    await expectUnchanged(before);
  });

  it('refuses a change with the CSRF token of another browser', async () => {
    const page = await changePage();
    const { login: other } = await openSignIn(client);
    const before = (await storedAccount(test, newcomer.account._id)).password;

    const refused = await postRaw(
      browser,
      page,
      changeBody(other, { new_password: newPassword, new_password_confirm: newPassword }),
    );

    expect(refused.status).toBe(403);
    expect(text(refused)).toContain(messages.csrfInvalid);
    await expectUnchanged(before);
  });

  it('refuses a 100 kB body with status 413 and a German error page', async () => {
    const page = await changePage();
    const before = (await storedAccount(test, newcomer.account._id)).password;
    const huge = `A1!${'x'.repeat(100 * 1024)}`;

    const refused = await postRaw(
      browser,
      page,
      changeBody(page, { new_password: huge, new_password_confirm: huge }),
    );

    expect(refused.status).toBe(413);
    expect(text(refused)).toContain(messages.tooLarge);
    await expectUnchanged(before);
  });

  it('answers a gzip Content-Encoding over a plain body with a 4xx status, never a 5xx', async () => {
    const page = await changePage();
    const before = (await storedAccount(test, newcomer.account._id)).password;

    const refused = await postRaw(
      browser,
      page,
      changeBody(page, { new_password: newPassword, new_password_confirm: newPassword }),
      {
        'content-type': 'application/x-www-form-urlencoded',
        'content-encoding': 'gzip',
      },
    );

    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.status).toBeLessThan(500);
    expect(refused.document.querySelector('html')?.getAttribute('lang')).toBe('de');
    await expectUnchanged(before);
  });

  it('refuses a password over 256 characters by the policy, naming the rule', async () => {
    const page = await changePage();
    const before = (await storedAccount(test, newcomer.account._id)).password;
    const long = `A1!${'x'.repeat(300)}`;

    const refused = await postRaw(
      browser,
      page,
      changeBody(page, { new_password: long, new_password_confirm: long }),
    );

    expect(refused.status).toBe(400);
    expect(refused.document.querySelector('#new_password-error')?.textContent).toBe(
      'Es ist länger als 256 Zeichen.',
    );
    await expectUnchanged(before);
  });

  it('still changes the password after all refused attempts', async () => {
    const page = await changePage();

    const callback = await browser.submit(
      page,
      {
        current_password: newcomer.password,
        new_password: newPassword,
        new_password_confirm: newPassword,
      },
      client.redirectUri,
    );

    expect(callback).toBeInstanceOf(URL);
    expect((await storedAccount(test, newcomer.account._id)).password.mustChange).toBe(false);
    expect(
      await auditEvents(test, {
        action: 'password.changed',
        'target.accountId': newcomer.account._id,
      }),
    ).toHaveLength(1);
  });
});
