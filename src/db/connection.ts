/** The mongoose connection, shared by our models and the provider's adapter. */
import {
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoWriteConcernError,
} from 'mongodb';
import mongoose, { type Connection } from 'mongoose';

import { AppError } from '../errors.ts';

/**
 * How long a request waits for a reachable database before it is refused with 503; also how
 * often the driver checks the database, and how long a check or a new connection may take.
 * A database that stops answering without closing its connections (a frozen process, a host
 * gone from the network) is noticed by the next check, which fails the commands in flight:
 * no request then waits longer than about 15 s (test/integration/faults.test.ts).
 */
const UNREACHABLE_AFTER_MS = 5_000;

/** What a refused request tells its client to wait before retrying (`Retry-After`). */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 30;

/**
 * Connects and waits until the server answers. Indexes are created explicitly by
 * `createIndexes` (autoIndex off), so start-up order is predictable and errors are visible.
 */
export async function connect(uri: string): Promise<Connection> {
  const connection = mongoose.createConnection(uri, {
    autoIndex: false,
    autoCreate: false,
    // Without a database, mongoose would queue every command for `bufferTimeoutMS` (10 s)
    // before the driver even tries; the driver's own bounds below then apply once, not twice.
    bufferCommands: false,
    serverSelectionTimeoutMS: UNREACHABLE_AFTER_MS,
    connectTimeoutMS: UNREACHABLE_AFTER_MS,
    heartbeatFrequencyMS: UNREACHABLE_AFTER_MS,
    // A write is confirmed only once a majority of a replica set has it in its journal, so a
    // failover never loses a write that a person was told succeeded (on MongoDB 5+ this is
    // the default, stated here so a cluster-wide default cannot weaken it). Waiting for the
    // majority is bounded; a write that times out is answered as failed (503), even though
    // the primary may keep it. FerretDB ignores the write concern: it answers after the
    // SQLite transaction has committed (WAL, synchronous=FULL), which is on disk.
    writeConcern: { w: 'majority', journal: true, wtimeoutMS: 10_000 },
    maxPoolSize: 20,
    // Failed commands are counted as database errors (metrics/metrics.ts).
    monitorCommands: true,
  });
  try {
    await connection.asPromise();
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }
  return connection;
}

/** True when the database answers a ping within two seconds. */
export async function ping(connection: Connection): Promise<boolean> {
  try {
    const db = connection.db;
    if (!db) return false;
    await Promise.race([
      db.command({ ping: 1 }),
      new Promise((_resolve, reject) =>
        setTimeout(() => reject(new Error('ping timeout')), 2_000).unref(),
      ),
    ]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Server error codes of a replica set that is changing its primary or shutting down (the
 * driver's SDAM specification): the command was refused or interrupted, and may succeed
 * once a primary is elected.
 */
const stateChangeCodes = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/**
 * True when `error` (or an error it was caused by) means that the database cannot be
 * reached right now: it is down, unreachable, electing a primary, or could not confirm a
 * write to a majority. Such a request may succeed later; any other error is a fault.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; depth += 1) {
    if (
      cause instanceof MongoNetworkError ||
      cause instanceof MongoServerSelectionError ||
      cause instanceof MongoWriteConcernError ||
      cause instanceof MongoNotConnectedError ||
      cause instanceof MongoTopologyClosedError ||
      cause.name === 'MongooseServerSelectionError' ||
      (cause instanceof MongoError && stateChangeCodes.has(Number(cause.code)))
    )
      return true;
    cause = cause.cause;
  }
  return false;
}

/**
 * The answer to a request that met an unreachable database: 503 `service.unavailable` with
 * `Retry-After`, whatever the surface. Any other error is returned as it is.
 */
export function asUnavailable(error: unknown): unknown {
  if (error instanceof AppError || !isDatabaseUnavailable(error)) return error;
  return new AppError(503, 'service.unavailable', {
    detail: (error as Error).message,
    cause: error,
    retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
  });
}
