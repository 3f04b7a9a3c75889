/**
 * Lockout after consecutive failed sign-ins (design 2 and 3.1): five distinct wrong
 * passwords lock; a lock is no oracle for the password nor for which names exist; parallel
 * failures lock exactly once; what a session already holds runs on.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import type { SignInResult } from '../../src/accounts/sign-in.ts';
import { Housekeeping } from '../../src/db/housekeeping.ts';
import type { RequestContext } from '../../src/audit/trail.ts';
import {
  asPage,
  asRedirect,
  authorizationRequest,
  text,
  type Browser,
  type Page,
} from '../support/browser.ts';
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
  createTenant,
  startTestServer,
  startWithClient,
  system,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let tenantId: string;

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
});
afterAll(() => test.close());

const anonymous: RequestContext = { actor: { kind: 'anonymous' } };

const wrongPassword = (n: number) => `Falsch-${n}-${randomBytes(3).toString('hex')}!`;

/** How many attempts ended as a wrong password and how many as locked. */
function tally(results: SignInResult[]) {
  return {
    invalid: results.filter((result) => result.kind === 'invalid').length,
    locked: results.filter((result) => result.kind === 'locked').length,
  };
}

/** Locks `person` by five distinct wrong passwords, one after the other. */
async function lock(server: TestServer, person: TestAccount): Promise<void> {
  for (let n = 1; n <= 5; n += 1)
    await server.services.signIn.attempt(credentials(person, wrongPassword(n)), anonymous);
  expect((await storedAccount(server, person.account._id)).lockout.lockedAt).toBeInstanceOf(Date);
}

/** Submits the sign-in form of `page` with `fields` and expects the form back. */
async function refused(
  browser: Browser,
  page: Page,
  fields: Record<string, string>,
): Promise<Page> {
  return asPage(await browser.submit(page, fields, client.redirectUri));
}

