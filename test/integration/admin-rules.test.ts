/**
 * What the admin pages refuse: accounts of other tenants (404, never their data, never a
 * change), removing the last active local admin (design section 1), forms without the
 * CSRF token; and what an operator may do, marked as such in the audit trail.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'node-html-parser';

import { asPage, Browser, text } from '../support/browser.ts';
import { signInToConsole } from '../support/console.ts';
import { auditEvents, messages, updateAccount } from '../support/flows.ts';
import {
  createAccount,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;

beforeAll(async () => {
  test = await startTestServer();
});
afterAll(() => test.close());

const lastAdmin =
  'Das ist die letzte aktive lokale Administration Ihrer Behörde. Geben Sie zuerst einer anderen Person die Rolle „Lokale Administration“';

/** A signed-in console browser with a CSRF token for crafted posts. */
async function consoleOf(person: TestAccount, path = '/admin') {
  const { browser, page } = await signInToConsole(test, person, path);
  const csrf = page.document.querySelector('input[name=csrf]')?.getAttribute('value') ?? '';
  const get = async (target: string) => asPage(await browser.visit(`${test.issuer}${target}`));
  const post = async (target: string, fields: Array<[string, string]> = [], token = csrf) => {
    const response = await browser.request(`${test.issuer}${target}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([['csrf', token], ...fields]),
    });
    return { status: response.status, html: await response.text() };
  };
  return { browser, page, get, post };
}

const stored = (id: string) =>
  test.services.db.collection('accounts').findOne({ _id: id as never });

describe('an admin of another tenant', () => {
  let adminA: Awaited<ReturnType<typeof consoleOf>>;
  let tenantA: string;
  let tenantB: string;
  let victim: TestAccount;

  beforeAll(async () => {
    tenantA = (await createTenant(test)).id;
    tenantB = (await createTenant(test)).id;
    const a = await createAccount(test, tenantA, { roles: ['local_admin'] });
    await createAccount(test, tenantA, { roles: ['local_admin'] });
    await createAccount(test, tenantB, { roles: ['local_admin'], username: 'b.admin' });
    victim = await createAccount(test, tenantB, {
      username: 'b.geheim',
      givenName: 'Berta',
      familyName: 'Geheimnis',
    });
    await updateAccount(test, victim.account._id, {
      'lockout.lockedAt': new Date(),
      'lockout.count': 5,
    });
    adminA = await consoleOf(a);
  });

  const id = () => victim.account._id;
  const pages: Array<[string, () => string]> = [
    ['the account page', () => `/admin/accounts/${id()}`],
    ['the retire confirmation', () => `/admin/accounts/${id()}/retire`],
  ];
  const actions: Array<[string, Array<[string, string]>]> = [
    [
      'name',
      [
        ['given_name', 'Eve'],
        ['family_name', 'Eindringling'],
      ],
    ],
    ['permissions', []],
    ['local-admin', [['grant', 'yes']]],
    ['deactivate', []],
    ['reactivate', []],
    ['retire', [['confirm', 'yes']]],
    ['unlock', []],
    ['sessions', []],
    ['password', []],
  ];

  it.each(pages)('gets 404 for %s of its account', async (_name, path) => {
    const page = await adminA.get(path());
    expect(page.status).toBe(404);
    expect(page.html).not.toContain('b.geheim');
    expect(page.html).not.toContain('Geheimnis');
  });

  it.each(actions)(
    'gets 404 posting %s to its account, which stays unchanged',
    async (action, fields) => {
      const before = await stored(id());
      const answer = await adminA.post(`/admin/accounts/${id()}/${action}`, fields);
      expect(answer.status).toBe(404);
      expect(answer.html).not.toContain('b.geheim');
      expect(await stored(id())).toEqual(before);
      expect(
        await auditEvents(test, { 'target.accountId': id(), 'actor.tenantId': tenantA }),
      ).toEqual([]);
    },
  );

  it('sees its own tenant, never the other, whatever tenant the query names', async () => {
    for (const path of [
      `/admin/accounts?tenant=${tenantB}`,
      `/admin/accounts?tenant=${tenantB}&q=geheim`,
      `/admin/accounts/new?tenant=${tenantB}`,
      `/admin/audit?tenant=${tenantB}`,
      `/admin/audit?account=${id()}`,
      `/admin/audit?account=b.geheim`,
    ]) {
      const page = await adminA.get(path);
      expect({ path, status: page.status }).toEqual({ path, status: 200 });
      // The filter form shows what the admin typed; the rest of the page shows data.
      page.document.querySelectorAll('form.filters, a[download]').forEach((echo) => echo.remove());
      expect(page.document.toString()).not.toContain('b.geheim');
      expect(page.document.toString()).not.toContain(tenantB);
    }
    const csv = await adminA.browser.request(`${test.issuer}/admin/audit.csv?tenant=${tenantB}`);
    expect(await csv.text()).not.toContain('b.geheim');
    const tenants = await adminA.get('/admin/tenants');
    expect(tenants.status).toBe(404);
  });

  it('cannot create an account in the other tenant', async () => {
    const answer = await adminA.post('/admin/accounts', [
      ['tenant', tenantB],
      ['username', 'eingeschleust'],
      ['given_name', 'Eve'],
      ['family_name', 'Eindringling'],
    ]);
    expect(answer.status).toBe(200);
    expect(await test.services.accounts.findByUsername(tenantB, 'eingeschleust')).toBeNull();
    expect(await test.services.accounts.findByUsername(tenantA, 'eingeschleust')).not.toBeNull();
  });
});

describe('the two-admin rule', () => {
  it('shows a banner while fewer than two local admins can act, a locked one not counting', async () => {
    const tenant = (await createTenant(test)).id;
    const first = await createAccount(test, tenant, { roles: ['local_admin'] });
    const second = await createAccount(test, tenant, { roles: ['local_admin'] });
    const { get } = await consoleOf(first);
    const banner = 'Weniger als zwei lokale Administratoren.';
    expect(text(await get('/admin/accounts'))).not.toContain(banner);

    await updateAccount(test, second.account._id, {
      'lockout.lockedAt': new Date(),
      'lockout.count': 5,
    });
    for (const path of [
      '/admin/accounts',
      `/admin/accounts/${second.account._id}`,
      '/admin/audit',
      '/admin/accounts/new',
    ])
      expect(parse((await get(path)).html).querySelector('.banner')?.textContent).toContain(banner);
  });

  it.each([
    ['withdrawing the role', 'local-admin', [['grant', 'no']]],
    ['deactivating', 'deactivate', []],
    ['retiring', 'retire', [['confirm', 'yes']]],
  ] as const)(
    'refuses %s of the last active local admin with the reason',
    async (_name, action, fields) => {
      const tenant = (await createTenant(test)).id;
      const only = await createAccount(test, tenant, { roles: ['local_admin'] });
      const { post } = await consoleOf(only);
      const before = await stored(only.account._id);

      const answer = await post(
        `/admin/accounts/${only.account._id}/${action}`,
        fields.map(([name, value]) => [name, value]),
      );

      expect(answer.status).toBe(409);
      expect(parse(answer.html).querySelector('.error-summary')?.textContent).toContain(lastAdmin);
      expect(await stored(only.account._id)).toEqual(before);
    },
  );

  it('lets one of two admins deactivating each other at the same moment win, never both', async () => {
    for (let round = 0; round < 3; round += 1) {
      const tenant = (await createTenant(test)).id;
      const first = await createAccount(test, tenant, { roles: ['local_admin'] });
      const second = await createAccount(test, tenant, { roles: ['local_admin'] });
      const [one, two] = await Promise.all([consoleOf(first), consoleOf(second)]);

      const answers = await Promise.all([
        one.post(`/admin/accounts/${second.account._id}/deactivate`),
        two.post(`/admin/accounts/${first.account._id}/deactivate`),
      ]);

      expect(answers.map((answer) => answer.status).sort()).toEqual([303, expect.any(Number)]);
      expect([403, 409]).toContain(answers.find((answer) => answer.status !== 303)?.status);
      const states = await Promise.all([stored(first.account._id), stored(second.account._id)]);
      expect(states.map((account) => account?.state).sort()).toEqual(['active', 'deactivated']);
    }
  });

  it('lets an operator remove the last admin, marked as an operator action', async () => {
    const operatorTenant = (await createTenant(test)).id;
    const operator = await createAccount(test, operatorTenant, { roles: ['operator'] });
    const tenant = (await createTenant(test)).id;
    const only = await createAccount(test, tenant, { roles: ['local_admin'] });
    const { get, post } = await consoleOf(operator);

    const list = await get('/admin/tenants');
    expect(
      list.document.querySelector(`a[href="/admin/accounts?tenant=${tenant}"]`),
    ).not.toBeNull();
    const accounts = await get(`/admin/accounts?tenant=${tenant}`);
    expect(accounts.document.querySelectorAll('tbody tr a').map((a) => a.textContent)).toEqual([
      only.username,
    ]);

    const answer = await post(`/admin/accounts/${only.account._id}/deactivate`);
    expect(answer.status).toBe(303);
    const [event] = await auditEvents(test, {
      action: 'account.deactivated',
      'target.accountId': only.account._id,
    });
    expect(event).toMatchObject({
      tenantId: tenant,
      actor: { accountId: operator.account._id, operator: true },
    });
    const trail = await get(`/admin/audit?tenant=${tenant}&action=account.deactivated`);
    expect(trail.document.querySelector('tbody tr .tag')?.textContent).toBe('Betrieb (Land)');
  });
});

describe('forms without their CSRF token', () => {
  it('are refused and change nothing', async () => {
    const tenant = (await createTenant(test)).id;
    const admin = await createAccount(test, tenant, { roles: ['local_admin'] });
    await createAccount(test, tenant, { roles: ['local_admin'] });
    const person = await createAccount(test, tenant);
    const { post } = await consoleOf(admin);
    const other = await consoleOf(await createAccount(test, tenant, { roles: ['local_admin'] }));
    const before = await stored(person.account._id);

    for (const token of [
      '',
      'forged',
      (await other.page.document.querySelector('input[name=csrf]')?.getAttribute('value')) ?? 'x',
    ]) {
      const answer = await post(`/admin/accounts/${person.account._id}/deactivate`, [], token);
      expect(answer.status).toBe(403);
      expect(
        text({ html: answer.html, document: parse(answer.html), url: '', status: 403 }),
      ).toContain(messages.csrfInvalid);
    }
    expect(await stored(person.account._id)).toEqual(before);
  });
});

describe('a signed-out browser', () => {
  it('is sent to the sign-in for every console page, and its posts change nothing', async () => {
    const tenant = (await createTenant(test)).id;
    const person = await createAccount(test, tenant);
    const stranger = new Browser();
    for (const path of [
      '/admin',
      '/admin/accounts',
      `/admin/accounts/${person.account._id}`,
      '/admin/audit.csv',
      '/account',
      '/account/password',
    ]) {
      const answer = await stranger.request(`${test.issuer}${path}`);
      expect({ path, status: answer.status }).toEqual({ path, status: 303 });
      expect(answer.headers.get('location')).toMatch(/^\/console\/login\?return=/);
    }
    const before = await stored(person.account._id);
    const answer = await stranger.request(
      `${test.issuer}/admin/accounts/${person.account._id}/deactivate`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'csrf=x',
      },
    );
    expect(answer.status).toBe(303);
    expect(await stored(person.account._id)).toEqual(before);
  });
});

describe('a locked local admin', () => {
  it('keeps the session but may not manage accounts, not even to unlock themselves', async () => {
    const tenant = (await createTenant(test)).id;
    const locked = await createAccount(test, tenant, { roles: ['local_admin'] });
    const other = await createAccount(test, tenant, { roles: ['local_admin'] });
    const { get, post } = await consoleOf(locked);
    await updateAccount(test, locked.account._id, {
      'lockout.lockedAt': new Date(),
      'lockout.count': 5,
    });

    const list = await get('/admin/accounts');
    expect(list.status).toBe(403);
    expect(text(list)).toContain('Ihr Konto ist gesperrt.');
    expect(list.document.querySelector('a[href="/account"]')).not.toBeNull();
    const before = await stored(locked.account._id);
    expect((await post(`/admin/accounts/${locked.account._id}/unlock`)).status).toBe(403);
    expect((await post(`/admin/accounts/${other.account._id}/deactivate`)).status).toBe(403);
    expect(await stored(locked.account._id)).toEqual(before);
    expect((await stored(other.account._id))?.state).toBe('active');
    expect((await get('/account')).status).toBe(200);
  });
});

describe('the CSRF protection', () => {
  it('gives every sign-in a new secret, so a token from before it is void', async () => {
    const tenant = (await createTenant(test)).id;
    const admin = await createAccount(test, tenant, { roles: ['local_admin'] });
    const person = await createAccount(test, tenant);
    const browser = new Browser();
    const login = asPage(await browser.visit(`${test.issuer}/admin`));
    const early = login.document.querySelector('input[name=csrf]')!.getAttribute('value')!;
    await signInToConsole(test, admin, '/admin', browser);
    const answer = await browser.request(
      `${test.issuer}/admin/accounts/${person.account._id}/sessions`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: early }),
      },
    );
    expect(answer.status).toBe(403);
  });

  it('refuses a valid token sent from another site', async () => {
    const tenant = (await createTenant(test)).id;
    const admin = await createAccount(test, tenant, { roles: ['local_admin'] });
    const person = await createAccount(test, tenant, { familyName: 'Bleibt' });
    const { browser, page } = await signInToConsole(test, admin);
    const csrf = page.document.querySelector('input[name=csrf]')!.getAttribute('value')!;
    for (const headers of [
      { origin: 'https://evil.example' },
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ]) {
      const answer = await browser.request(
        `${test.issuer}/admin/accounts/${person.account._id}/name`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: new URLSearchParams({ csrf, given_name: 'Eve', family_name: 'Anders' }),
        },
      );
      expect({ headers, status: answer.status }).toEqual({ headers, status: 403 });
    }
    const same = await browser.request(`${test.issuer}/admin/accounts/${person.account._id}/name`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: test.issuer,
        'sec-fetch-site': 'same-origin',
      },
      body: new URLSearchParams({ csrf, given_name: 'Erika', family_name: 'Geändert' }),
    });
    expect(same.status).toBe(303);
    expect((await stored(person.account._id))?.familyName).toBe('Geändert');
  });
});

describe('signing out of the console', () => {
  it('asks for the password again, even when the provider session was kept', async () => {
    const tenant = (await createTenant(test)).id;
    const admin = await createAccount(test, tenant, { roles: ['local_admin'] });
    const { browser, page } = await signInToConsole(test, admin);
    const csrf = page.document
      .querySelector('form.sign-out input[name=csrf]')!
      .getAttribute('value')!;
    const out = await browser.request(`${test.issuer}/console/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }),
    });
    const confirm = asPage(
      await browser.visit(new URL(out.headers.get('location')!, test.issuer).href),
    );
    // "Nein, angemeldet bleiben": the provider session stays for the relying parties.
    await browser.submit(confirm, {});

    const again = asPage(await browser.visit(`${test.issuer}/admin/accounts`));
    expect(again.document.querySelector('form[action$="/login"]')).not.toBeNull();
    expect(text(again)).not.toContain('Konten gefunden');
  });
});

describe('the role form', () => {
  it('refuses a value other than yes or no and changes nothing', async () => {
    const tenant = (await createTenant(test)).id;
    const admin = await createAccount(test, tenant, { roles: ['local_admin'] });
    await createAccount(test, tenant, { roles: ['local_admin'] });
    const person = await createAccount(test, tenant);
    const { post } = await consoleOf(admin);
    const before = await stored(person.account._id);
    const answer = await post(`/admin/accounts/${person.account._id}/local-admin`, [
      ['grant[]', 'yes'],
    ]);
    expect(answer.status).toBe(400);
    expect(parse(answer.html).querySelector('.error-summary')?.textContent).toContain(
      'Die Eingabe ist ungültig.',
    );
    expect(await stored(person.account._id)).toEqual(before);
  });
});
