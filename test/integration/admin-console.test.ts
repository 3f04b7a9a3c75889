/**
 * The account admin pages as a local admin uses them (design 3.5): find, create, rename,
 * permissions, role, states, unlock, new one-time password, sessions, audit trail; and the
 * effects on what relying parties hold, which are immediate.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'node-html-parser';
import * as oidc from 'openid-client';

import { asPage, Browser, text, type Page } from '../support/browser.ts';
import { postForm, signInToConsole } from '../support/console.ts';
import {
  auditEvents,
  credentials,
  messages,
  openSignIn,
  signInForTokens,
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
let tenantId: string;
let admin: TestAccount;
let browser: Browser;

const allScopes = { scope: 'openid meldeverfahren zahlungsmitteilungen offline_access' };

beforeAll(async () => {
  test = await startTestServer();
  client = await createClient(test);
  tenantId = (await createTenant(test)).id;
  admin = await createAccount(test, tenantId, { roles: ['local_admin'], username: 'admin.eins' });
  await createAccount(test, tenantId, { roles: ['local_admin'], username: 'admin.zwei' });
  ({ browser } = await signInToConsole(test, admin));
});
afterAll(() => test.close());

const visit = async (path: string) => asPage(await browser.visit(`${test.issuer}${path}`));
const accountPage = (id: string, query = '') => visit(`/admin/accounts/${id}${query}`);

/** Posts the form of the account page whose action ends in `/<action>`. */
async function act(id: string, action: string, fields: Array<[string, string]> = []) {
  const page = await accountPage(id);
  return postForm(browser, page, `form[action$="/${action}"]`, fields);
}

/** Follows the redirect of a successful action to the page it announces. */
async function afterRedirect(answer: { status: number; location: string | null; html: string }) {
  expect({
    status: answer.status,
    page: answer.status === 303 ? '' : answer.html.slice(0, 300),
  }).toEqual({ status: 303, page: '' });
  return visit(
    new URL(answer.location!, test.issuer).pathname + new URL(answer.location!, test.issuer).search,
  );
}

