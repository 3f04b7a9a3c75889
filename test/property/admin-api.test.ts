/**
 * Arbitrary input on the admin JSON API: every property of every body, every query
 * parameter, wrong types, unknown properties and malformed documents. Every refusal is a
 * German RFC 9457 problem below 500, and a refused change stores nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { signInForTokens, storedAccount } from '../support/flows.ts';
import {
  answer,
  encodeFields,
  expectNoFault,
  expectProblem,
  fieldValue,
  hostileString,
  hugeString,
  jsonValue,
  queryValue,
  runs,
  type FieldValue,
} from '../support/property.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let tenantId: string;
let token: string;
let target: TestAccount;

beforeAll(async () => {
  test = await startTestServer();
  const client = await createClient(test, { adminApi: true });
  tenantId = (await createTenant(test)).id;
  const admin = await createAccount(test, tenantId, { roles: ['local_admin'] });
  await createAccount(test, tenantId, { roles: ['local_admin'] });
  target = await createAccount(test, tenantId);
  token = (await signInForTokens(client, admin, { scope: 'openid admin' })).tokens.access_token;
});
afterAll(() => test.close());

async function call(method: string, path: string, body?: string, contentType = 'application/json') {
  const response = await fetch(`${test.issuer}/admin/api${path}`, {
    method,
    headers: {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': contentType }),
    },
    ...(body === undefined ? {} : { body }),
  });
  return answer(response);
}

/** Every string of a JSON value, keys included: what the answer may echo. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([key, entry]) => [key, ...strings(entry)]);
  return [];
}

/** A body of the operation's properties, each present with a valid, hostile or wrong value. */
function bodyOf(properties: Record<string, fc.Arbitrary<unknown>>) {
  const entries = Object.entries(properties).map(([name, valid]) => [
    name,
    fc.oneof({ weight: 2, arbitrary: valid }, { weight: 3, arbitrary: jsonValue }),
  ]);
  return fc.oneof(
    { weight: 8, arbitrary: fc.record(Object.fromEntries(entries), { requiredKeys: [] }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.record(Object.fromEntries(entries)), hostileString, jsonValue)
        .map(([body, key, value]) => ({ ...body, [key]: value })),
    },
    { weight: 1, arbitrary: jsonValue },
  );
}

const permission = fc.constantFrom('meldeverfahren', 'zahlungsmitteilungen');
const operations = {
  create: bodyOf({
    username: fc.constantFrom('neu.person', 'Müller'),
    givenName: fc.constant('Erika'),
    familyName: fc.constant('Muster'),
    email: fc.constantFrom('erika@example.org', null),
    permissions: fc.array(permission, { maxLength: 2 }),
    localAdmin: fc.boolean(),
  }),
  rename: bodyOf({ givenName: fc.constant('Erika'), familyName: fc.constant('Muster') }),
  permissions: bodyOf({ permissions: fc.array(permission, { maxLength: 2 }) }),
  state: bodyOf({ state: fc.constantFrom('active', 'deactivated'), confirm: fc.boolean() }),
};

const accounts = () => test.services.db.collection('accounts').countDocuments({ tenantId });