describe('lockout', () => {
  it('signs in after four wrong passwords and resets the counter', async () => {
    const person = await createAccount(test, tenantId);
    const { browser, login } = await openSignIn(client);
    let page = login;

    for (let n = 1; n <= 4; n += 1) {
      page = await refused(browser, page, credentials(person, wrongPassword(n)));
      expect(page.status).toBe(401);
      expect(text(page)).toContain(messages.loginFailed);
    }
    expect((await storedAccount(test, person.account._id)).lockout.count).toBe(4);

    const callback = asRedirect(
      await browser.submit(page, credentials(person), client.redirectUri),
    );

    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
    const stored = await storedAccount(test, person.account._id);
    expect(stored.lockout).toMatchObject({ count: 0, failures: [], lockedAt: null });
  });

  it('locks after five distinct wrong passwords and then refuses the correct one', async () => {
    const person = await createAccount(test, tenantId);
    const { browser, login } = await openSignIn(client);
    let page = login;

    for (let n = 1; n <= 4; n += 1) {
      page = await refused(browser, page, credentials(person, wrongPassword(n)));
      expect(text(page)).toContain(messages.loginFailed);
    }
    page = await refused(browser, page, credentials(person, wrongPassword(5)));
    expect(page.status).toBe(401);
    expect(text(page)).toContain(messages.locked);
    expect(text(page)).not.toContain(messages.loginFailed);

    page = await refused(browser, page, credentials(person));
    expect(page.status).toBe(401);
    expect(text(page)).toContain(messages.locked);

    const stored = await storedAccount(test, person.account._id);
    expect(stored.lockout.count).toBe(5);
    expect(stored.lockout.lockedAt).toBeInstanceOf(Date);
    expect(stored.lastLoginAt).toBeNull();
    const locks = await auditEvents(test, {
      action: 'account.locked',
      'target.accountId': person.account._id,
    });
    expect(locks).toHaveLength(1);
    const logins = await auditEvents(test, {
      action: 'login',
      'target.accountId': person.account._id,
    });
    expect(logins.map((event) => [event.outcome, event.reason])).toEqual([
      ...Array(5).fill(['failure', 'wrong_password']),
      ['failure', 'locked'],
    ]);
  });

  it('answers an unknown username like a wrong password four times and as locked from the fifth failure on', async () => {
    const { browser, login } = await openSignIn(client);
    const unknown = { tenant: tenantId, username: `niemand${randomBytes(3).toString('hex')}` };
    let page = login;

    for (let n = 1; n <= 4; n += 1) {
      page = await refused(browser, page, { ...unknown, password: wrongPassword(n) });
      expect(page.status).toBe(401);
      expect(text(page)).toContain(messages.loginFailed);
    }
    for (let n = 5; n <= 6; n += 1) {
      page = await refused(browser, page, { ...unknown, password: wrongPassword(n) });
      expect(page.status).toBe(401);
      expect(text(page)).toContain(messages.locked);
    }

    const reasons = (
      await auditEvents(test, { action: 'login', 'target.username': unknown.username })
    ).map((event) => event.reason);
    expect(reasons).toEqual([...Array(5).fill('unknown_account'), 'unknown_account_locked']);
  });

  it('answers an existing username under a wrong tenant like a wrong password, locks that name only, and leaves the account alone', async () => {
    const person = await createAccount(test, tenantId);
    const { browser, login } = await openSignIn(client);
    const wrongTenant = {
      tenant: `gibtsnicht${randomBytes(2).toString('hex')}`,
      username: person.username,
    };
    let page = login;

    for (let n = 1; n <= 4; n += 1) {
      page = await refused(browser, page, { ...wrongTenant, password: person.password + n });
      expect(text(page)).toContain(messages.loginFailed);
    }
    page = await refused(browser, page, { ...wrongTenant, password: person.password });
    expect(page.status).toBe(401);
    expect(text(page)).toContain(messages.locked);
    page = await refused(browser, page, { ...wrongTenant, password: wrongPassword(6) });
    expect(text(page)).toContain(messages.locked);

    expect((await storedAccount(test, person.account._id)).lockout.count).toBe(0);
    const callback = asRedirect(
      await browser.submit(page, credentials(person), client.redirectUri),
    );
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('counts the same wrong password typed five times as one failure', async () => {
    const person = await createAccount(test, tenantId);
    const { browser, login } = await openSignIn(client);
    let page = login;
    const typo = wrongPassword(1);

    for (let n = 1; n <= 5; n += 1) {
      page = await refused(browser, page, credentials(person, typo));
      expect(text(page)).toContain(messages.loginFailed);
    }
    expect((await storedAccount(test, person.account._id)).lockout).toMatchObject({
      count: 1,
      lockedAt: null,
    });

    const callback = asRedirect(
      await browser.submit(page, credentials(person), client.redirectUri),
    );
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
    expect(
      await auditEvents(test, { action: 'account.locked', 'target.accountId': person.account._id }),
    ).toHaveLength(0);
  });

  it('counts the same wrong password typed five times for an unknown name as one failure', async () => {
    const unknown = {
      tenant: tenantId,
      username: `niemand${randomBytes(3).toString('hex')}`,
      password: wrongPassword(1),
    };

    const results: SignInResult[] = [];
    for (let n = 1; n <= 6; n += 1)
      results.push(await test.services.signIn.attempt(unknown, anonymous));

    expect(tally(results)).toEqual({ invalid: 6, locked: 0 });
  });

  // Parallel failures race in the database; a few rounds make a lost update show reliably.
  const rounds = 5;

  it('locks exactly once under 20 parallel distinct wrong passwords', async () => {
    for (let round = 1; round <= rounds; round += 1) {
      const person = await createAccount(test, tenantId);

      await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          test.services.signIn.attempt(credentials(person, wrongPassword(n)), anonymous),
        ),
      );

      const stored = await storedAccount(test, person.account._id);
      const locks = await auditEvents(test, {
        action: 'account.locked',
        'target.accountId': person.account._id,
      });
      expect({
        round,
        lockEvents: locks.length,
        count: stored.lockout.count,
        lockSet: stored.lockout.lockedAt instanceof Date,
      }).toEqual({
        round,
        lockEvents: 1,
        count: 5,
        lockSet: true,
      });
      expect(await test.services.signIn.attempt(credentials(person), anonymous)).toEqual({
        kind: 'locked',
      });
    }
  });

  it('answers four of 20 parallel distinct wrong passwords as wrong and the other 16 as locked', async () => {
    for (let round = 1; round <= rounds; round += 1) {
      const person = await createAccount(test, tenantId);

      const results = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          test.services.signIn.attempt(credentials(person, wrongPassword(n)), anonymous),
        ),
      );

      const counted = await auditEvents(test, {
        action: 'login',
        'target.accountId': person.account._id,
        'details.counted': true,
      });
      expect({ round, ...tally(results), countedFailures: counted.length }).toEqual({
        round,
        invalid: 4,
        locked: 16,
        countedFailures: 5,
      });
    }
  });

  it('locks when five distinct wrong passwords arrive at the same time', async () => {
    for (let round = 1; round <= rounds; round += 1) {
      const person = await createAccount(test, tenantId);

      const results = await Promise.all(
        Array.from({ length: 5 }, (_, n) =>
          test.services.signIn.attempt(credentials(person, wrongPassword(n)), anonymous),
        ),
      );

      const stored = await storedAccount(test, person.account._id);
      expect({
        round,
        ...tally(results),
        count: stored.lockout.count,
        lockSet: stored.lockout.lockedAt instanceof Date,
      }).toEqual({
        round,
        invalid: 4,
        locked: 1,
        count: 5,
        lockSet: true,
      });
    }
  });

  it('keeps the lock of an unknown name as long as an account lock, so waiting tells nothing', async () => {
    const attempt = (password: string) =>
      test.services.signIn.attempt(
        { tenant: tenantId, username: 'gibt.es.nicht', password },
        system,
      );
    for (let i = 1; i <= 5; i += 1) await attempt(`Falsch-${i}!`);
    expect((await attempt('Falsch-6!')).kind).toBe('locked');

    const aYearLater = new Date(Date.now() + 365 * 86_400_000);
    await new Housekeeping(test.services.db, test.services.audit, 400, test.services.log).runOnce(
      aYearLater,
    );
    test.clock.offsetMs = 365 * 86_400_000;
    try {
      expect((await attempt('Falsch-7!')).kind).toBe('locked');
    } finally {
      test.clock.offsetMs = 0;
    }
  });

  it('locks an unknown name under 20 parallel wrong passwords like an account', async () => {
    for (let round = 1; round <= rounds; round += 1) {
      const unknown = { tenant: tenantId, username: `niemand${randomBytes(3).toString('hex')}` };

      const results = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          test.services.signIn.attempt({ ...unknown, password: wrongPassword(n) }, anonymous),
        ),
      );

      expect({ round, ...tally(results) }).toEqual({ round, invalid: 4, locked: 16 });
      expect(
        await test.services.signIn.attempt({ ...unknown, password: wrongPassword(99) }, anonymous),
      ).toEqual({ kind: 'locked' });
    }
  });

  it('keeps a refresh token issued before the lock working after the lock', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person, {
      scope: 'openid profile offline_access',
    });
    expect(tokens.refresh_token).toEqual(expect.any(String));

    await lock(test, person);

    const refreshed = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);
    expect(refreshed.access_token).toEqual(expect.any(String));
    expect(refreshed.claims()?.sub).toBe(person.account._id);
    const introspection = await oidc.tokenIntrospection(client.config, refreshed.access_token);
    expect(introspection).toMatchObject({ active: true, sub: person.account._id });
  });

  it('keeps an existing session signing in to relying parties after the lock', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await lock(test, person);

    const again = await authorizationRequest(client);
    const callback = asRedirect(await browser.visit(again.url.href, client.redirectUri));

    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('counts wrong passwords on a deactivated account towards the lock', async () => {
    const person = await createAccount(test, tenantId);
    await test.services.accounts.setState(person.account._id, 'deactivated', system);
    const { browser, login } = await openSignIn(client);
    let page = login;

    for (let n = 1; n <= 5; n += 1)
      page = await refused(browser, page, credentials(person, wrongPassword(n)));
    expect(text(page)).toContain(messages.locked);
    page = await refused(browser, page, credentials(person));

    expect(text(page)).toContain(messages.locked);
    expect(text(page)).not.toContain(messages.deactivated);
    expect((await storedAccount(test, person.account._id)).lockout.count).toBe(5);
  });

  it('lifts the lock when a local admin unlocks the account', async () => {
    const person = await createAccount(test, tenantId);
    await lock(test, person);

    await test.services.accounts.unlock(person.account._id, system);

    const { tokens } = await signInForTokens(client, person);
    expect(tokens.claims()?.sub).toBe(person.account._id);
    expect((await storedAccount(test, person.account._id)).lockout).toMatchObject({
      count: 0,
      lockedAt: null,
    });
    expect(
      await auditEvents(test, {
        action: 'account.unlocked',
        'target.accountId': person.account._id,
      }),
    ).toHaveLength(1);
  });

  it('keeps the lock however much time passes while automatic unlock is off', async () => {
    const person = await createAccount(test, tenantId);
    await lock(test, person);

    test.clock.offsetMs = 400 * 86_400_000;
    try {
      expect(await test.services.signIn.attempt(credentials(person), anonymous)).toEqual({
        kind: 'locked',
      });
    } finally {
      test.clock.offsetMs = 0;
    }
  });
});

