/**
 * The tamper-evident audit trail: events chained by hash per tenant, appended by concurrent
 * writers without transactions, checked by `flueag-idp audit verify`, which notices an edited
 * or deleted event and accepts the prefix that retention removed.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { linkHash, type ChainLink } from '../../src/audit/chain.ts';
import type { RequestContext } from '../../src/audit/trail.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const DAY = 86_400_000;

let test: TestServer;
let tenantCounter = 0;

beforeAll(async () => {
  test = await startTestServer();
});
afterAll(() => test.close());

const context: RequestContext = { actor: { kind: 'system' }, requestId: 'chain-test' };
const newTenant = () => `chain${(tenantCounter += 1)}`;
const events = () => test.services.db.collection('audit_events');

async function record(tenantId: string, count: number) {
  for (let n = 0; n < count; n += 1) {
    await test.services.audit.record(context, {
      tenantId,
      action: 'login',
      outcome: 'failure',
      reason: 'wrong_password',
      target: { username: `person${n}` },
      details: { counted: true, n },
    });
  }
}

const chainOf = async (tenantId: string) =>
  (await events().find({ tenantId }).sort({ 'chain.seq': 1 }).toArray()).map(
    (event) => event.chain as ChainLink,
  );

async function problems(tenantId: string) {
  const [report] = await test.services.audit.verify(tenantId);
  return report!.problems;
}

function cli(...args: string[]): Promise<{ code: number; stdout: string }> {
  const env = { ...process.env, MONGODB_URI: test.databaseUri, DATA_DIR: test.dataDir };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/flueag-idp.js'), ...args],
      { env, cwd: root },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

describe('audit chain', () => {
  it('links every event of a tenant to its predecessor, also with concurrent writers', async () => {
    const tenantId = newTenant();
    await Promise.all(
      Array.from({ length: 30 }, (_, n) =>
        test.services.audit.record(context, {
          tenantId,
          action: 'login',
          outcome: 'success',
          details: { n },
        }),
      ),
    );

    const chain = await chainOf(tenantId);
    expect(chain.map((link) => link.seq)).toEqual(Array.from({ length: 30 }, (_, n) => n + 1));
    for (let n = 1; n < chain.length; n += 1) expect(chain[n]!.prev).toBe(chain[n - 1]!.hash);
    expect(await problems(tenantId)).toEqual([]);
  });

  it('continues after a head that lags behind the newest event', async () => {
    const tenantId = newTenant();
    await record(tenantId, 3);
    // As a writer leaves it that stopped between its claim and the head, or was overtaken.
    await test.services.db
      .collection<{ _id: string }>('audit_chain_heads')
      .updateOne({ _id: tenantId }, { $set: { seq: 1, hash: (await chainOf(tenantId))[0]!.hash } });

    await record(tenantId, 2);

    const chain = await chainOf(tenantId);
    expect(chain.map((link) => link.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(chain[3]!.prev).toBe(chain[2]!.hash);
    expect(await problems(tenantId)).toEqual([]);
  });

  it('notices an edited event, also when its own hash was recomputed', async () => {
    const tenantId = newTenant();
    await record(tenantId, 5);
    const chain = await chainOf(tenantId);

    await events().updateOne(
      { tenantId, 'chain.seq': 3 },
      { $set: { outcome: 'success', reason: null } },
    );
    expect(await problems(tenantId)).toEqual([
      { kind: 'edited', seq: 3, eventId: expect.any(String) },
    ]);

    // Recomputing the edited event's own hash breaks the link of the next event instead.
    const edited = (await events().findOne({ tenantId, 'chain.seq': 3 }))!;
    await events().updateOne({ _id: edited._id }, { $set: { 'chain.hash': linkHash(edited) } });
    expect(await problems(tenantId)).toEqual([
      { kind: 'broken_link', seq: 4, eventId: expect.any(String) },
    ]);
    expect(chain).toHaveLength(5);
  });

  it('notices a deleted event in the middle and at the end', async () => {
    const tenantId = newTenant();
    await record(tenantId, 6);

    await events().deleteOne({ tenantId, 'chain.seq': 3 });
    expect(await problems(tenantId)).toEqual([{ kind: 'missing', fromSeq: 3, toSeq: 3 }]);

    await events().deleteMany({ tenantId, 'chain.seq': { $gte: 5 } });
    expect(await problems(tenantId)).toEqual([
      { kind: 'missing', fromSeq: 3, toSeq: 3 },
      { kind: 'missing', fromSeq: 5, toSeq: 6 },
    ]);
  });

  it('checks every chain at once as it checks each alone, also a chain with no event left', async () => {
    const [intact, edited, emptied] = [newTenant(), newTenant(), newTenant()];
    await record(intact, 3);
    await record(edited, 3);
    await record(emptied, 2);
    await events().updateOne({ tenantId: edited, 'chain.seq': 2 }, { $set: { reason: 'x' } });
    await events().deleteMany({ tenantId: emptied });

    const all = await test.services.audit.verify();
    for (const tenantId of [intact, edited, emptied]) {
      const [alone] = await test.services.audit.verify(tenantId);
      expect(all.find((report) => report.key === tenantId)).toEqual(alone);
    }
    expect(all.find((report) => report.key === edited)!.problems).toEqual([
      expect.objectContaining({ kind: 'edited', seq: 2 }),
    ]);
    expect(all.find((report) => report.key === emptied)).toMatchObject({
      events: 0,
      problems: [{ kind: 'missing', fromSeq: 1, toSeq: 2 }],
    });
    expect(all.map((report) => report.key)).toEqual(all.map((report) => report.key).sort());
  });

  it('accepts the prefix that retention purged, and nothing more', async () => {
    const tenantId = newTenant();
    test.clock.offsetMs = -500 * DAY;
    await record(tenantId, 4);
    test.clock.offsetMs = 0;
    await record(tenantId, 3);

    const removed = await test.services.audit.purgeOlderThan(400);
    expect(removed).toBeGreaterThanOrEqual(4);
    const [report] = await test.services.audit.verify(tenantId);
    expect(report).toMatchObject({ firstSeq: 5, lastSeq: 7, purgedThrough: 4, problems: [] });

    // The next event continues the chain where it stands, also when its head lags behind.
    await test.services.db
      .collection('audit_chain_heads')
      .updateOne({ _id: tenantId as never }, { $set: { seq: 1 } });
    await record(tenantId, 1);
    expect((await chainOf(tenantId)).at(-1)!.seq).toBe(8);

    await events().deleteOne({ tenantId, 'chain.seq': 5 });
    expect(await problems(tenantId)).toEqual([{ kind: 'missing', fromSeq: 5, toSeq: 5 }]);
  });

  it('flueag-idp audit verify exits 0 for an intact trail and 1 naming the broken event', async () => {
    const tenantId = newTenant();
    await record(tenantId, 3);

    const intact = await cli('audit', 'verify', '--tenant', tenantId);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain(`tenant ${tenantId}: events 1–3: ok`);

    await events().updateOne(
      { tenantId, 'chain.seq': 2 },
      { $set: { 'target.username': 'jemand' } },
    );
    const broken = await cli('--json', 'audit', 'verify', '--tenant', tenantId);
    expect(broken.code).toBe(1);
    const report = JSON.parse(broken.stdout) as {
      intact: boolean;
      chains: Array<{ problems: unknown[] }>;
    };
    expect(report.intact).toBe(false);
    expect(report.chains[0]!.problems).toEqual([
      { kind: 'edited', seq: 2, eventId: expect.any(String) },
    ]);

    const text = await cli('audit', 'verify');
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`tenant ${tenantId}: events 1–3: event 2 (`);
    expect(text.stdout).toContain('audit trail NOT intact');
  });
});
