/**
 * Arbitrary input on the sign-in pages: the sign-in form, the forced password change, the
 * interaction address and the console's sign-in addresses. Every answer is a German page
 * without internals and below 500, and a refused form changes nothing that is stored.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { asPage, Browser, type Page } from '../support/browser.ts';
import { credentials, formOf, openSignIn, postRaw, storedAccount } from '../support/flows.ts';
import {
  answer,
  encodeFields,
  expectGermanPage,
  fieldValue,
  hostileString,
  hugeString,
  queryValue,
  runs,
  single,
  type FieldValue,
} from '../support/property.ts';
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
let tenantId: string;
let person: TestAccount;

beforeAll(async () => {
  test = await startTestServer();
  client = await createClient(test);
  tenantId = (await createTenant(test)).id;
  person = await createAccount(test, tenantId);
});
afterAll(() => test.close());

/** The strings a form holds, which the page may show again. */
const echoes = (fields: Record<string, FieldValue>) =>
  Object.values(fields).flatMap((field) =>
    field.kind === 'text' ? field.values : field.kind === 'bracketed' ? [field.value] : [],
  );

const statusOf = (page: Page) => ({
  status: page.status,
  contentType: 'text/html',
  body: page.html,
});

describe('the sign-in form', () => {
  let signIn: { browser: Browser; login: Page };
  beforeAll(async () => {
    signIn = await openSignIn(client);
  });

  it('answers any tenant, username and password with a German refusal and signs nobody in', async () => {
    const accountsBefore = await test.services.db.collection('accounts').countDocuments();
    await fc.assert(
      fc.asyncProperty(
        fc.record({ tenant: fieldValue(), username: fieldValue(), password: fieldValue() }),
        async (fields) => {
          const csrf = formOf(signIn.login).hidden.csrf!;
          const reply = await postRaw(
            signIn.browser,
            signIn.login,
            `csrf=${encodeURIComponent(csrf)}&${encodeFields(fields)}`,
          );
          expect(reply.location).toBeNull();
          expect([400, 401, 403, 429]).toContain(reply.status);
          expectGermanPage({ ...statusOf(reply), contentType: 'text/html' }, echoes(fields));
          expect(reply.document.querySelector('form[action$="/login"]')).not.toBeNull();
        },
      ),
      runs('sign-in fields', 60),
    );
    expect(await test.services.db.collection('accounts').countDocuments()).toBe(accountsBefore);
    expect((await storedAccount(test, person.account._id)).lockout.count).toBe(0);
  }, 120_000);

  it('refuses a wrong or missing CSRF token with a German page', async () => {
    await fc.assert(
      fc.asyncProperty(fieldValue(), async (csrf) => {
        const reply = await postRaw(
          signIn.browser,
          signIn.login,
          `${encodeFields({ csrf })}&tenant=${tenantId}&username=${person.username}&password=x`,
        );
        expect(reply.status).toBe(403);
        expectGermanPage(statusOf(reply), echoes({ csrf }));
      }),
      runs('sign-in csrf', 30),
    );
  }, 60_000);

  it('refuses 100 kB in any field as too large, in German', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('tenant', 'username', 'password', 'csrf'),
        hugeString,
        async (name, huge) => {
          const fields = { ...credentials(person), [name]: huge };
          const body = encodeFields(
            Object.fromEntries(
              Object.entries(fields).map(([key, value]) => [
                key,
                { kind: 'text', values: [value] },
              ]),
            ),
          );
          const reply = await postRaw(signIn.browser, signIn.login, body);
          expect(reply.status).toBe(413);
          expectGermanPage(statusOf(reply));
        },
      ),
      runs('sign-in huge', 8),
    );
  }, 60_000);
});

describe('the interaction address', () => {
  it('answers any uid and step with a German page', async () => {
    const browser = new Browser();
    await fc.assert(
      fc.asyncProperty(
        hostileString,
        fc.constantFrom('', '/login', '/password', '/abort'),
        fc.constantFrom('GET', 'POST'),
        async (uid, step, method) => {
          const path = `/interaction/${encodeURIComponent(Buffer.from(uid).toString())}${step}`;
          const response = await browser.request(`${test.issuer}${path}`, {
            method,
            ...(method === 'POST'
              ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b' }
              : {}),
          });
          const reply = await answer(response);
          if (reply.status >= 300 && reply.status < 400) return;
          expectGermanPage(reply, [uid]);
        },
      ),
      runs('interaction uid', 40),
    );
  }, 60_000);
});

