/**
 * Sign-in timing (design 3.1): an unknown tenant, an unknown username, a locked account and
 * a wrong password cost the same, one argon2 verification each, so the time of the answer
 * tells nothing about which names exist or which account is locked.
 *
 * Each case is checked to run exactly one verification (the dummy hash where there is no
 * account), and with the configured floor (300 ms, the default) every failure is answered no sooner
 * than that, which also hides the different database work of the cases. The cases run in a
 * new random order each round, and each is compared with the wrong password of the same
 * round by the median difference, which ignores the outliers of a loaded machine.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';

import type { RequestContext } from '../../src/audit/trail.ts';
import {
  createAccount,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestServer,
} from '../support/server.ts';

const ROUNDS = 24;
/** Medians may differ by this share of the verification time; a missing hash differs by all of it. */
const TOLERANCE = 0.35;

let test: TestServer;
let tenantId: string;
let open: TestAccount;
let locked: TestAccount;

const context: RequestContext = { actor: { kind: 'anonymous' }, ip: '192.0.2.50' };

beforeAll(async () => {
  test = await startTestServer({ SIGNIN_FAILURE_FLOOR_MS: '300' });
  ({ id: tenantId } = await createTenant(test));
  open = await createAccount(test, tenantId);
  locked = await createAccount(test, tenantId);
  for (let n = 0; n < 5; n += 1) {
    await test.services.signIn.attempt(
      { tenant: tenantId, username: locked.username, password: `Falsch-${n}-x!` },
      context,
    );
  }
});
afterAll(() => test.close());

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 === 1
    ? sorted[Math.floor(middle)]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

describe('sign-in timing', () => {
  it('takes the same time for unknown tenant, unknown user, locked account and wrong password', async () => {
    const { signIn, hasher } = test.services;
    const hashing = jest.spyOn(hasher.queue, 'run');
    // The same wrong password each time: a retyped one is checked but not counted, so the
    // open account never locks during the measurement.
    const wrong = `Falsch-${randomBytes(3).toString('hex')}!`;
    const attempt = (tenant: string, username: string) => () =>
      signIn.attempt({ tenant, username, password: wrong }, context);
    const sample = await hasher.hash('Vergleich-1!');
    const cases: Record<string, () => Promise<unknown>> = {
      unknown_tenant: attempt('Nirgendwo-Gemeinde', open.username),
      unknown_user: attempt(tenantId, 'niemand-hier'),
      locked: attempt(tenantId, locked.username),
      wrong_password: attempt(tenantId, open.username),
      bare_verification: () => hasher.verify(sample, wrong),
    };
    const times: Record<string, number[]> = Object.fromEntries(
      Object.keys(cases).map((name) => [name, []]),
    );

    for (const work of Object.values(cases)) await work(); // warm-up: first calls, caches
    const names = Object.keys(cases);
    for (let round = 0; round < ROUNDS; round += 1) {
      // A new order each round, so that no case always follows the same other one.
      const order = [...names].sort(() => Math.random() - 0.5);
      for (const name of order) times[name]!.push(await timed(cases[name]!));
    }

    const medians = Object.fromEntries(names.map((name) => [name, median(times[name]!)]));
    // Each case against the wrong password of the same round: load that drifts over the run
    // falls on both and cancels.
    const differences = Object.fromEntries(
      names
        .filter((name) => name !== 'bare_verification' && name !== 'wrong_password')
        .map((name) => [
          name,
          median(times[name]!.map((value, round) => value - times.wrong_password![round]!)),
        ]),
    );
    const verification = medians.bare_verification!;
    const round1 = (v: number) => Math.round(v * 10) / 10;
    process.stdout.write(
      `sign-in timing (ms, ${ROUNDS} rounds): medians ${JSON.stringify(
        Object.fromEntries(Object.entries(medians).map(([k, v]) => [k, round1(v)])),
      )}, median difference to wrong_password ${JSON.stringify(
        Object.fromEntries(Object.entries(differences).map(([k, v]) => [k, round1(v)])),
      )}\n`,
    );

    // Every case includes exactly one verification …
    for (const [name, work] of Object.entries(cases)) {
      const before = hashing.mock.calls.length;
      await work();
      expect([name, hashing.mock.calls.length - before]).toEqual([name, 1]);
    }
    // … and none differs from a wrong password by more than a fraction of one.
    for (const difference of Object.values(differences)) {
      expect(Math.abs(difference)).toBeLessThan(TOLERANCE * verification);
    }
  }, 120_000);
});
