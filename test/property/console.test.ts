/**
 * Arbitrary input on the account console: the query parameters of the admin pages, the
 * fields of every admin form and of the self-service password form. Every answer is a
 * German page below 500 without internals, and a refused form leaves the stored accounts
 * as they were.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import type { Browser, Page } from '../support/browser.ts';
import { signInToConsole } from '../support/console.ts';
import { formOf, storedAccount } from '../support/flows.ts';
import {
  answer,
  encodeFields,
  expectGermanPage,
  fieldValue,
  hostileString,
  queryValue,
  runs,
  type Answer,
  type FieldValue,
} from '../support/property.ts';
import {
  createAccount,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestServer,
} from '../support/server.ts';

/** The admins' tenant and the account their forms act on, known before the server starts. */
const tenantId = '05111000';
const targetName = 'ziel.person';

let test: TestServer;
let admin: { browser: Browser; page: Page; csrf: string };
let operator: { browser: Browser; page: Page; csrf: string };
let target: TestAccount;

/** A console session of `person`, with a CSRF token for its forms. */
async function consoleOf(person: TestAccount, path: string) {
  const { browser, page } = await signInToConsole(test, person, path);
  return { browser, page, csrf: formOf(page, 'form[method=post]').hidden.csrf! };
}

beforeAll(async () => {
  test = await startTestServer();
  await createTenant(test, tenantId);
  const admins = await Promise.all([
    createAccount(test, tenantId, { roles: ['local_admin'] }),
    createAccount(test, tenantId, { roles: ['local_admin'] }),
  ]);
  target = await createAccount(test, tenantId, { username: targetName });
  const operatorAccount = await createAccount(test, (await createTenant(test)).id, {
    roles: ['operator'],
  });
  admin = await consoleOf(admins[0], '/admin/accounts');
  operator = await consoleOf(operatorAccount, '/admin/tenants');
});
afterAll(() => test.close());

const echoes = (fields: Record<string, FieldValue>) =>
  Object.values(fields).flatMap((field) =>
    field.kind === 'text'
      ? field.values
      : field.kind === 'bracketed'
        ? [field.value]
        : [Buffer.from(field.kind === 'bytes' ? field.bytes : []).toString()],
  );

async function get(session: { browser: Browser }, path: string): Promise<Answer> {
  return answer(await session.browser.request(`${test.issuer}${path}`));
}

