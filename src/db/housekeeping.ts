/**
 * Removal of expired records. FerretDB has no TTL indexes, so the application deletes what
 * has expired; correctness never depends on it, because every read checks expiry itself.
 */
import type { Db } from 'mongodb';

import type { AuditTrail } from '../audit/trail.ts';
import type { Logger } from '../log.ts';
import { collectionName, providerModels, SESSION_UID_COLLECTION } from '../oidc/adapter.ts';

const INTERVAL_MS = 5 * 60_000;

export class Housekeeping {
  readonly #db: Db;
  readonly #audit: AuditTrail;
  readonly #auditRetentionDays: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(db: Db, audit: AuditTrail, auditRetentionDays: number, log: Logger) {
    this.#db = db;
    this.#audit = audit;
    this.#auditRetentionDays = auditRetentionDays;
    this.#log = log;
  }

  start(): void {
    const tick = () =>
      void this.runOnce().catch((error: unknown) => {
        // A run that the closing database connection cut short is no failure.
        if (this.#timer === undefined) return;
        this.#log.warn({ err: error, event: 'housekeeping.failed' }, 'housekeeping failed');
      });
    tick();
    this.#timer = setInterval(tick, INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Deletes expired provider records, consumption markers and session uid entries, stale
   * leases, ended console sessions, sign-in attempts older than the delay window and old
   * audit events.
   */
  async runOnce(now = new Date()): Promise<number> {
    let removed = 0;
    const expired = { expiresAt: { $ne: null, $lte: now } };
    for (const model of providerModels) {
      removed += (await this.#db.collection(collectionName(model)).deleteMany(expired))
        .deletedCount;
    }
    const others = [
      'oidc_consumption',
      SESSION_UID_COLLECTION,
      'leases',
      'console_sessions',
      'login_attempts',
    ];
    for (const collection of others) {
      removed += (await this.#db.collection(collection).deleteMany(expired)).deletedCount;
    }
    removed += await this.#audit.purgeOlderThan(this.#auditRetentionDays);
    if (removed > 0) this.#log.debug({ removed }, 'housekeeping removed expired records');
    return removed;
  }
}