/** Posts to a console path with the CSRF token of the admin's pages, as a crafted form would. */
async function postTo(path: string, fields: Array<[string, string]> = []) {
  const page = await visit('/admin/accounts');
  const csrf = page.document.querySelector('input[name=csrf]')!.getAttribute('value')!;
  const response = await browser.request(`${test.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams([['csrf', csrf], ...fields]),
  });
  return {
    status: response.status,
    location: response.headers.get('location'),
    html: await response.text(),
  };
}

const fieldError = (page: Page | { html: string }, id: string) =>
  parse(page.html).querySelector(`#${id}-error`)?.textContent.trim();

describe('the account list', () => {
  it('finds accounts by name and username, filters by state and permission, and pages', async () => {
    const other = (await createTenant(test)).id;
    await createAccount(test, other, { username: 'fremd.muster', familyName: 'Musterfremd' });
    const meier = await createAccount(test, tenantId, {
      username: 'h.meier',
      familyName: 'Meier',
      permissions: ['meldeverfahren'],
    });
    await createAccount(test, tenantId, {
      username: 'k.meiersohn',
      givenName: 'Karl',
      familyName: 'Schulz',
    });
    await test.services.accounts.setState(meier.account._id, 'deactivated', {
      actor: { kind: 'system' },
    });

    const found = await visit('/admin/accounts?q=MEIER');
    expect(
      found.document.querySelectorAll('tbody tr').map((row) => row.querySelector('a')?.textContent),
    ).toEqual(['h.meier', 'k.meiersohn']);
    expect(text(found)).not.toContain('fremd.muster');

    const deactivated = await visit('/admin/accounts?state=deactivated');
    expect(deactivated.document.querySelectorAll('tbody tr a').map((a) => a.textContent)).toEqual([
      'h.meier',
    ]);
    const payments = await visit('/admin/accounts?q=meier&permission=zahlungsmitteilungen');
    expect(payments.document.querySelectorAll('tbody tr a').map((a) => a.textContent)).toEqual([
      'k.meiersohn',
    ]);
  });

  it('pages through a large tenant without repeating or skipping anyone', async () => {
    const big = (await createTenant(test)).id;
    const bigAdmin = await createAccount(test, big, {
      roles: ['local_admin'],
      username: 'aaa.admin',
    });
    const names = Array.from({ length: 120 }, (_, index) => `p${String(index).padStart(3, '0')}`);
    await test.services.db.collection('accounts').insertMany(
      names.map((name, index) => ({
        ...structuredClone(bigAdmin.account),
        _id: `bulk-${big}-${index}`,
        username: name,
        usernameKey: name,
        roles: [],
      })) as never[],
    );
    const { browser: own } = await signInToConsole(test, bigAdmin);
    const seen: string[] = [];
    let next: string | undefined = '/admin/accounts';
    while (next) {
      const page = asPage(await own.visit(`${test.issuer}${next}`));
      seen.push(...page.document.querySelectorAll('tbody tr a').map((a) => a.textContent));
      const link = page.document.querySelector('a[rel=next]')?.getAttribute('href');
      next = link ? `/admin/accounts${link}` : undefined;
    }
    expect(seen).toEqual(['aaa.admin', ...names]);
  });
});

describe('creating an account', () => {
  it('shows the one-time password once; the person must replace it at the first sign-in', async () => {
    const form = await visit('/admin/accounts/new');
    const created = await postForm(browser, form, 'main form', [
      ['username', 'Neu.Person'],
      ['given_name', 'Jürgen'],
      ['family_name', "O'Brien-Schäfer"],
      ['email', 'neu@kommune.example'],
      ['permissions', 'meldeverfahren'],
    ]);
    expect(created.status).toBe(200);
    const page = parse(created.html);
    const initialPassword = page.querySelector('#one-time-password')!.textContent;
    expect(initialPassword.length).toBeGreaterThanOrEqual(12);
    expect(page.querySelector('main')!.textContent).toContain(
      'Dieses Kennwort wird nur jetzt angezeigt.',
    );

    const stored = await test.services.accounts.findByUsername(tenantId, 'neu.person');
    expect(stored).toMatchObject({
      username: 'Neu.Person',
      givenName: 'Jürgen',
      permissions: ['meldeverfahren'],
      roles: [],
    });
    const detail = await accountPage(stored!._id);
    expect(detail.html).not.toContain(initialPassword);
    const trail = await visit(`/admin/audit?account=${stored!._id}&action=account.created`);
    expect(trail.document.querySelector('tbody td.details')?.textContent).toContain(
      'Berechtigungen: Meldeverfahren; Rollen: –',
    );

    const { browser: person, login } = await openSignIn(client);
    const next = asPage(
      await person.submit(
        login,
        { tenant: tenantId, username: 'neu.person', password: initialPassword },
        client.redirectUri,
      ),
    );
    expect(next.document.querySelector('h1')?.textContent).toBe(messages.passwordChangeTitle);
  });

  it.each([
    ['username', '', 'Bitte geben Sie einen Benutzernamen ein.'],
    [
      'username',
      'mit leerzeichen',
      'Der Benutzername darf nur Buchstaben, Ziffern und . _ - @ enthalten.',
    ],
    ['username', 'x'.repeat(65), 'Der Benutzername ist zu lang (höchstens 64 Zeichen).'],
    ['username', 'admin.EINS', 'Diesen Benutzernamen gibt es in Ihrer Behörde schon'],
    ['given_name', '', 'Bitte geben Sie den Vornamen ein.'],
    ['given_name', 'R2D2', "Der Vorname darf nur Buchstaben, Leerzeichen und . , ' - enthalten."],
    [
      'given_name',
      'Ann\u200Be',
      "Der Vorname darf nur Buchstaben, Leerzeichen und . , ' - enthalten.",
    ],
    ['family_name', 'y'.repeat(101), 'Der Nachname ist zu lang (höchstens 100 Zeichen).'],
    ['email', 'keine-adresse', 'Bitte geben Sie eine gültige E-Mail-Adresse ein'],
    ['permissions', 'alles', 'Diese Berechtigung gibt es nicht.'],
  ])(
    'refuses %s %j with a message next to the field and stores nothing',
    async (field, value, message) => {
      const before = await test.services.db.collection('accounts').countDocuments({ tenantId });
      const fields: Record<string, string> = {
        username: 'gueltig.name',
        given_name: 'Erika',
        family_name: 'Muster',
        email: '',
      };
      const form = await visit('/admin/accounts/new');
      const answer = await postForm(
        browser,
        form,
        'main form',
        Object.entries({ ...fields, [field]: value }),
      );

      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
      const id = field === 'permissions' ? 'permissions' : field;
      expect(fieldError(answer, id)).toContain(message);
      expect(parse(answer.html).querySelector('.error-summary a')?.getAttribute('href')).toBe(
        `#${id}`,
      );
      expect(await test.services.db.collection('accounts').countDocuments({ tenantId })).toBe(
        before,
      );
    },
  );
});

describe('changing an account', () => {
  it('records a name change and keeps the history', async () => {
    const person = await createAccount(test, tenantId, { givenName: 'Anna', familyName: 'Alt' });
    const page = await afterRedirect(
      await act(person.account._id, 'name', [
        ['given_name', 'Anna'],
        ['family_name', 'Neu'],
      ]),
    );

    expect(text(page)).toContain('Der Name wurde geändert');
    expect(page.document.querySelector('h1')?.textContent).toContain('Anna Neu');
    expect(page.document.querySelector('table.data caption')?.textContent).toBe('Frühere Namen');
    expect(page.document.querySelector('table.data tbody td')?.textContent).toBe('Anna Alt');
    const [event] = await auditEvents(test, {
      action: 'account.renamed',
      'target.accountId': person.account._id,
    });
    expect(event).toMatchObject({ outcome: 'success', actor: { accountId: admin.account._id } });
  });

  it('refuses a bad name next to the field and keeps the old one', async () => {
    const person = await createAccount(test, tenantId, { familyName: 'Bleibt' });
    const answer = await act(person.account._id, 'name', [
      ['given_name', ''],
      ['family_name', 'Neu'],
    ]);
    expect(answer.status).toBe(400);
    expect(fieldError(answer, 'given_name')).toBe('Bitte geben Sie den Vornamen ein.');
    expect((await test.services.accounts.find(person.account._id))!.familyName).toBe('Bleibt');
  });

  it('withdrawing a permission ends what the person holds at once', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person, allScopes);

    await afterRedirect(
      await act(person.account._id, 'permissions', [['permissions', 'meldeverfahren']]),
    );

    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await oidc.tokenIntrospection(client.config, tokens.access_token)).toMatchObject({
      active: false,
    });
    const again = await signInForTokens(client, person, allScopes);
    expect(again.tokens.scope?.split(' ').sort()).toEqual([
      'meldeverfahren',
      'offline_access',
      'openid',
    ]);
  });

  it('granting a permission keeps sessions, and the next sign-in gets it', async () => {
    const person = await createAccount(test, tenantId, { permissions: ['meldeverfahren'] });
    const { tokens } = await signInForTokens(client, person, allScopes);
    await afterRedirect(
      await act(person.account._id, 'permissions', [
        ['permissions', 'meldeverfahren'],
        ['permissions', 'zahlungsmitteilungen'],
      ]),
    );
    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).resolves.toBeDefined();
    const again = await signInForTokens(client, person, allScopes);
    expect(again.tokens.scope?.split(' ')).toContain('zahlungsmitteilungen');
  });

  it('deactivates with immediate effect and reactivates', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person, allScopes);

    const deactivated = await afterRedirect(await act(person.account._id, 'deactivate'));
    expect(text(deactivated)).toContain('Das Konto ist deaktiviert; alle Sitzungen sind beendet.');
    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    const { browser: user, login } = await openSignIn(client);
    expect(
      text(asPage(await user.submit(login, credentials(person), client.redirectUri))),
    ).toContain(messages.deactivated);

    const reactivated = await afterRedirect(await act(person.account._id, 'reactivate'));
    expect(text(reactivated)).toContain('Das Konto ist wieder aktiv.');
    await expect(signInForTokens(client, person, allScopes)).resolves.toBeDefined();
  });

  it('retires only after the confirmation, and a retired account cannot be changed', async () => {
    const person = await createAccount(test, tenantId);
    const confirmPage = await visit(`/admin/accounts/${person.account._id}/retire`);
    const unconfirmed = await postForm(browser, confirmPage, 'main form');
    expect(unconfirmed.status).toBe(400);
    expect(fieldError(unconfirmed, 'confirm')).toBe(
      'Bitte bestätigen Sie, dass die Deaktivierung endgültig sein soll.',
    );
    expect((await storedAccount(test, person.account._id)).state).toBe('active');

    const retired = await afterRedirect(
      await postForm(browser, confirmPage, 'main form', [['confirm', 'yes']]),
    );
    expect(text(retired)).toContain('Dieses Konto ist endgültig deaktiviert.');
    expect(retired.document.querySelectorAll('main form')).toHaveLength(0);
    const reactivate = await postTo(`/admin/accounts/${person.account._id}/reactivate`);
    expect(reactivate.status).toBe(409);
    expect(parse(reactivate.html).querySelector('.error-summary')?.textContent).toContain(
      'Das Konto ist endgültig deaktiviert und kann nicht mehr geändert werden.',
    );
    expect((await storedAccount(test, person.account._id)).state).toBe('retired');
  });

  it('shows a lock, keeps the sessions of a locked account, and unlocks', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person, allScopes);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const { browser: guesser, login } = await openSignIn(client);
      await guesser.submit(login, credentials(person, `Falsch-${attempt}!x`), client.redirectUri);
    }

    const locked = await visit('/admin/accounts?state=locked');
    expect(locked.document.querySelectorAll('tbody tr a').map((a) => a.textContent)).toContain(
      person.username,
    );
    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).resolves.toBeDefined();

    const page = await accountPage(person.account._id);
    expect(text(page)).toMatch(/gesperrt seit \d/);
    const unlocked = await afterRedirect(await act(person.account._id, 'unlock'));
    expect(text(unlocked)).toContain('Die Sperre ist aufgehoben.');
    await expect(signInForTokens(client, person, allScopes)).resolves.toBeDefined();

    const trail = await visit(`/admin/audit?account=${encodeURIComponent(person.username)}`);
    const actions = trail.document
      .querySelectorAll('tbody tr td:nth-child(2)')
      .map((cell) => cell.textContent);
    expect(actions).toEqual(
      expect.arrayContaining(['Anmeldung', 'Konto gesperrt', 'Sperre aufgehoben']),
    );
    expect(text(trail)).toContain('fehlgeschlagen (falsches Kennwort)');
  });

  it('issues a new one-time password that replaces the old password and ends sessions', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person, allScopes);
    const answer = await act(person.account._id, 'password');
    expect(answer.status).toBe(200);
    const initialPassword = parse(answer.html).querySelector('#one-time-password')!.textContent;

    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    const { browser: user, login } = await openSignIn(client);
    expect(asPage(await user.submit(login, credentials(person), client.redirectUri)).status).toBe(
      401,
    );
    const { browser: again, login: second } = await openSignIn(client);
    const change = asPage(
      await again.submit(second, credentials(person, initialPassword), client.redirectUri),
    );
    expect(change.document.querySelector('h1')?.textContent).toBe(messages.passwordChangeTitle);
  });

  it('ends all sessions of an account with one action', async () => {
    const person = await createAccount(test, tenantId);
    const first = await signInForTokens(client, person, allScopes);
    const second = await signInForTokens(client, person, allScopes);
    const page = await afterRedirect(await act(person.account._id, 'sessions'));
    expect(text(page)).toContain('Alle Sitzungen des Kontos sind beendet.');
    for (const { tokens } of [first, second])
      await expect(
        oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
    const { login } = await openSignIn(client, {}, first.browser);
    expect(login.document.querySelector('form[action$="/login"]')).not.toBeNull();
  });

  it('grants and withdraws the local-admin role; the new admin reaches the console', async () => {
    const person = await createAccount(test, tenantId);
    const granted = await afterRedirect(await act(person.account._id, 'local-admin'));
    expect(text(granted)).toContain('Die Rolle „Lokale Administration“ wurde gegeben.');
    const { page } = await signInToConsole(test, person);
    expect(page.url).toMatch(/\/admin\/accounts$/);

    const withdrawn = await afterRedirect(await act(person.account._id, 'local-admin'));
    expect(text(withdrawn)).toContain('Die Rolle „Lokale Administration“ wurde entzogen.');
    const { page: refused } = await signInToConsole(test, person, '/admin');
    expect(refused.status).toBe(403);
  });
});

