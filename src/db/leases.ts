/**
 * Short leases that serialise read-modify-write work on one document, across processes.
 *
 * FerretDB 1.x applies every update as "read the matching documents, change them in
 * memory, write them back" without isolation: two conditional updates can both match, and
 * two updates of different fields of one document can overwrite each other (measured: 49 of
 * 50 races let two `updateOne({consumed: null})` win; `$inc` lost updates in 50 of 50). An
 * insert into a unique `_id` is atomic on FerretDB and MongoDB alike, so a lease is a
 * document whose insertion is the acquisition. On MongoDB the leases only add two round trips.
 */
import { randomUUID } from 'node:crypto';

import type { Collection, Db } from 'mongodb';

import { AppError } from '../errors.ts';

interface Lease {
  _id: string;
  owner: string;
  expiresAt: Date;
}

export interface LeaseOptions {
  /** How long a lease lasts if its holder dies without releasing it. */
  ttlMs?: number;
  /** How long to wait for a busy lease before giving up with a 503. */
  waitMs?: number;
}

export class Leases {
  readonly #collection: Collection<Lease>;

  constructor(db: Db) {
    this.#collection = db.collection<Lease>('leases');
  }

  /**
   * Runs `work` while holding the lease `key`; the lease is released whatever happens. A
   * release that fails (the database went away meanwhile) leaves the lease to lapse after
   * its `ttlMs`, and does not turn a change that `work` made into a failure.
   */
  async run<T>(key: string, work: () => Promise<T>, options: LeaseOptions = {}): Promise<T> {
    const owner = await this.#acquire(key, options.ttlMs ?? 10_000, options.waitMs ?? 10_000);
    try {
      return await work();
    } finally {
      await this.#collection.deleteOne({ _id: key, owner }).catch(() => {});
    }
  }

  async #acquire(key: string, ttlMs: number, waitMs: number): Promise<string> {
    const owner = randomUUID();
    const deadline = Date.now() + waitMs;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.#collection.insertOne({
          _id: key,
          owner,
          expiresAt: new Date(Date.now() + ttlMs),
        });
        return owner;
      } catch (error) {
        if ((error as { code?: number }).code !== 11000) throw error;
      }

      const held = await this.#collection.findOne({ _id: key });
      if (held && held.expiresAt.getTime() <= Date.now()) {
        // The holder died: remove exactly its lease, then compete again by inserting.
        await this.#collection.deleteOne({ _id: key, owner: held.owner });
        continue;
      }
      if (Date.now() >= deadline)
        throw new AppError(503, 'service.busy', { detail: `lease ${key} is busy` });
      const backoff = Math.min(50, 2 ** Math.min(attempt, 5)) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}
