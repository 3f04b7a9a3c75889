/** The mongoose connection, shared by our models and the provider's adapter. */
import mongoose, { type Connection } from 'mongoose';

/**
 * Connects and waits until the server answers. Indexes are created explicitly by
 * `createIndexes` (autoIndex off), so start-up order is predictable and errors are visible.
 */
export async function connect(uri: string): Promise<Connection> {
  const connection = mongoose.createConnection(uri, {
    autoIndex: false,
    autoCreate: false,
    serverSelectionTimeoutMS: 10_000,
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