describe('the audit trail page', () => {
  it('filters by action and exports CSV that spreadsheets cannot run as formulas', async () => {
    const { browser: guesser, login } = await openSignIn(client);
    await guesser.submit(
      login,
      { tenant: tenantId, username: '=HYPERLINK("x")', password: 'Falsch-1!x' },
      client.redirectUri,
    );

    const page = await visit('/admin/audit?action=login&outcome=failure');
    const rows = page.document.querySelectorAll('tbody tr');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((row) => row.querySelectorAll('td')[1]!.textContent === 'Anmeldung')).toBe(
      true,
    );

    const link = page.document.querySelector('a[download]')!.getAttribute('href')!;
    const csv = await browser.request(new URL(link, `${test.issuer}/admin/audit`).href);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const bytes = Buffer.from(await csv.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const body = bytes.subarray(3).toString('utf8');
    const [header, ...lines] = body.trim().split('\r\n');
    expect(header!.split(';').slice(0, 3)).toEqual(['Zeitpunkt (UTC)', 'Aktion', 'Ergebnis']);
    expect(lines.every((line) => line.split(';')[1] === 'Anmeldung')).toBe(true);
    expect(body).toContain(`'=HYPERLINK`);
    expect(body).not.toMatch(/;=HYPERLINK/);
  });
});

