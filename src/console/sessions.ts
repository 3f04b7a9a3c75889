/**
 * Sessions of the console: the admin pages at `/admin` and the self-service pages at
 * `/account`, which are a first-party client of this provider. A session is created by the
 * callback of a sign-in through the provider and is stored in the database (any instance
 * serves it); the browser holds only a random token, and the database only its hash.
 * A session ends at sign-out, after its idle or absolute limit, and as soon as the grant it
 * was signed in with is gone, which is what every revocation of the account deletes.
 */
import { createHash, randomBytes } from 'node:crypto';

import type { Collection, Db } from 'mongodb';

export interface ConsoleSession {
  _id: string;
  accountId: string;
  /** The provider grant of this sign-in; its deletion ends the session. */
  grantId: string;
  /** The provider's browser session, kept alive through a password change. */
  sessionUid: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  /** The earlier of the absolute and the idle limit; housekeeping deletes after it. */
  expiresAt: Date;
}

export interface ConsoleSessionLimits {
  absoluteMs: number;
  idleMs: number;
}

/**
 * How often a session's idle limit is pushed on; a write per request is not needed. A
 * session may therefore end up to this much earlier than its idle limit says.
 */
const touchAfterMs = (limits: ConsoleSessionLimits) => Math.min(60_000, limits.idleMs / 10);

const hashOf = (token: string) => createHash('sha256').update(token).digest('base64url');

export class ConsoleSessions {
  readonly #collection: Collection<ConsoleSession>;
  readonly #limits: ConsoleSessionLimits;
  readonly #now: () => Date;

  constructor(db: Db, limits: ConsoleSessionLimits, now: () => Date = () => new Date()) {
    this.#collection = db.collection<ConsoleSession>('console_sessions');
    this.#limits = limits;
    this.#now = now;
  }

  static async createIndexes(db: Db): Promise<void> {
    const collection = db.collection('console_sessions');
    await collection.createIndex({ expiresAt: 1 });
    await collection.createIndex({ accountId: 1 });
  }

  /** Opens a session and returns the token for the browser's cookie. */
  async open(
    fields: Pick<ConsoleSession, 'accountId' | 'grantId' | 'sessionUid'>,
  ): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const now = this.#now();
    await this.#collection.insertOne({
      _id: hashOf(token),
      ...fields,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: this.#expiry(now, now),
    });
    return token;
  }

  /** The live session of `token`, its idle limit pushed on; undefined when it has ended. */
  async find(token: string | undefined): Promise<ConsoleSession | undefined> {
    if (!token || token.length > 100) return undefined;
    const session = await this.#collection.findOne({ _id: hashOf(token) });
    const now = this.#now();
    if (!session || session.expiresAt <= now) return undefined;

    if (now.getTime() - session.lastSeenAt.getTime() > touchAfterMs(this.#limits)) {
      const expiresAt = this.#expiry(session.createdAt, now);
      await this.#collection.updateOne(
        { _id: session._id },
        { $set: { lastSeenAt: now, expiresAt } },
      );
      return { ...session, lastSeenAt: now, expiresAt };
    }
    return session;
  }

  async close(token: string | undefined): Promise<void> {
    if (token) await this.#collection.deleteOne({ _id: hashOf(token) });
  }

  #expiry(createdAt: Date, lastSeenAt: Date): Date {
    return new Date(
      Math.min(
        createdAt.getTime() + this.#limits.absoluteMs,
        lastSeenAt.getTime() + this.#limits.idleMs,
      ),
    );
  }
}
