/**
 * The hash chain of the audit trail: every event carries its tenant chain's key, its
 * sequence number, the hash of the previous event and its own hash over all its fields, so
 * that an edited, inserted or deleted event breaks the chain (BSI OPS.1.1.5, ASVS 5.0 16.4).
 *
 * Appending uses single-document atomic operations only (FerretDB has no transactions, and
 * its conditional updates are not isolated, see db/leases.ts): a writer reads where the
 * chain stands and inserts its event with the next sequence number; a unique index on
 * (chain key, sequence) — the `_id` of its position document in `audit_chain` — lets exactly
 * one of two concurrent writers win, and the other reads
 * again and retries. Writers find the next position by `_id` look-ups, never by scanning
 * events (FerretDB 1.x sorts a query in memory). A position document per link and a head
 * document per chain remember what exists and what retention purged, so that a deleted
 * tail or a prefix deleted beyond the purge is noticed too.
 */
import { createHash } from 'node:crypto';

import type { Collection, Document } from 'mongodb';

import { AppError } from '../errors.ts';

export interface ChainLink {
  key: string;
  seq: number;
  prev: string;
  hash: string;
}

/** Where a chain stands, kept beside the events; never the only proof of anything. */
export interface ChainHead {
  _id: string;
  seq: number;
  hash: string;
  /** The last link removed by retention, from which the remaining events continue. */
  purgedSeq: number;
  purgedHash: string;
}

/** The chain of a tenant; events without tenant (unknown authority, operator) share one. */
export const chainKey = (tenantId: string | null) => tenantId ?? '-';

const GENESIS = '';

/** JSON with sorted keys and dates as ISO strings: the bytes the hash is taken over. */
export function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (typeof (value as { toHexString?: unknown }).toHexString === 'function')
    return JSON.stringify((value as { toHexString(): string }).toHexString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    // Absent and null read alike: the driver may store an undefined field as null.
    .filter(([, v]) => v !== undefined && v !== null)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}

/** The hash of an event: over every field but its own hash, the previous hash included. */
export function linkHash(event: Document): string {
  const { chain, ...fields } = event as { chain: ChainLink };
  const { hash: _own, ...link } = chain;
  return createHash('sha256')
    .update(canonical({ ...fields, chain: link }))
    .digest('hex');
}

/** A claimed position of a chain; its `_id` is the position, so claiming is one insert. */
export interface ChainPosition {
  _id: string;
  hash: string;
  eventId: unknown;
  at: Date;
}

const positionId = (key: string, seq: number) => `${key}:${String(seq).padStart(12, '0')}`;

export interface ChainStore {
  events: Collection;
  heads: Collection<ChainHead>;
  positions: Collection<ChainPosition>;
}

/** Where `head` says its chain stands; after a purge it may lag behind the purge mark. */
function positionOf(head: ChainHead | null): { seq: number; hash: string } {
  return head && head.purgedSeq > head.seq
    ? { seq: head.purgedSeq, hash: head.purgedHash }
    : { seq: head?.seq ?? 0, hash: head?.hash ?? GENESIS };
}

/** Where the stored head says the chain stands. */
async function headPosition(
  store: ChainStore,
  key: string,
): Promise<{ seq: number; hash: string }> {
  return positionOf(await store.heads.findOne({ _id: key }));
}

/**
 * The newest claimed position of a chain: the head is a hint that may lag behind (it is
 * updated after the claim), so the positions after it are probed by `_id`, which FerretDB
 * answers from its primary key without scanning the events.
 */
async function newestPosition(
  store: ChainStore,
  key: string,
  from?: { seq: number; hash: string },
): Promise<{ seq: number; hash: string }> {
  let newest = from ?? (await headPosition(store, key));
  for (;;) {
    const next = await store.positions.findOne({ _id: positionId(key, newest.seq + 1) });
    if (!next) return newest;
    newest = { seq: newest.seq + 1, hash: next.hash };
  }
}