describe('the request bodies', () => {
  it('refuses any invalid new account with a German problem and creates nothing', async () => {
    await fc.assert(
      fc.asyncProperty(operations.create, async (body) => {
        const before = await accounts();
        const reply = await call('POST', `/tenants/${tenantId}/accounts`, JSON.stringify(body));
        if (reply.status === 201) {
          expectNoFault(reply, strings(body));
          expect(await accounts()).toBe(before + 1);
          return;
        }
        expect([400, 409]).toContain(reply.status);
        expectProblem(reply, strings(body));
        expect(await accounts()).toBe(before);
      }),
      runs('api create account', 60),
    );
  }, 120_000);

  it('refuses any invalid rename, permission set or state change and changes nothing', async () => {
    const path = `/accounts/${target.account._id}`;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          operations.rename.map((body) => ['/name', body] as const),
          operations.permissions.map((body) => ['/permissions', body] as const),
          operations.state.map((body) => ['/state', body] as const),
        ),
        async ([step, body]) => {
          const before = await storedAccount(test, target.account._id);
          const reply = await call('PUT', `${path}${step}`, JSON.stringify(body));
          if (reply.status === 200) {
            expectNoFault(reply, strings(body));
            // Back to the start, so that every run acts on an active account.
            await call('PUT', `${path}/state`, JSON.stringify({ state: 'active' }));
            return;
          }
          expect([400, 409]).toContain(reply.status);
          expectProblem(reply, strings(body));
          expect(await storedAccount(test, target.account._id)).toEqual(before);
        },
      ),
      runs('api account changes', 60),
    );
    expect((await storedAccount(test, target.account._id)).state).not.toBe('retired');
  }, 120_000);

  it('refuses malformed, foreign and oversized documents with a German problem', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          hostileString,
          hugeString,
          fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
          fc.constantFrom(
            '{',
            '{"a":',
            '{"__proto__":{"x":1}}',
            '{"constructor":{"prototype":{}}}',
            'null',
            '[]',
            '"x"',
            '1',
            '\ufeff{}',
          ),
        ),
        fc.constantFrom(
          'application/json',
          'application/json; charset=latin1',
          'application/x-www-form-urlencoded',
          'text/plain',
          'application/problem+json',
        ),
        fc.constantFrom(
          ['POST', `/tenants/0/accounts`],
          ['PUT', `/accounts/x/name`],
          ['PUT', `/accounts/x/state`],
          ['DELETE', `/accounts/x/lock`],
        ),
        async (raw, contentType, [method, path]) => {
          const before = await accounts();
          const real = path!
            .replace('/0/', `/${tenantId}/`)
            .replace('/x/', `/${target.account._id}/`);
          const reply = await call(method!, real, raw, contentType);
          if (reply.status < 300) {
            expectNoFault(reply, [raw]);
            return;
          }
          expectProblem(reply, [raw]);
          expect(await accounts()).toBe(before);
        },
      ),
      runs('api raw bodies', 50),
    );
  }, 120_000);
});

describe('the query parameters', () => {
  const query = (names: string[], valid: Record<string, fc.Arbitrary<string>>) =>
    fc.record(
      Object.fromEntries(
        [...names, 'unknown'].map((name) => [
          name,
          fieldValue(valid[name] ? fc.oneof(valid[name], queryValue) : queryValue),
        ]),
      ),
    ) as fc.Arbitrary<Record<string, FieldValue>>;

  it('answers any account search and audit filter with a page or a German problem', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          query(['search', 'state', 'permission', 'localAdmin', 'after', 'limit'], {
            state: fc.constantFrom('active', 'locked'),
            localAdmin: fc.constantFrom('true', 'false'),
            limit: fc.integer({ min: -5, max: 600 }).map(String),
          }).map((fields) => ['accounts', fields] as const),
          query(['account', 'action', 'outcome', 'before', 'limit'], {
            outcome: fc.constantFrom('success', 'failure'),
            before: fc.constant('0123456789abcdef01234567'),
            limit: fc.integer({ min: -5, max: 600 }).map(String),
          }).map((fields) => ['audit', fields] as const),
        ),
        async ([resource, fields]) => {
          const reply = await call(
            'GET',
            `/tenants/${tenantId}/${resource}?${encodeFields(fields)}`,
          );
          const echoed = Object.values(fields).flatMap((field) =>
            field.kind === 'text' ? field.values : [],
          );
          if (reply.status === 200) {
            expectNoFault(reply, echoed);
            return;
          }
          expect(reply.status === 400 || reply.status === 431).toBe(true);
          if (reply.status === 400) expectProblem(reply, echoed);
        },
      ),
      runs('api queries', 60),
    );
  }, 120_000);

  it('answers any path parameter with a German problem', async () => {
    await fc.assert(
      fc.asyncProperty(
        hostileString,
        fc.constantFrom(
          ['GET', '/tenants/:id'],
          ['GET', '/tenants/:id/accounts'],
          ['GET', '/tenants/:id/audit'],
          ['GET', '/accounts/:id'],
          ['DELETE', '/accounts/:id/sessions'],
          ['POST', '/accounts/:id/one-time-password'],
        ),
        async (id, [method, path]) => {
          const encoded = encodeURIComponent(Buffer.from(id).toString());
          const reply = await call(method!, path!.replace(':id', encoded));
          if (reply.status < 300) return expectNoFault(reply, [id]);
          expectProblem(reply, [id]);
        },
      ),
      runs('api path parameters', 40),
    );
  }, 60_000);
});