describe('self-service', () => {
  it('shows name, authority, permissions and password expiry, warned in the last 14 days', async () => {
    const person = await createAccount(test, tenantId, {
      givenName: 'Paula',
      familyName: 'Pünktlich',
      permissions: ['meldeverfahren'],
    });
    const { browser: own, page } = await signInToConsole(test, person, '/account');
    expect(page.url).toMatch(/\/account$/);
    expect(text(page)).toContain('Paula Pünktlich');
    expect(text(page)).toContain('Meldeverfahren');
    expect(text(page)).not.toContain('Zahlungsmitteilungen');
    expect(page.document.querySelector('.banner')).toBeNull();

    test.clock.offsetMs = 170 * 86_400_000;
    try {
      // 170 days later the console session is long over: the person signs in again.
      const { page: soon } = await signInToConsole(test, person, '/account', own);
      expect(text(soon)).toMatch(/Ihr Kennwort läuft in 10 Tagen ab/);
    } finally {
      test.clock.offsetMs = 0;
    }
  });

  it('changes the password with the current one, ending other sessions but not this one', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person, allScopes);
    const { browser: own } = await signInToConsole(test, person, '/account');
    const form = asPage(await own.visit(`${test.issuer}/account/password`));

    const wrong = await postForm(own, form, 'main form', [
      ['current_password', 'Falsch-1!x'],
      ['new_password', 'Neues-Kennwort-7!'],
      ['new_password_confirm', 'Neues-Kennwort-7!'],
    ]);
    expect(wrong.status).toBe(401);
    expect(fieldError(wrong, 'current_password')).toBe('Das bisherige Kennwort ist nicht richtig.');
    const weak = await postForm(own, form, 'main form', [
      ['current_password', person.password],
      ['new_password', 'kurz'],
      ['new_password_confirm', 'kurz'],
    ]);
    expect(weak.status).toBe(400);
    expect(fieldError(weak, 'new_password')).toContain('Es ist kürzer als 8 Zeichen.');

    const done = await postForm(own, form, 'main form', [
      ['current_password', person.password],
      ['new_password', 'Neues-Kennwort-7!'],
      ['new_password_confirm', 'Neues-Kennwort-7!'],
    ]);
    expect(done).toMatchObject({ status: 303, location: '/account?done=password_changed' });
    const after = asPage(await own.visit(`${test.issuer}/account?done=password_changed`));
    expect(text(after)).toContain('Ihr Kennwort wurde geändert.');
    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(
      signInForTokens(client, { ...person, password: 'Neues-Kennwort-7!' }, allScopes),
    ).resolves.toBeDefined();
  });

  it('a person without the admin role reaches /account but not /admin', async () => {
    const person = await createAccount(test, tenantId);
    const { browser: own } = await signInToConsole(test, person, '/account');
    const refused = asPage(await own.visit(`${test.issuer}/admin/accounts`));
    expect(refused.status).toBe(403);
    expect(text(refused)).toContain('Für die Kontoverwaltung fehlt Ihnen die Rolle');
  });

  it('signs out of the console and of the provider', async () => {
    const person = await createAccount(test, tenantId);
    const { browser: own, page } = await signInToConsole(test, person, '/account');
    const answer = await postForm(own, page, 'form.sign-out');
    expect(answer.status).toBe(303);
    const confirm = asPage(await own.visit(answer.location!));
    const signedOut = asPage(await own.submit(confirm, { logout: 'yes' }, undefined, 'form'));
    expect(text(signedOut)).toContain('Sie sind von der Kontoverwaltung abgemeldet.');
    const again = asPage(await own.visit(`${test.issuer}/account`));
    expect(again.document.querySelector('form[action$="/login"]')).not.toBeNull();
  });
});

describe('a console session', () => {
  it('ends when the account is deactivated', async () => {
    const person = await createAccount(test, tenantId);
    const { browser: own } = await signInToConsole(test, person, '/account');
    await afterRedirect(await act(person.account._id, 'deactivate'));
    const answer = await own.request(`${test.issuer}/account`);
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toMatch(/^\/console\/login\?return=/);
  });
});