/**
 * Inserts `event` as the next link of its chain. The position is claimed first, by
 * inserting its document into `audit_chain` (of two writers exactly one succeeds; the other
 * reads again and retries), then the event is inserted with its link. The first claim goes
 * right after the head without probing, since the insert itself tells whether that position
 * is taken: the head is current unless another writer is between its claim and its head
 * update, and probing reads `audit_chain`, whose look-ups by `_id` still grow with its size
 * on FerretDB.
 */
export async function appendLinked(
  store: ChainStore,
  event: Document & { tenantId: string | null },
): Promise<ChainLink> {
  const key = chainKey(event.tenantId);
  let previous = await headPosition(store, key);
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const link = { key, seq: previous.seq + 1, prev: previous.hash, hash: '' };
    const document = { ...event, chain: link };
    link.hash = linkHash(document);
    try {
      await store.positions.insertOne({
        _id: positionId(key, link.seq),
        hash: link.hash,
        eventId: event._id,
        at: event.at as Date,
      });
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      if (attempt > 0) {
        await new Promise((resolve) =>
          setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 5)),
        );
      }
      previous = await newestPosition(store, key, attempt === 0 ? previous : undefined);
      continue;
    }
    await store.events.insertOne(document);
    await advanceHead(store.heads, key, link);
    return link;
  }
  throw new AppError(503, 'service.busy', { detail: `audit chain ${key} is contended` });
}

/**
 * Moves the head forward. The update names the head by `_id` alone (any other filter makes
 * FerretDB read every head); a writer that overtook another may so set it back by a link or
 * two, which is harmless, because readers probe from the head onwards (see newestPosition).
 */
async function advanceHead(heads: Collection<ChainHead>, key: string, link: ChainLink) {
  await heads
    .updateOne(
      { _id: key },
      {
        $set: { seq: link.seq, hash: link.hash },
        $setOnInsert: { purgedSeq: 0, purgedHash: GENESIS },
      },
      { upsert: true },
    )
    .catch((error: unknown) => {
      // Another writer created the head at the same moment; it is a hint, either is right.
      if ((error as { code?: number }).code !== 11000) throw error;
    });
}

/**
 * Deletes the events of every chain recorded before `cutoff`, oldest first, after noting
 * in the chain's head the last link it removes, so that verification accepts exactly that
 * gap. Events from before the chain existed are deleted by date.
 */
export async function purgeLinked(store: ChainStore, cutoff: Date): Promise<number> {
  const { events, heads, positions } = store;
  let removed = (await events.deleteMany({ chain: { $exists: false }, at: { $lt: cutoff } }))
    .deletedCount;
  const keys = (await events.distinct('chain.key', { at: { $lt: cutoff } })) as string[];
  for (const key of keys) {
    const last = await events.findOne(
      { 'chain.key': key, at: { $lt: cutoff } },
      { sort: { 'chain.seq': -1 }, projection: { chain: 1 } },
    );
    if (!last) continue;
    const link = last.chain as ChainLink;
    await heads
      .updateOne(
        { _id: key, purgedSeq: { $lt: link.seq } },
        {
          $set: { purgedSeq: link.seq, purgedHash: link.hash },
          $setOnInsert: { seq: link.seq, hash: link.hash },
        },
        { upsert: true },
      )
      .catch((error: unknown) => {
        if ((error as { code?: number }).code !== 11000) throw error;
      });
    removed += (await events.deleteMany({ 'chain.key': key, 'chain.seq': { $lte: link.seq } }))
      .deletedCount;
    await positions.deleteMany({
      _id: { $gte: positionId(key, 0), $lte: positionId(key, link.seq) },
    });
  }
  return removed;
}

export type ChainProblem =
  | { kind: 'edited'; seq: number; eventId: string }
  | { kind: 'broken_link'; seq: number; eventId: string }
  | { kind: 'missing'; fromSeq: number; toSeq: number }
  | { kind: 'duplicate'; seq: number };

