/**
 * Anti-automation before hashing: growing delays per name and per client address, decided
 * in the database before any argon2 work, and a bounded hashing queue that answers 503 with
 * `Retry-After` when it is full.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';

import { BUSY_ADDRESS_WAIT_MS, delayAfter, SignInThrottle } from '../../src/accounts/throttle.ts';
import { auditWording } from '../../src/admin/audit-wording.ts';
import type { RequestContext } from '../../src/audit/trail.ts';
import { translator } from '../../src/http/views.ts';
import { asPage, text } from '../support/browser.ts';
import { auditEvents, credentials, formOf, messages, openSignIn } from '../support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestServer,
} from '../support/server.ts';

const throttled = 'Zu viele Anmeldeversuche in kurzer Zeit.';
const wrong = () => `Falsch-${randomBytes(3).toString('hex')}-1!`;
const from = (ip: string): RequestContext => ({ actor: { kind: 'anonymous' }, ip });

describe('sign-in delays', () => {
  let test: TestServer;
  let tenantId: string;
  let person: TestAccount;
  let hashing: ReturnType<typeof jest.spyOn>;

  beforeAll(async () => {
    test = await startTestServer({
      SIGNIN_DELAY_BASE_MS: '1000',
      SIGNIN_DELAY_MAX_SECONDS: '60',
      SIGNIN_FREE_FAILURES_PER_ADDRESS: '4',
    });
    ({ id: tenantId } = await createTenant(test));
    person = await createAccount(test, tenantId);
    hashing = jest.spyOn(test.services.hasher.queue, 'run');
  });
  afterAll(() => test.close());

  const attempt = (username: string, password: string, ip: string) =>
    test.services.signIn.attempt({ tenant: tenantId, username, password }, from(ip));
  const advance = (ms: number) => (test.clock.offsetMs += ms);

  it('doubles the delay after each failure of a name, up to the maximum', () => {
    const settings = {
      windowMinutes: 15,
      baseDelayMs: 1000,
      maxDelayMs: 60_000,
      nameFreeFailures: 1,
      addressFreeFailures: 10,
      addressConcurrentAttempts: 20,
    };
    const name = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => delayAfter(n, 1, settings));
    expect(name).toEqual([0, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    expect(delayAfter(9, 10, settings)).toBe(0);
    expect(delayAfter(10, 10, settings)).toBe(1000);
  });

  it('answers an attempt on a name too soon after its failure without hashing', async () => {
    const ip = '192.0.2.10';
    expect((await attempt(person.username, wrong(), ip)).kind).toBe('invalid');
    const before = hashing.mock.calls.length;

    const early = await attempt(person.username, person.password, ip);
    expect(early).toEqual({ kind: 'throttled', retryAfterSeconds: 1 });
    expect(hashing.mock.calls.length).toBe(before);

    advance(1000);
    expect((await attempt(person.username, wrong(), ip)).kind).toBe('invalid');
    expect(await attempt(person.username, wrong(), ip)).toEqual({
      kind: 'throttled',
      retryAfterSeconds: 2,
    });
    advance(2000);
    expect((await attempt(person.username, person.password, ip)).kind).toBe('success');
    // A right password clears the name: the next failure is free again.
    expect((await attempt(person.username, wrong(), ip)).kind).toBe('invalid');
    advance(60_000);
  });

  it('treats a name without an account exactly like one with an account', async () => {
    const ip = '192.0.2.11';
    const nobody = `niemand${randomBytes(3).toString('hex')}`;
    expect((await attempt(nobody, wrong(), ip)).kind).toBe('invalid');
    const before = hashing.mock.calls.length;
    expect(await attempt(nobody, wrong(), ip)).toEqual({ kind: 'throttled', retryAfterSeconds: 1 });
    expect(hashing.mock.calls.length).toBe(before);
    advance(60_000);
  });

  it('slows down one address trying many names, before hashing', async () => {
    const ip = '2001:db8:5:7::1';
    for (let n = 0; n < 4; n += 1) {
      expect((await attempt(`reihe${n}x${randomBytes(2).toString('hex')}`, wrong(), ip)).kind).toBe(
        'invalid',
      );
    }
    const before = hashing.mock.calls.length;
    // Another address of the same /64 is the same subscriber.
    const typed = `Reihe5x${randomBytes(2).toString('hex')}`;
    const fifth = await attempt(typed, wrong(), '2001:db8:5:7::9');
    expect(fifth).toEqual({ kind: 'throttled', retryAfterSeconds: 1 });
    expect(hashing.mock.calls.length).toBe(before);
    // Other addresses are not affected.
    expect(
      (await attempt(`frei${randomBytes(2).toString('hex')}`, wrong(), '192.0.2.12')).kind,
    ).toBe('invalid');

    // The refusal names the username as typed, so admins find it under that name.
    const refusals = await auditEvents(test, { action: 'login', reason: 'throttled' });
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(
      await auditEvents(test, { action: 'login', reason: 'throttled', 'target.username': typed }),
    ).toHaveLength(1);
    advance(60_000);
  });

  it('lets a person sign in from another address while one address keeps failing on the name', async () => {
    const victim = await createAccount(test, tenantId);
    const attacker = '203.0.113.20';
    const same = wrong();
    // The attacker's address first fails often enough on the name for a delay of 16 s, longer
    // than the rounds below take on a busy machine.
    for (const wait of [1100, 2100, 4100, 8100, 0]) {
      expect((await attempt(victim.username, same, attacker)).kind).toBe('invalid');
      advance(wait);
    }
    for (let round = 0; round < 4; round += 1) {
      // Parallel attempts with one wrong password: a retyped password never locks.
      const burst = await Promise.all(
        Array.from({ length: 4 }, () => attempt(victim.username, same, attacker)),
      );
      expect(burst.some((result) => result.kind === 'throttled')).toBe(true);
      expect((await attempt(victim.username, victim.password, '198.51.100.20')).kind).toBe(
        'success',
      );
      // The right password from elsewhere does not lift the attacker's delay on the name.
      expect((await attempt(victim.username, same, attacker)).kind).toBe('throttled');
      advance(1000);
    }
    const events = await auditEvents(test, {
      action: 'login',
      reason: 'throttled',
      'target.username': victim.username,
    });
    expect(events.length).toBeGreaterThanOrEqual(8);
    expect(events.every((event) => event.ip === attacker)).toBe(true);
    advance(60_000);
  });

  it('counts attempts refused for a delay against their address', async () => {
    const ip = '203.0.113.21';
    const name = `eilig${randomBytes(3).toString('hex')}`;
    expect((await attempt(name, wrong(), ip)).kind).toBe('invalid');
    // The name's delay from this address runs; six more attempts during it are refused.
    for (let n = 0; n < 6; n += 1)
      expect((await attempt(name, wrong(), ip)).kind).toBe('throttled');
    const before = hashing.mock.calls.length;

    // One failure and six refusals of the address, four of them free: 1 s doubled 3 times.
    expect(await attempt(`anderer${randomBytes(3).toString('hex')}`, wrong(), ip)).toEqual({
      kind: 'throttled',
      retryAfterSeconds: 8,
    });
    expect(hashing.mock.calls.length).toBe(before);
    // Other addresses are not slowed.
    expect((await attempt(name, wrong(), '203.0.113.22')).kind).toBe('invalid');
    advance(60_000);
  });

  it('lifts the delays of a name from every address when an admin unlocks the account', async () => {
    const person = await createAccount(test, tenantId);
    const ips = ['203.0.113.23', '203.0.113.24'];
    for (const ip of ips) {
      expect((await attempt(person.username, wrong(), ip)).kind).toBe('invalid');
      advance(1000);
      expect((await attempt(person.username, wrong(), ip)).kind).toBe('invalid');
      expect((await attempt(person.username, person.password, ip)).kind).toBe('throttled');
    }

    expect(await test.services.accounts.unlock(person.account._id, from('192.0.2.99'))).toBe(true);

    for (const ip of ips)
      expect((await attempt(person.username, person.password, ip)).kind).toBe('success');
    const [unlocked] = await auditEvents(test, {
      action: 'account.unlocked',
      'target.accountId': person.account._id,
    });
    expect(unlocked?.details).toEqual({ lock: false, delays: true });
    // Without a lock or a delay there is nothing to lift.
    expect(await test.services.accounts.unlock(person.account._id, from('192.0.2.99'))).toBe(false);
    advance(60_000);
  });

  it('lets more people of one address sign in at the same moment than it has free failures', async () => {
    const ip = '192.0.2.14';
    const staff = await Promise.all(Array.from({ length: 8 }, () => createAccount(test, tenantId)));
    const results = await Promise.all(
      staff.map((member) => attempt(member.username, member.password, ip)),
    );
    expect(results.map((result) => result.kind)).toEqual(staff.map(() => 'success'));
  });

  it('bounds the attempts of one address in progress, before hashing', async () => {
    const throttle = new SignInThrottle(
      test.services.db,
      {
        windowMinutes: 15,
        baseDelayMs: 1000,
        maxDelayMs: 60_000,
        nameFreeFailures: 1,
        addressFreeFailures: 10,
        addressConcurrentAttempts: 2,
      },
      () => new Date(Date.now() + test.clock.offsetMs),
    );
    const ip = '192.0.2.15';
    const first = await throttle.admit(`name:erster${randomBytes(2).toString('hex')}`, ip);
    const second = await throttle.admit(`name:zweiter${randomBytes(2).toString('hex')}`, ip);
    const third = await throttle.admit(`name:dritter${randomBytes(2).toString('hex')}`, ip);
    expect([first.admitted, second.admitted]).toEqual([true, true]);
    expect(third).toEqual({ admitted: false, retryAfterMs: BUSY_ADDRESS_WAIT_MS });

    // A settled failure no longer counts as in progress, but as a failure of the address.
    if (!first.admitted) throw new Error('unreachable');
    await throttle.failed(first);
    expect(
      (await throttle.admit(`name:vierter${randomBytes(2).toString('hex')}`, ip)).admitted,
    ).toBe(true);
    advance(60_000);
  });

  it('forgets failures older than the window', async () => {
    const ip = '192.0.2.13';
    expect((await attempt(person.username, wrong(), ip)).kind).toBe('invalid');
    advance(15 * 60_000 + 1);
    expect((await attempt(person.username, person.password, ip)).kind).toBe('success');
  });

  it('shows the German page with status 429 and Retry-After', async () => {
    const client = await createClient(test);
    const { browser, login } = await openSignIn(client);
    const first = asPage(await browser.submit(login, credentials(person, wrong())));
    expect(first.status).toBe(401);

    const { action, hidden } = formOf(first);
    const response = await browser.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...hidden, ...credentials(person, wrong()) }),
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(await response.text()).toContain(throttled);
    expect(text(first)).toContain(messages.loginFailed);
  });
});

describe('hashing queue', () => {
  let test: TestServer;
  let tenantId: string;

  beforeAll(async () => {
    test = await startTestServer({ HASH_CONCURRENCY: '1', HASH_QUEUE_LIMIT: '2' });
    ({ id: tenantId } = await createTenant(test));
  });
  afterAll(() => test.close());

  it('answers 503 with Retry-After when full, instead of letting latency grow', async () => {
    const client = await createClient(test);
    const { browser, login } = await openSignIn(client);
    const { action, hidden } = formOf(login);
    const post = (n: number) =>
      browser.request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          ...hidden,
          tenant: tenantId,
          username: `flut${n}`,
          password: wrong(),
        }),
      });

    const answers = await Promise.all(
      Array.from({ length: 24 }, async (_, n) => {
        const response = await post(n);
        return {
          status: response.status,
          retryAfter: response.headers.get('retry-after'),
          html: await response.text(),
        };
      }),
    );

    const busy = answers.filter((answer) => answer.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(answers.every((answer) => answer.status === 401 || answer.status === 503)).toBe(true);
    expect(busy.every((answer) => answer.retryAfter === '5')).toBe(true);
    expect(busy[0]!.html).toContain('Die Anmeldung ist gerade stark ausgelastet.');
    // Each attempt turned away is in the audit trail, under the username typed.
    const events = await auditEvents(test, { action: 'login', reason: 'busy' });
    expect(events).toHaveLength(busy.length);
    expect(events.every((event) => /^flut\d+$/.test(String(event.target?.username)))).toBe(true);
    expect(events.every((event) => event.outcome === 'failure')).toBe(true);
    expect(auditWording(translator('de')).reason('busy')).toBe(
      'Anmeldung ausgelastet, nicht geprüft',
    );
    // Latency stays bounded: never more than one hash ran and two waited.
    expect(test.services.hasher.queue.peakActive).toBe(1);
    expect(test.services.hasher.queue.peakWaiting).toBeLessThanOrEqual(2);
  });
});
