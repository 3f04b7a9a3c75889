/**
 * Lockout after consecutive failed sign-ins. Callers hold the holder's lease (db/leases.ts)
 * around every change, so parallel failures can neither under-count nor lock twice, on
 * FerretDB too; each change is also a conditional update, which MongoDB alone would make
 * atomic. The same counter guards unknown names, kept in `login_failures`, so that the
 * lock message tells nothing about which names exist.
 */
import { Schema, type Collection, type Connection, type Model } from 'mongoose';

import type { Lockout } from './model.ts';

export interface LockoutSettings {
  maxFailures: number;
  /** 0 = a lock lasts until an admin unlocks. */
  autoUnlockMinutes: number;
}

export interface FailureResult {
  /** False when the password was already counted in this run, or the lock was reached. */
  counted: boolean;
  /** True for exactly one failure: the one that set the lock. */
  lockedNow: boolean;
  count: number;
}

/** A document with a `lockout` field: an account, or a counter for an unknown name. */
export type LockoutHolder = { _id: string; lockout: Lockout };

export const emptyLockout = (): Lockout => ({
  count: 0,
  failures: [],
  lockedAt: null,
  lastFailureAt: null,
});

/** True when sign-in must not check the password. */
export function isLocked(
  lockout: Lockout | undefined,
  settings: LockoutSettings,
  now: Date,
): boolean {
  if (!lockout) return false;
  const locked = lockout.lockedAt !== null || lockout.count >= settings.maxFailures;
  if (!locked || settings.autoUnlockMinutes === 0) return locked;
  const since = lockout.lockedAt ?? lockout.lastFailureAt ?? now;
  return now.getTime() - since.getTime() < settings.autoUnlockMinutes * 60_000;
}

/**
 * Counts one failure with a wrong password identified by `fingerprint`. A run is capped at
 * `maxFailures` distinct fingerprints; the failure that reaches the cap sets `lockedAt`.
 */
export async function countFailure(
  collection: Collection,
  id: string,
  fingerprint: string,
  settings: LockoutSettings,
  now: Date,
): Promise<FailureResult> {
  const counted = await collection.findOneAndUpdate(
    {
      _id: id as never,
      'lockout.lockedAt': null,
      'lockout.count': { $lt: settings.maxFailures },
      'lockout.failures': { $ne: fingerprint },
    },
    {
      $inc: { 'lockout.count': 1 },
      $push: { 'lockout.failures': fingerprint },
      $set: { 'lockout.lastFailureAt': now },
    } as never,
    { returnDocument: 'after' },
  );
  if (!counted) return { counted: false, lockedNow: false, count: -1 };

  const count = (counted as unknown as LockoutHolder).lockout.count;
  if (count < settings.maxFailures) return { counted: true, lockedNow: false, count };

  const locked = await collection.updateOne({ _id: id as never, 'lockout.lockedAt': null }, {
    $set: { 'lockout.lockedAt': now },
  } as never);
  return { counted: true, lockedNow: locked.modifiedCount === 1, count };
}

/** Clears a lock whose automatic unlock time has passed, so counting starts afresh. */
export async function clearExpiredLock(
  collection: Collection,
  holder: LockoutHolder,
  settings: LockoutSettings,
  now: Date,
): Promise<void> {
  const lockedBefore =
    holder.lockout.lockedAt !== null || holder.lockout.count >= settings.maxFailures;
  if (!lockedBefore || isLocked(holder.lockout, settings, now)) return;
  await collection.updateOne({ _id: holder._id as never, 'lockout.count': holder.lockout.count }, {
    $set: { lockout: emptyLockout() },
  } as never);
}

/**
 * Counters for names that match no account. They do not expire: an account's counter and
 * lock do not either (see sign-in.ts).
 */
export type LoginFailure = LockoutHolder;

const loginFailureSchema = new Schema<LoginFailure>(
  {
    _id: { type: String, required: true },
    lockout: { type: Schema.Types.Mixed, required: true },
  },
  { collection: 'login_failures', versionKey: false, minimize: false },
);

export type LoginFailureModel = Model<LoginFailure>;

export const loginFailureModel = (connection: Connection): LoginFailureModel =>
  (connection.models.LoginFailure as LoginFailureModel | undefined) ??
  connection.model<LoginFailure>('LoginFailure', loginFailureSchema);

/** Returns the counter of an unknown name, created empty; the caller holds its lease. */
export async function ensureFailureCounter(
  model: LoginFailureModel,
  id: string,
): Promise<LoginFailure> {
  const existing = await model.collection.findOne({ _id: id as never });
  if (existing) return existing as unknown as LoginFailure;
  const counter: LoginFailure = { _id: id, lockout: emptyLockout() };
  await model.collection.insertOne(counter as never);
  return counter;
}