describe('automatic unlock, when configured', () => {
  let unlocking: TestServer;

  beforeAll(async () => {
    unlocking = await startTestServer({ LOCKOUT_AUTO_UNLOCK_MINUTES: '30' });
  });
  afterAll(() => unlocking.close());

  it('lifts the lock after the configured minutes and starts counting afresh', async () => {
    const tenant = await createTenant(unlocking);
    const person = await createAccount(unlocking, tenant.id);
    await lock(unlocking, person);

    unlocking.clock.offsetMs = 29 * 60_000;
    expect(await unlocking.services.signIn.attempt(credentials(person), anonymous)).toEqual({
      kind: 'locked',
    });

    unlocking.clock.offsetMs = 31 * 60_000;
    expect(await unlocking.services.signIn.attempt(credentials(person), anonymous)).toMatchObject({
      kind: 'success',
    });
    expect((await storedAccount(unlocking, person.account._id)).lockout).toMatchObject({
      count: 0,
      lockedAt: null,
    });
  });

  it('lifts the lock of an unknown name after the configured minutes', async () => {
    const tenant = await createTenant(unlocking);
    const unknown = { tenant: tenant.id, username: 'niemand' };
    unlocking.clock.offsetMs = 0;
    for (let n = 1; n <= 5; n += 1)
      await unlocking.services.signIn.attempt(
        { ...unknown, password: wrongPassword(n) },
        anonymous,
      );
    expect(
      await unlocking.services.signIn.attempt(
        { ...unknown, password: wrongPassword(6) },
        anonymous,
      ),
    ).toEqual({ kind: 'locked' });

    unlocking.clock.offsetMs = 31 * 60_000;

    expect(
      await unlocking.services.signIn.attempt(
        { ...unknown, password: wrongPassword(7) },
        anonymous,
      ),
    ).toEqual({ kind: 'invalid' });
  });
});