describe('the forced password change', () => {
  /** A person with a one-time password, signed in up to the password-change page. */
  async function changePage() {
    const fresh = await createAccount(test, tenantId, {}, { initial: true });
    const { browser, login } = await openSignIn(client);
    const page = asPage(await browser.submit(login, credentials(fresh)));
    expect(page.document.querySelector('form[action$="/password"]')).not.toBeNull();
    return { fresh, browser, page };
  }

  it('answers any new password and confirmation in German; only a valid pair changes it', async () => {
    let current = await changePage();
    await fc.assert(
      fc.asyncProperty(
        fieldValue(),
        fc.oneof(fc.constant('same' as const), fieldValue()),
        async (password, confirmation) => {
          const before = await storedAccount(test, current.fresh.account._id);
          const fields = {
            new_password: password,
            new_password_confirm: confirmation === 'same' ? password : confirmation,
          };
          const csrf = formOf(current.page).hidden.csrf!;
          const reply = await postRaw(
            current.browser,
            current.page,
            `csrf=${encodeURIComponent(csrf)}&${encodeFields(fields)}`,
          );
          const after = await storedAccount(test, current.fresh.account._id);
          if (reply.status === 303) {
            // Only one string that passes the policy, typed twice, may change the password.
            current = await changePage();
            expect(single(password)).toBeDefined();
            expect(single(fields.new_password_confirm)).toBe(single(password));
            expect(after.password.mustChange).toBe(false);
            return;
          }
          expect([400, 413]).toContain(reply.status);
          expectGermanPage(statusOf(reply), echoes(fields));
          expect(after.password.hash).toBe(before.password.hash);
          expect(after.password.mustChange).toBe(true);
        },
      ),
      runs('password change fields', 40),
    );
  }, 120_000);
});

describe('the console sign-in addresses', () => {
  it('answers any return path and callback parameters without a fault', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          return: fieldValue(),
          code: fieldValue(),
          state: fieldValue(),
          error: fieldValue(),
        }),
        fc.constantFrom('/console/login', '/console/callback', '/console/signed-out'),
        async (fields, path) => {
          const browser = new Browser();
          const query = encodeFields(fields);
          const response = await browser.request(`${test.issuer}${path}?${query}`);
          const reply = await answer(response);
          if (path === '/console/login' && reply.status !== 431) {
            expect(reply.status).toBe(303);
            const location = new URL(response.headers.get('location')!, test.issuer);
            expect(location.origin).toBe(test.issuer);
            expect(location.pathname).toBe('/auth');
            return;
          }
          // Node's parser refuses more than 16 kB of URL and headers: a German page too.
          if (reply.status !== 431)
            expect(path === '/console/callback' ? 400 : 200).toBe(reply.status);
          expectGermanPage(reply, echoes(fields));
        },
      ),
      runs('console sign-in addresses', 40),
    );
  }, 60_000);

  it('returns after signing in only to a path of the console', async () => {
    await fc.assert(
      fc.asyncProperty(queryValue, async (target) => {
        const browser = new Browser();
        const start = await browser.request(
          `${test.issuer}/console/login?return=${encodeURIComponent(Buffer.from(target).toString())}`,
        );
        expect(start.status).toBe(303);
        const login = asPage(
          await browser.visit(new URL(start.headers.get('location')!, test.issuer).href),
        );
        const done = await postRaw(
          browser,
          login,
          `csrf=${encodeURIComponent(formOf(login).hidden.csrf!)}&${new URLSearchParams(credentials(person)).toString()}`,
        );
        // Through the provider's redirects to the console's callback, which sends us on.
        let location = done.location!;
        for (let hops = 0; hops < 8; hops += 1) {
          const url = new URL(location, test.issuer);
          const next = await browser.request(url.href);
          location = next.headers.get('location') ?? '';
          if (url.pathname === '/console/callback') break;
        }
        expect(location).toMatch(/^\/(admin|account)(?:[/?]|$)/);
        expect(location).not.toMatch(/^\/\/|\\/);
      }),
      runs('console return path', 25),
    );
  }, 120_000);
});
