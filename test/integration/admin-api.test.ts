import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';

import { adminApi, FALLBACK_ROUTE } from '../../src/admin/api.ts';
import { openApiPath } from '../../src/admin/openapi.ts';
import { ConsoleSignIn } from '../../src/console/sign-in.ts';
import { Views } from '../../src/http/views.ts';
import { signInToConsole } from '../support/console.ts';
import { auditEvents, signInForTokens, storedAccount, updateAccount } from '../support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';
import type { Browser } from '../support/browser.ts';

let server: TestServer;
let client: TestClient;
let relyingParty: TestClient;
let tenantA: string;
let tenantB: string;
let adminA: TestAccount;
let adminA2: TestAccount;
let adminB: TestAccount;
let operator: TestAccount;
let tokenA: string;
let tokenB: string;
let tokenOperator: string;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface CallOptions {
  method?: string;
  token?: string | null;
  body?: unknown;
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** One request to the admin API; the body is sent as JSON unless `raw` is given. */
async function api(path: string, options: CallOptions = {}) {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  const token = options.token === undefined ? tokenA : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | Uint8Array | undefined = options.raw;
  if (options.body !== undefined && options.body !== null) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${server.issuer}/admin/api${path}`, {
    method: options.method ?? 'GET',
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: (text ? JSON.parse(text) : null) as Json,
  };
}

/** An access token of `person` from the authorization code flow, for `scope`. */
async function accessToken(person: TestAccount, scope = 'openid admin') {
  const { tokens } = await signInForTokens(client, person, { scope });
  return tokens.access_token;
}

/** Expects a problem document of `status` and `code`. */
function expectProblem(
  response: Awaited<ReturnType<typeof api>>,
  status: number,
  code: string,
): Json {
  expect({ status: response.status, code: response.json?.code }).toEqual({ status, code });
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.json).toMatchObject({ status, type: `urn:flueag-idp:problem:${code}` });
  expect(typeof response.json.title).toBe('string');
  expect(response.json.detail).not.toBe(code);
  return response.json;
}

const snapshot = async (accountId: string) =>
  JSON.stringify(
    await server.services.db.collection('accounts').findOne({ _id: accountId as never }),
  );

beforeAll(async () => {
  server = await startTestServer();
  client = await createClient(server, { adminApi: true });
  relyingParty = await createClient(server);
  tenantA = (await createTenant(server)).id;
  tenantB = (await createTenant(server)).id;
  adminA = await createAccount(server, tenantA, { roles: ['local_admin'], username: 'admin.a' });
  adminA2 = await createAccount(server, tenantA, { roles: ['local_admin'] });
  adminB = await createAccount(server, tenantB, { roles: ['local_admin'] });
  await createAccount(server, tenantB, { roles: ['local_admin'] });
  operator = await createAccount(server, tenantB, { roles: ['operator'] });
  [tokenA, tokenB, tokenOperator] = await Promise.all([
    accessToken(adminA),
    accessToken(adminB),
    accessToken(operator),
  ]);
});
afterAll(() => server.close());

describe('the OpenAPI document', () => {
  test('is served without credentials and describes every route of the router', async () => {
    const response = await api('/openapi.json', { token: null });
    expect(response.status).toBe(200);
    expect(response.json.openapi).toBe('3.1.0');

    const { services } = server;
    const router = adminApi({
      provider: server.server.provider,
      accounts: services.accounts,
      admin: services.admin,
      auditQuery: services.auditQuery,
      consoleSignIn: new ConsoleSignIn({
        provider: server.server.provider,
        db: services.db,
        issuer: server.issuer,
        accounts: services.accounts,
        sessions: services.consoleSessions,
        views: new Views({ support: services.config.support }),
        interactionTtlSeconds: 600,
      }),
    });
    const registered = router.stack
      .filter((layer) => layer.name !== FALLBACK_ROUTE)
      .flatMap((layer) =>
        layer.methods
          .filter((method) => method !== 'HEAD')
          .map((method) => `${method} ${openApiPath(layer.path as string)}`),
      )
      .sort();
    const documented = Object.entries(response.json.paths as Record<string, Json>)
      .flatMap(([path, methods]) =>
        Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();
    expect(documented).toEqual(registered);
    expect(registered.length).toBeGreaterThanOrEqual(15);

    const create = response.json.paths['/admin/api/tenants/{tenantId}/accounts'].post;
    expect(create.responses['201']).toBeDefined();
    expect(response.json.components.schemas.NewAccount).toMatchObject({
      type: 'object',
      additionalProperties: false,
      required: expect.arrayContaining(['username', 'givenName', 'familyName']),
    });
    expect(response.json.components.schemas.Problem.required).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'code']),
    );
  });

  test('unknown paths and methods answer with problems', async () => {
    expectProblem(await api('/nothing-here'), 404, 'error.not_found');
    const wrong = await api(`/accounts/${adminA.account._id}`, { method: 'PATCH' });
    expectProblem(wrong, 405, 'error.method_not_allowed');
    expect(wrong.headers.get('allow')).toContain('GET');
  });

  test('every code the API can answer with has a German and an English text', () => {
    const de = JSON.parse(readFileSync('interactions/texts/de.json', 'utf8')) as Json;
    const en = JSON.parse(readFileSync('interactions/texts/en.json', 'utf8')) as Json;
    expect(Object.keys(en).sort()).toEqual(Object.keys(de).sort());
    const read = (file: string) => readFileSync(file, 'utf8');
    const codes = new Set<string>(['property.unknown']);
    const thrown =
      /(?:AppError\(\s*\d+,\s*|notFound\(|conflict\(|AuthenticationError\(\s*\d+,\s*|\[\d{3}, )'([^']+)'/g;
    for (const file of [
      'src/admin/api.ts',
      'src/admin/api-auth.ts',
      'src/admin/problems.ts',
      'src/admin/service.ts',
      'src/accounts/service.ts',
      'src/db/connection.ts',
      'src/http/security.ts',
    ])
      for (const [, code] of read(file).matchAll(thrown)) codes.add(code!);
    // Every message of the API's schemas is a code.
    for (const [, code] of read('src/admin/api-schemas.ts').matchAll(/'([a-z_]+\.[a-z_]+)'/g))
      codes.add(code!);
    for (const [, code] of read('src/validation.ts').matchAll(
      /'((?:username|given_name|family_name|email|permission)\.[a-z_]+)'/g,
    ))
      codes.add(code!);
    const missing = [...codes].filter((code) => !(code in de) || !(code in en));
    expect(missing).toEqual([]);
  });
});

describe('authorisation', () => {
  test('no credentials: 401 with a Bearer challenge', async () => {
    const response = await api(`/tenants/${tenantA}/accounts`, { token: null });
    expectProblem(response, 401, 'token.missing');
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  test('an unknown or malformed token: 401 invalid_token', async () => {
    for (const token of ['not-a-token', 'a b c']) {
      const response = await api(`/tenants/${tenantA}/accounts`, { token });
      expectProblem(response, 401, 'token.invalid');
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  test('an expired token: 401', async () => {
    const token = await accessToken(adminA);
    expect((await api(`/tenants/${tenantA}`, { token })).status).toBe(200);
    // As time would have: the stored payload says the token expired a minute ago.
    const tokens = server.services.db.collection('oidc_access_token');
    const record = (await tokens.findOne({ _id: token as never }))!;
    const payload = JSON.parse(record.data as string) as { exp: number };
    payload.exp = Math.floor(Date.now() / 1000) - 60;
    await tokens.updateOne({ _id: token as never }, { $set: { data: JSON.stringify(payload) } });
    expectProblem(await api(`/tenants/${tenantA}`, { token }), 401, 'token.invalid');
  });

  test('a revoked token: 401', async () => {
    const token = await accessToken(adminA);
    await oidc.tokenRevocation(client.config, token);
    expectProblem(await api(`/tenants/${tenantA}`, { token }), 401, 'token.invalid');
  });

  test('a token of a non-admin: 403, and the admin scope is never granted to them', async () => {
    const person = await createAccount(server, tenantA);
    const { tokens } = await signInForTokens(client, person, { scope: 'openid admin' });
    expect(tokens.scope?.split(' ')).not.toContain('admin');
    expectProblem(
      await api(`/tenants/${tenantA}`, { token: tokens.access_token }),
      403,
      'admin.not_allowed',
    );
  });

  test('a relying party not registered for the admin API never gets the admin scope', async () => {
    const { tokens } = await signInForTokens(relyingParty, adminA, { scope: 'openid admin' });
    expect(tokens.scope?.split(' ')).not.toContain('admin');
    expectProblem(
      await api(`/tenants/${tenantA}`, { token: tokens.access_token }),
      403,
      'token.insufficient_scope',
    );
  });

  test('an admin token without the admin scope: 403 insufficient_scope', async () => {
    const token = await accessToken(adminA, 'openid profile');
    const response = await api(`/tenants/${tenantA}`, { token });
    expectProblem(response, 403, 'token.insufficient_scope');
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  test('tokens with the admin scope keep working elsewhere, and other scopes still work', async () => {
    const { tokens } = await signInForTokens(client, adminA, {
      scope: 'openid profile admin meldeverfahren',
    });
    expect(tokens.scope?.split(' ').sort()).toEqual([
      'admin',
      'meldeverfahren',
      'openid',
      'profile',
    ]);
    const claims = await oidc.fetchUserInfo(client.config, tokens.access_token, adminA.account._id);
    expect(claims).toMatchObject({ tenant_id: tenantA, permissions: ['meldeverfahren'] });

    const person = await createAccount(server, tenantA);
    const plain = await signInForTokens(client, person, {
      scope: 'openid profile zahlungsmitteilungen',
    });
    expect(plain.tokens.scope?.split(' ').sort()).toEqual([
      'openid',
      'profile',
      'zahlungsmitteilungen',
    ]);

    const discovery = await (
      await fetch(`${server.issuer}/.well-known/openid-configuration`)
    ).json();
    expect((discovery as Json).scopes_supported).toContain('admin');
  });

  test('the account is checked on every request: a withdrawn role or deactivation ends access', async () => {
    const helper = await createAccount(server, tenantA, { roles: ['local_admin'] });
    const token = await accessToken(helper);
    expect((await api(`/tenants/${tenantA}`, { token })).status).toBe(200);

    await server.services.accounts.removeRole(helper.account._id, 'local_admin', {
      actor: { kind: 'system' },
    });
    expectProblem(await api(`/tenants/${tenantA}`, { token }), 403, 'admin.not_allowed');

    await server.services.accounts.addRole(helper.account._id, 'local_admin', {
      actor: { kind: 'system' },
    });
    const again = await accessToken(helper);
    await updateAccount(server, helper.account._id, { 'password.mustChange': true });
    expectProblem(await api(`/tenants/${tenantA}`, { token: again }), 401, 'token.invalid');
  });

  describe('with the console session', () => {
    let browser: Browser;
    let csrf: string;

    const call = async (path: string, method = 'GET', headers: Record<string, string> = {}) => {
      const response = await browser.request(`${server.issuer}/admin/api${path}`, {
        method,
        headers: { accept: 'application/json', ...headers },
      });
      return { status: response.status, json: (await response.json()) as Json };
    };

    beforeAll(async () => {
      const signedIn = await signInToConsole(server, adminA2);
      browser = signedIn.browser;
      csrf = signedIn.page.document.querySelector('input[name=csrf]')!.getAttribute('value')!;
    });

    test('reads without a CSRF token', async () => {
      expect((await call(`/tenants/${tenantA}`)).status).toBe(200);
    });

    test('refuses a change without the CSRF header, performs it with it', async () => {
      const path = `/accounts/${adminA.account._id}/sessions`;
      const refused = await call(path, 'DELETE');
      expect(refused).toMatchObject({ status: 403, json: { code: 'csrf.invalid' } });
      const wrong = await call(path, 'DELETE', { 'x-csrf-token': 'forged' });
      expect(wrong.status).toBe(403);
      const done = await browser.request(`${server.issuer}/admin/api${path}`, {
        method: 'DELETE',
        headers: { 'x-csrf-token': csrf },
      });
      expect(done.status).toBe(204);
      tokenA = await accessToken(adminA);
    });

    test('a non-admin session: 403', async () => {
      const person = await createAccount(server, tenantA);
      const { browser: theirs } = await signInToConsole(server, person, '/account');
      const response = await theirs.request(`${server.issuer}/admin/api/tenants/${tenantA}`, {
        headers: { accept: 'application/json' },
      });
      expect(response.status).toBe(403);
      expect(((await response.json()) as Json).code).toBe('admin.not_allowed');
    });
  });
});

describe('the admin actions', () => {
  test('tenants: a local admin sees the own, an operator all', async () => {
    const own = await api('/tenants');
    expect(own.json.tenants.map((t: Json) => t.id)).toEqual([tenantA]);
    const all = await api('/tenants', { token: tokenOperator });
    expect(all.json.tenants.map((t: Json) => t.id)).toEqual(
      expect.arrayContaining([tenantA, tenantB]),
    );
    const detail = await api(`/tenants/${tenantA}`);
    expect(detail.json).toMatchObject({ id: tenantA, kind: 'gemeinde', needsMoreAdmins: false });
  });

  test('create an account: 201, the one-time password once, then read it', async () => {
    const created = await api(`/tenants/${tenantA}/accounts`, {
      method: 'POST',
      body: {
        username: 'Jörg.Neu',
        givenName: 'Jörg',
        familyName: 'Neumann',
        email: 'joerg@example.test',
        permissions: ['meldeverfahren'],
        localAdmin: false,
      },
    });
    expect(created.status).toBe(201);
    expect(created.json.initialPassword).toEqual(expect.any(String));
    expect(created.json.account).toMatchObject({
      username: 'Jörg.Neu',
      tenantId: tenantA,
      permissions: ['meldeverfahren'],
      initialPassword: true,
      state: 'active',
    });
    const id = created.json.account.id as string;
    expect(created.headers.get('location')).toBe(`/admin/api/accounts/${id}`);

    const read = await api(`/accounts/${id}`);
    expect(read.status).toBe(200);
    expect(JSON.stringify(read.json)).not.toContain(created.json.initialPassword);
    expect(read.json.passwordExpiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const again = await api(`/tenants/${tenantA}/accounts`, {
      method: 'POST',
      body: { username: 'jörg.neu', givenName: 'A', familyName: 'B' },
    });
    expectProblem(again, 409, 'username.taken');
    expect(
      await auditEvents(server, { action: 'account.created', 'target.accountId': id }),
    ).toHaveLength(1);
  });

  test('list, search, filter and page', async () => {
    await createAccount(server, tenantA, { username: 'list.one', familyName: 'Listig' });
    await createAccount(server, tenantA, {
      username: 'list.two',
      familyName: 'Listig',
      permissions: ['zahlungsmitteilungen'],
    });
    const found = await api(`/tenants/${tenantA}/accounts?search=listig`);
    expect(found.json.accounts.map((a: Json) => a.username)).toEqual(['list.one', 'list.two']);
    const first = await api(`/tenants/${tenantA}/accounts?search=listig&limit=1`);
    expect(first.json).toMatchObject({ total: 2, next: expect.any(String) });
    const second = await api(
      `/tenants/${tenantA}/accounts?search=listig&limit=1&after=${encodeURIComponent(first.json.next)}`,
    );
    expect(second.json.accounts.map((a: Json) => a.username)).toEqual(['list.two']);
    expect(second.json.next).toBeNull();
    const filtered = await api(
      `/tenants/${tenantA}/accounts?search=listig&permission=meldeverfahren&state=active`,
    );
    expect(filtered.json.accounts.map((a: Json) => a.username)).toEqual(['list.one']);
    const admins = await api(`/tenants/${tenantA}/accounts?localAdmin=true`);
    expect(admins.json.accounts.every((a: Json) => a.localAdmin)).toBe(true);
    expect(JSON.stringify(found.json)).not.toContain('hash');
  });

  test('rename keeps the history', async () => {
    const person = await createAccount(server, tenantA, { givenName: 'Anna', familyName: 'Alt' });
    const renamed = await api(`/accounts/${person.account._id}/name`, {
      method: 'PUT',
      body: { givenName: 'Anna', familyName: 'Neu' },
    });
    expect(renamed.status).toBe(200);
    expect(renamed.json).toMatchObject({ familyName: 'Neu' });
    expect(renamed.json.nameHistory[0]).toMatchObject({
      familyName: 'Alt',
      changedBy: adminA.account._id,
    });
  });

  test('withdrawing zahlungsmitteilungen makes the refresh token fail at once', async () => {
    const person = await createAccount(server, tenantA);
    const { tokens } = await signInForTokens(client, person, {
      scope: 'openid offline_access zahlungsmitteilungen',
    });
    expect(tokens.refresh_token).toBeDefined();
    const changed = await api(`/accounts/${person.account._id}/permissions`, {
      method: 'PUT',
      body: { permissions: ['meldeverfahren'] },
    });
    expect(changed.json.permissions).toEqual(['meldeverfahren']);
    await expect(oidc.refreshTokenGrant(client.config, tokens.refresh_token!)).rejects.toThrow();
    expect(
      await auditEvents(server, {
        action: 'account.permission_withdrawn',
        'target.accountId': person.account._id,
      }),
    ).toHaveLength(1);
  });

  test('grant and withdraw the local-admin role', async () => {
    const person = await createAccount(server, tenantA);
    const granted = await api(`/accounts/${person.account._id}/local-admin`, { method: 'PUT' });
    expect(granted.json.localAdmin).toBe(true);
    const withdrawn = await api(`/accounts/${person.account._id}/local-admin`, {
      method: 'DELETE',
    });
    expect(withdrawn.json.localAdmin).toBe(false);
  });

  test('deactivate, reactivate, retire only with confirmation, and never back', async () => {
    const person = await createAccount(server, tenantA);
    const { tokens } = await signInForTokens(client, person, { scope: 'openid offline_access' });
    const path = `/accounts/${person.account._id}/state`;
    const off = await api(path, { method: 'PUT', body: { state: 'deactivated' } });
    expect(off.json.state).toBe('deactivated');
    await expect(oidc.refreshTokenGrant(client.config, tokens.refresh_token!)).rejects.toThrow();
    expect((await api(path, { method: 'PUT', body: { state: 'active' } })).json.state).toBe(
      'active',
    );

    const unconfirmed = await api(path, { method: 'PUT', body: { state: 'retired' } });
    expect(expectProblem(unconfirmed, 400, 'input.invalid').errors.confirm[0].code).toBe(
      'admin.retire_unconfirmed',
    );
    expect((await storedAccount(server, person.account._id)).state).toBe('active');
    const retired = await api(path, { method: 'PUT', body: { state: 'retired', confirm: true } });
    expect(retired.json.state).toBe('retired');
    expectProblem(
      await api(path, { method: 'PUT', body: { state: 'active' } }),
      409,
      'account.retired',
    );
  });

  test('unlock reports whether there was a lock', async () => {
    const person = await createAccount(server, tenantA);
    await updateAccount(server, person.account._id, {
      'lockout.count': 5,
      'lockout.lockedAt': new Date(),
    });
    const before = await api(`/accounts/${person.account._id}`);
    expect(before.json.state).toBe('locked');
    const unlocked = await api(`/accounts/${person.account._id}/lock`, { method: 'DELETE' });
    expect(unlocked.json).toMatchObject({ unlocked: true, account: { state: 'active' } });
    const again = await api(`/accounts/${person.account._id}/lock`, { method: 'DELETE' });
    expect(again.json.unlocked).toBe(false);
  });

  test('a new one-time password', async () => {
    const person = await createAccount(server, tenantA);
    const issued = await api(`/accounts/${person.account._id}/one-time-password`, {
      method: 'POST',
    });
    expect(issued.status).toBe(201);
    expect(issued.json.initialPassword).toEqual(expect.any(String));
    expect(issued.json.account.initialPassword).toBe(true);
  });

  test('end all sessions: the refresh token fails', async () => {
    const person = await createAccount(server, tenantA);
    const { tokens } = await signInForTokens(client, person, { scope: 'openid offline_access' });
    const ended = await api(`/accounts/${person.account._id}/sessions`, { method: 'DELETE' });
    expect(ended.status).toBe(204);
    await expect(oidc.refreshTokenGrant(client.config, tokens.refresh_token!)).rejects.toThrow();
  });

  test('the audit trail, filtered and paged', async () => {
    const person = await createAccount(server, tenantA, { familyName: 'Protokoll' });
    for (const familyName of ['Eins', 'Zwei'])
      await api(`/accounts/${person.account._id}/name`, {
        method: 'PUT',
        body: { givenName: 'Erika', familyName },
      });
    const page = await api(
      `/tenants/${tenantA}/audit?account=${person.account._id}&action=account.renamed&limit=1`,
    );
    expect(page.status).toBe(200);
    expect(page.json.entries).toHaveLength(1);
    expect(page.json.entries[0]).toMatchObject({
      action: 'account.renamed',
      actor: { accountId: adminA.account._id, username: 'admin.a', operator: false },
      target: { accountId: person.account._id },
    });
    const next = await api(
      `/tenants/${tenantA}/audit?account=${person.account._id}&action=account.renamed&before=${page.json.next}`,
    );
    expect(next.json.entries).toHaveLength(1);
    expect(next.json.next).toBeNull();
    const byName = await api(`/tenants/${tenantA}/audit?account=${person.username}`);
    expect(byName.json.entries.length).toBeGreaterThanOrEqual(2);
  });

  test('operator actions are marked operator in the audit trail', async () => {
    const person = await createAccount(server, tenantA);
    const renamed = await api(`/accounts/${person.account._id}/name`, {
      method: 'PUT',
      token: tokenOperator,
      body: { givenName: 'Olga', familyName: 'Operativ' },
    });
    expect(renamed.status).toBe(200);
    const trail = await api(
      `/tenants/${tenantA}/audit?account=${person.account._id}&action=account.renamed`,
      { token: tokenOperator },
    );
    expect(trail.json.entries[0].actor).toMatchObject({
      accountId: operator.account._id,
      operator: true,
    });
  });
});

describe('the two-admin rule', () => {
  test('the last local admin who can act cannot be removed; an operator may', async () => {
    const tenant = (await createTenant(server)).id;
    const first = await createAccount(server, tenant, { roles: ['local_admin'] });
    const second = await createAccount(server, tenant, { roles: ['local_admin'] });
    const token = await accessToken(first);

    const detail = await api(`/tenants/${tenant}`, { token });
    expect(detail.json).toMatchObject({ activeLocalAdmins: 2, needsMoreAdmins: false });
    const off = await api(`/accounts/${second.account._id}/state`, {
      method: 'PUT',
      token,
      body: { state: 'deactivated' },
    });
    expect(off.status).toBe(200);
    expect((await api(`/tenants/${tenant}`, { token })).json.needsMoreAdmins).toBe(true);

    for (const [method, path, body] of [
      ['DELETE', 'local-admin', undefined],
      ['PUT', 'state', { state: 'deactivated' }],
      ['PUT', 'state', { state: 'retired', confirm: true }],
    ] as const) {
      const refused = await api(`/accounts/${first.account._id}/${path}`, { method, token, body });
      expectProblem(refused, 409, 'admins.last_admin');
    }
    expect((await storedAccount(server, first.account._id)).state).toBe('active');

    const byOperator = await api(`/accounts/${first.account._id}/local-admin`, {
      method: 'DELETE',
      token: tokenOperator,
    });
    expect(byOperator.json.localAdmin).toBe(false);
    const [event] = await auditEvents(server, {
      action: 'account.role_withdrawn',
      'target.accountId': first.account._id,
    });
    expect(event?.actor).toMatchObject({ accountId: operator.account._id, operator: true });
  });
});

describe('tenant isolation', () => {
  /** Every route that names an account or a tenant, with a body it would accept. */
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/accounts/:account'],
    ['PUT', '/accounts/:account/name', { givenName: 'Fremd', familyName: 'Zugriff' }],
    ['PUT', '/accounts/:account/permissions', { permissions: [] }],
    ['PUT', '/accounts/:account/local-admin'],
    ['DELETE', '/accounts/:account/local-admin'],
    ['PUT', '/accounts/:account/state', { state: 'deactivated' }],
    ['PUT', '/accounts/:account/state', { state: 'retired', confirm: true }],
    ['DELETE', '/accounts/:account/lock'],
    ['POST', '/accounts/:account/one-time-password'],
    ['DELETE', '/accounts/:account/sessions'],
    ['GET', '/tenants/:tenant'],
    ['GET', '/tenants/:tenant/accounts'],
    [
      'POST',
      '/tenants/:tenant/accounts',
      { username: 'eindringling', givenName: 'Fremd', familyName: 'Zugriff' },
    ],
    ['GET', '/tenants/:tenant/audit'],
  ];

  test('the table covers every route with a parameter', async () => {
    const document = (await api('/openapi.json', { token: null })).json;
    const withParameters = Object.entries(document.paths as Record<string, Json>)
      .filter(([path]) => path.includes('{'))
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    const covered = routes.map(
      ([method, path]) =>
        `${method} /admin/api${path.replace(':account', '{accountId}').replace(':tenant', '{tenantId}')}`,
    );
    expect([...new Set(covered)].sort()).toEqual(withParameters.sort());
  });

  test.each(routes.map(([method, path, body]) => [method, path, body ?? null] as const))(
    '%s %s of another tenant: 404, nothing changed',
    async (method, path, body) => {
      const target = await createAccount(server, tenantB, { roles: ['local_admin'] });
      await updateAccount(server, target.account._id, {
        'lockout.count': 5,
        'lockout.lockedAt': new Date(),
      });
      const before = await snapshot(target.account._id);
      const events = (await auditEvents(server, { tenantId: tenantB })).length;
      const accounts = await server.services.db
        .collection('accounts')
        .countDocuments({ tenantId: tenantB });

      const response = await api(
        path.replace(':account', target.account._id).replace(':tenant', tenantB),
        { method, body },
      );
      const code = path.startsWith('/tenants') ? 'tenant.not_found' : 'account.not_found';
      const problem = expectProblem(response, 404, code);
      expect(JSON.stringify(problem)).not.toContain(target.username);

      expect(await snapshot(target.account._id)).toBe(before);
      expect((await auditEvents(server, { tenantId: tenantB })).length).toBe(events);
      expect(
        await server.services.db.collection('accounts').countDocuments({ tenantId: tenantB }),
      ).toBe(accounts);
      // The admin of B still reaches it: the 404 is about the caller, not the account.
      expect((await api(`/accounts/${target.account._id}`, { token: tokenB })).status).toBe(200);
    },
  );

  test('an unknown account id is the same 404', async () => {
    expectProblem(await api('/accounts/unknown-id'), 404, 'account.not_found');
  });
});

describe('bad input', () => {
  const valid = { username: 'gut.name', givenName: 'Gut', familyName: 'Name' };
  const createCases: Array<[string, Json]> = [
    ['username', { username: 5 }],
    ['username', { username: '' }],
    ['username', { username: 'x'.repeat(300) }],
    ['givenName', { givenName: 1 }],
    ['givenName', { givenName: '   ' }],
    ['givenName', { givenName: 'x'.repeat(101) }],
    ['familyName', { familyName: null }],
    ['familyName', { familyName: 'Null\u200b' }],
    ['email', { email: 'keine-adresse' }],
    ['email', { email: 3 }],
    ['permissions', { permissions: 'meldeverfahren' }],
    ['permissions', { permissions: ['operator'] }],
    ['localAdmin', { localAdmin: 'yes' }],
    ['roles', { roles: ['operator'] }],
    ['tenantId', { tenantId: '05999999' }],
  ];

  test.each(createCases)('create: %s %j → 400, nothing written', async (field, change) => {
    const count = await server.services.db.collection('accounts').countDocuments();
    const response = await api(`/tenants/${tenantA}/accounts`, {
      method: 'POST',
      body: { ...valid, ...change },
    });
    const problem = expectProblem(response, 400, 'input.invalid');
    expect(Object.keys(problem.errors)).toEqual([field]);
    expect(problem.errors[field][0]).toEqual({
      code: expect.stringMatching(/^[a-z_]+\.[a-z_]+$/),
      message: expect.any(String),
    });
    expect(problem.errors[field][0].message).not.toBe(problem.errors[field][0].code);
    expect(await server.services.db.collection('accounts').countDocuments()).toBe(count);
  });

  const accountCases: Array<[string, string, unknown, string]> = [
    ['PUT', 'name', { givenName: 7, familyName: 'Name' }, 'givenName'],
    ['PUT', 'name', { givenName: 'Gut' }, 'familyName'],
    ['PUT', 'name', { givenName: 'Gut', familyName: 'Name', username: 'x' }, 'username'],
    ['PUT', 'permissions', {}, 'permissions'],
    ['PUT', 'permissions', { permissions: ['meldeverfahren', 'alles'] }, 'permissions'],
    ['PUT', 'permissions', { permissions: [], roles: ['operator'] }, 'roles'],
    ['PUT', 'state', { state: 'locked' }, 'state'],
    ['PUT', 'state', { state: 1 }, 'state'],
    ['PUT', 'state', { state: 'retired', confirm: 'yes' }, 'confirm'],
    ['PUT', 'local-admin', { grant: true }, 'grant'],
    ['DELETE', 'sessions', { all: true }, 'all'],
    ['POST', 'one-time-password', { password: 'Mein-Kennwort1!' }, 'password'],
  ];

  test.each(accountCases)(
    '%s %s %j → 400 on %s, account unchanged',
    async (method, path, body, field) => {
      const person = await createAccount(server, tenantA);
      const before = await snapshot(person.account._id);
      const response = await api(`/accounts/${person.account._id}/${path}`, { method, body });
      expect(Object.keys(expectProblem(response, 400, 'input.invalid').errors)).toEqual([field]);
      expect(await snapshot(person.account._id)).toBe(before);
    },
  );

  const queryCases: Array<[string, string]> = [
    ['accounts?state=gesperrt', 'state'],
    ['accounts?permission=alles', 'permission'],
    ['accounts?localAdmin=yes', 'localAdmin'],
    ['accounts?limit=0', 'limit'],
    ['accounts?limit=abc', 'limit'],
    ['accounts?limit=1&limit=2', 'limit'],
    ['accounts?search=' + 'x'.repeat(101), 'search'],
    ['accounts?after=' + 'x'.repeat(301), 'after'],
    ['accounts?sort=name', 'sort'],
    ['audit?action=everything', 'action'],
    ['audit?outcome=maybe', 'outcome'],
    ['audit?before=xyz', 'before'],
    ['audit?limit=501', 'limit'],
  ];

  test.each(queryCases)('query %s → 400 on %s', async (query, field) => {
    const response = await api(`/tenants/${tenantA}/${query}`);
    expect(Object.keys(expectProblem(response, 400, 'input.invalid').errors)).toEqual([field]);
  });

  test('malformed bodies are 4xx problems, never 500, and write nothing', async () => {
    const person = await createAccount(server, tenantA);
    const path = `/accounts/${person.account._id}/name`;
    const before = await snapshot(person.account._id);
    const json = { 'content-type': 'application/json' };

    expectProblem(
      await api(path, { method: 'PUT', raw: '{"givenName": ', headers: json }),
      400,
      'json.invalid',
    );
    expectProblem(
      await api(path, { method: 'PUT', raw: '"text"', headers: json }),
      400,
      'json.invalid',
    );
    const array = await api(path, { method: 'PUT', body: [1, 2] });
    expect(expectProblem(array, 400, 'input.invalid').errors.input[0].code).toBe(
      'input.not_object',
    );
    expectProblem(
      await api(path, {
        method: 'PUT',
        raw: 'givenName=A',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
      'content_type.unsupported',
    );
    expectProblem(
      await api(path, { method: 'PUT', raw: '{}', headers: { 'content-type': 'text/plain' } }),
      415,
      'content_type.unsupported',
    );
    expectProblem(
      await api(path, {
        method: 'PUT',
        raw: gzipSync(JSON.stringify({ givenName: 'A', familyName: 'B' })),
        headers: { ...json, 'content-encoding': 'gzip' },
      }),
      415,
      'content_encoding.unsupported',
    );
    const huge = JSON.stringify({ givenName: 'A', familyName: 'B'.repeat(200_000) });
    expectProblem(
      await api(path, { method: 'PUT', raw: huge, headers: json }),
      413,
      'error.too_large',
    );
    const proto = await api(path, {
      method: 'PUT',
      raw: '{"givenName":"A","familyName":"B","__proto__":{"x":1}}',
      headers: json,
    });
    expectProblem(proto, 400, 'json.invalid');
    const missing = await api(path, { method: 'PUT' });
    expect(Object.keys(expectProblem(missing, 400, 'input.invalid').errors).sort()).toEqual([
      'familyName',
      'givenName',
    ]);

    expect(await snapshot(person.account._id)).toBe(before);
  });

  test('problems speak English when asked to', async () => {
    const response = await api(`/tenants/${tenantA}/accounts?state=x`, {
      headers: { 'accept-language': 'en' },
    });
    expect(response.json.errors.state[0].message).toBe('There is no such account state.');
    const german = await api(`/tenants/${tenantA}/accounts?state=x`);
    expect(german.json.errors.state[0].message).toBe('Diesen Kontostatus gibt es nicht.');
  });
});