export interface ChainReport {
  key: string;
  events: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** Events removed by retention before the first one checked. */
  purgedThrough: number;
  problems: ChainProblem[];
}

/** Checks one chain from its oldest remaining event to its head. */
export async function verifyChain(store: ChainStore, key: string): Promise<ChainReport> {
  const check = new ChainCheck(key, await store.heads.findOne({ _id: key }));
  for await (const event of store.events.find({ 'chain.key': key }).sort({ 'chain.seq': 1 }))
    check.add(event);
  return check.finish(store);
}

/**
 * Checks every chain in one pass over the events in chain and position order (the unique
 * index on both serves it on MongoDB), instead of one query per chain: FerretDB answers each
 * query by reading every event, which made a check of a thousand authorities quadratic.
 */
export async function verifyAllChains(store: ChainStore): Promise<ChainReport[]> {
  const heads = new Map((await store.heads.find({}).toArray()).map((head) => [head._id, head]));
  const reports: ChainReport[] = [];
  let check: ChainCheck | undefined;
  const events = store.events
    .find({ 'chain.key': { $exists: true } })
    .sort({ 'chain.key': 1, 'chain.seq': 1 });
  for await (const event of events) {
    const key = (event.chain as ChainLink).key;
    if (check?.key !== key) {
      if (check) reports.push(await check.finish(store));
      check = new ChainCheck(key, heads.get(key) ?? null);
      heads.delete(key);
    }
    check.add(event);
  }
  if (check) reports.push(await check.finish(store));
  // Chains whose every event is gone, by retention or by deletion.
  for (const [key, head] of heads) reports.push(await new ChainCheck(key, head).finish(store));
  return reports.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The check of one chain, fed its events in position order. */
class ChainCheck {
  readonly key: string;
  readonly #head: ChainHead | null;
  readonly #purgedSeq: number;
  readonly #problems: ChainProblem[] = [];
  #expected: { seq: number; hash: string };
  #count = 0;
  #firstSeq: number | null = null;

  constructor(key: string, head: ChainHead | null) {
    this.key = key;
    this.#head = head;
    this.#purgedSeq = head?.purgedSeq ?? 0;
    this.#expected = { seq: this.#purgedSeq, hash: head?.purgedHash ?? GENESIS };
  }

  add(event: Document): void {
    const link = event.chain as ChainLink;
    const eventId = String(event._id);
    const expected = this.#expected;
    this.#count += 1;
    this.#firstSeq ??= link.seq;
    if (link.seq === expected.seq && this.#count > 1) {
      this.#problems.push({ kind: 'duplicate', seq: link.seq });
      return;
    }
    // Events at or before the purge mark are left over from an interrupted purge.
    if (link.seq > expected.seq + 1) {
      this.#problems.push({ kind: 'missing', fromSeq: expected.seq + 1, toSeq: link.seq - 1 });
    } else if (link.seq === expected.seq + 1 && link.prev !== expected.hash) {
      this.#problems.push({ kind: 'broken_link', seq: link.seq, eventId });
    }
    if (linkHash(event) !== link.hash)
      this.#problems.push({ kind: 'edited', seq: link.seq, eventId });
    this.#expected = { seq: link.seq, hash: link.hash };
  }

  async finish(store: ChainStore): Promise<ChainReport> {
    // Positions are claimed before their events are written: a deleted tail leaves them.
    const newest = await newestPosition(store, this.key, positionOf(this.#head));
    const expected = this.#expected;
    if (newest.seq > expected.seq) {
      this.#problems.push({ kind: 'missing', fromSeq: expected.seq + 1, toSeq: newest.seq });
    }
    return {
      key: this.key,
      events: this.#count,
      firstSeq: this.#firstSeq,
      lastSeq: this.#count > 0 ? expected.seq : null,
      purgedThrough: this.#purgedSeq,
      problems: this.#problems,
    };
  }
}