async function post(
  session: { browser: Browser; csrf: string },
  path: string,
  fields: Record<string, FieldValue>,
): Promise<Answer & { location: string | null }> {
  const response = await session.browser.request(`${test.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `csrf=${encodeURIComponent(session.csrf)}&${encodeFields(fields)}`,
  });
  return { ...(await answer(response)), location: response.headers.get('location') };
}

const accountsOf = (tenant: string) =>
  test.services.db.collection('accounts').countDocuments({ tenantId: tenant });

describe('the query parameters of the admin pages', () => {
  const listParameters = fc.record({
    q: fieldValue(queryValue),
    state: fieldValue(fc.oneof(queryValue, fc.constantFrom('active', 'locked', 'deactivated'))),
    permission: fieldValue(fc.oneof(queryValue, fc.constant('meldeverfahren'))),
    admin: fieldValue(fc.oneof(queryValue, fc.constant('yes'))),
    after: fieldValue(queryValue),
    tenant: fieldValue(fc.oneof(queryValue, fc.constant(tenantId))),
  });
  const auditParameters = fc.record({
    account: fieldValue(fc.oneof(queryValue, fc.constant(targetName))),
    action: fieldValue(fc.oneof(queryValue, fc.constant('login'))),
    outcome: fieldValue(fc.oneof(queryValue, fc.constantFrom('success', 'failure'))),
    before: fieldValue(queryValue),
    tenant: fieldValue(fc.oneof(queryValue, fc.constant(tenantId))),
    done: fieldValue(queryValue),
  });

  for (const who of ['local admin', 'operator'] as const) {
    it(`answers any filter of the account list and the audit trail for a ${who}`, async () => {
      const session = who === 'operator' ? operator : admin;
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            listParameters.map((query) => ['/admin/accounts', query] as const),
            listParameters.map((query) => ['/admin/accounts/new', query] as const),
            auditParameters.map((query) => ['/admin/audit', query] as const),
            auditParameters.map((query) => ['/admin/audit.csv', query] as const),
            auditParameters.map((query) => ['/admin/tenants', query] as const),
          ),
          async ([path, query]) => {
            const reply = await get(session, `${path}?${encodeFields(query)}`);
            if (path === '/admin/audit.csv' && reply.status === 200) {
              expect(reply.contentType).toMatch(/^text\/csv/);
              return;
            }
            // Another tenant is "not found" for a local admin, an unknown one for operators.
            expect([200, 404]).toContain(reply.status);
            expectGermanPage(reply, echoes(query));
          },
        ),
        runs(`admin query parameters, ${who}`, 50),
      );
    }, 120_000);
  }

  it('answers any account id, on every page and action of an account, in German', async () => {
    await fc.assert(
      fc.asyncProperty(
        hostileString,
        fc.constantFrom('', '/retire', '/name', '/unlock', '/sessions', '/password', '/deactivate'),
        fc.constantFrom('GET', 'POST'),
        async (id, step, method) => {
          const path = `/admin/accounts/${encodeURIComponent(Buffer.from(id).toString())}${step}`;
          const reply = method === 'GET' ? await get(admin, path) : await post(admin, path, {});
          if (reply.status === 405 || reply.status === 404) {
            expectGermanPage(reply, [id]);
            return;
          }
          expect([200, 400]).toContain(reply.status);
          expectGermanPage(reply, [id]);
        },
      ),
      runs('admin account ids', 40),
    );
  }, 60_000);
});

describe('the admin forms', () => {
  const text = fieldValue(hostileString);

  it('creates an account from any fields only when they are valid, and answers in German', async () => {
    const tenant = (await createTenant(test)).id;
    const second = await createAccount(test, tenant, { roles: ['local_admin'] });
    await createAccount(test, tenant, { roles: ['local_admin'] });
    const session = await consoleOf(second, '/admin/accounts/new');
    const othersBefore = await accountsOf(tenantId);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          username: text,
          given_name: fieldValue(fc.oneof(hostileString, fc.constant('Erika'))),
          family_name: fieldValue(fc.oneof(hostileString, fc.constant('Muster'))),
          email: text,
          permissions: fieldValue(
            fc.oneof(hostileString, fc.constantFrom('meldeverfahren', 'zahlungsmitteilungen')),
          ),
          local_admin: fieldValue(fc.oneof(hostileString, fc.constant('yes'))),
          tenant: fieldValue(fc.oneof(hostileString, fc.constant(tenantId))),
        }),
        async (fields) => {
          const before = await accountsOf(tenant);
          const reply = await post(session, '/admin/accounts', fields);
          expect([200, 400, 409]).toContain(reply.status);
          expectGermanPage(reply, echoes(fields));
          const created = reply.status === 200;
          if (created) expect(reply.body).toContain('Einmal-Kennwort');
          expect(await accountsOf(tenant)).toBe(before + (created ? 1 : 0));
          expect(await accountsOf(tenantId)).toBe(othersBefore);
        },
      ),
      runs('admin create account', 50),
    );
  }, 120_000);

  it('renames an account only with two valid names, and answers any other in German', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          given_name: fieldValue(fc.oneof(hostileString, fc.constant('Erika'))),
          family_name: fieldValue(fc.oneof(hostileString, fc.constant('Muster'))),
        }),
        async (fields) => {
          const before = await storedAccount(test, target.account._id);
          const reply = await post(admin, `/admin/accounts/${target.account._id}/name`, fields);
          const after = await storedAccount(test, target.account._id);
          if (reply.status === 303) {
            expect(reply.location).toBe(`/admin/accounts/${target.account._id}?done=renamed`);
            return;
          }
          expect([400, 409]).toContain(reply.status);
          expectGermanPage(reply, echoes(fields));
          expect(after).toEqual(before);
        },
      ),
      runs('admin rename', 40),
    );
  }, 120_000);

  it('answers any value of the permission, role and confirmation forms in German', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.tuple(
            fc.constant('permissions'),
            fc.constant('permissions'),
            fieldValue(
              fc.oneof(hostileString, fc.constantFrom('meldeverfahren', 'zahlungsmitteilungen')),
            ),
          ),
          fc.tuple(fc.constant('local-admin'), fc.constant('grant'), fieldValue()),
          fc.tuple(fc.constant('retire'), fc.constant('confirm'), fieldValue()),
        ),
        async ([action, name, value]) => {
          const before = await storedAccount(test, target.account._id);
          const reply = await post(admin, `/admin/accounts/${target.account._id}/${action}`, {
            [name]: value,
          });
          if (reply.status === 303) {
            // Only the valid values act: known permissions, or grant=yes/no.
            expect(action === 'retire').toBe(false);
            if (action === 'local-admin')
              await post(admin, `/admin/accounts/${target.account._id}/local-admin`, {
                grant: { kind: 'text', values: ['no'] },
              });
            return;
          }
          expect([400, 409]).toContain(reply.status);
          expectGermanPage(reply, echoes({ [name]: value }));
          expect(await storedAccount(test, target.account._id)).toEqual(before);
        },
      ),
      runs('admin permission role confirm', 40),
    );
    expect((await storedAccount(test, target.account._id)).state).toBe('active');
  }, 120_000);
});

describe('the self-service password form', () => {
  it('answers any current, new and repeated password in German and changes nothing', async () => {
    const person = await createAccount(test, tenantId);
    const session = await consoleOf(person, '/account/password');
    const before = await storedAccount(test, person.account._id);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          current_password: fieldValue(),
          new_password: fieldValue(),
          new_password_confirm: fieldValue(),
        }),
        async (fields) => {
          const reply = await post(session, '/account/password', fields);
          // A wrong current password counts towards the lock, which then answers 401 too.
          expect([400, 401, 413, 429]).toContain(reply.status);
          expectGermanPage(reply, echoes(fields));
          const after = await storedAccount(test, person.account._id);
          expect(after.password.hash).toBe(before.password.hash);
        },
      ),
      runs('self-service password', 40),
    );
  }, 120_000);
});
