/**
 * Sign-in timing (design 3.1): an unknown tenant, an unknown username, a locked account and
 * a wrong password cost the same, one argon2 verification each, so the time of the answer
 * tells nothing about which names exist or which account is locked.
 *
 * The cases run interleaved, round after round, so that the load of a shared machine falls
 * on all of them alike; the test compares medians, which ignore the outliers such a
 * machine produces, and checks that every case includes one full verification.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { RequestContext } from '../../src/audit/trail.ts';
import {
  createAccount,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestServer,
} from '../support/server.ts';

const ROUNDS = 40;
/** Medians may differ by this share of the verification time; a missing hash differs by all of it. */
const TOLERANCE = 0.35;

let test: TestServer;
let tenantId: string;
let open: TestAccount;
let locked: TestAccount;

const context: RequestContext = { actor: { kind: 'anonymous' }, ip: '192.0.2.50' };

beforeAll(async () => {
  test = await startTestServer();
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
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const [name, work] of Object.entries(cases)) times[name]!.push(await timed(work));
    }

    const medians = Object.fromEntries(
      Object.entries(times).map(([name, values]) => [name, median(values)]),
    );
    const { bare_verification: verification, ...signInCases } = medians;
    const values = Object.values(signInCases);
    const spread = Math.max(...values) - Math.min(...values);
    process.stdout.write(
      `sign-in timing medians (ms, ${ROUNDS} rounds): ${JSON.stringify(
        Object.fromEntries(Object.entries(medians).map(([k, v]) => [k, Math.round(v * 10) / 10])),
      )}, spread ${spread.toFixed(1)} ms\n`,
    );

    // Every case includes one full verification …
    for (const value of values) expect(value).toBeGreaterThan(0.8 * verification!);
    // … and they differ by much less than one.
    expect(spread).toBeLessThan(TOLERANCE * verification!);
  });
});
