/**
 * The embedded database of the default installation: one FerretDB per data directory,
 * shared by the server and the CLI. Two FerretDB processes must never open the same SQLite
 * files (each caches the catalogue in memory). The process that starts FerretDB holds a
 * lock on `ferretdb/` for as long as it runs and records the instance in
 * `ferretdb/instance.json`; later processes reuse that instance or wait for it to go.
 */
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { makeDirectory } from '../files.ts';
import { startFerretDB, type FerretDBExit, type FerretDBProcess } from './ferretdb.ts';

export type Role = 'server' | 'cli';

export class EmbeddedDatabaseError extends Error {
  override name = 'EmbeddedDatabaseError';
}

interface InstanceRecord {
  role: Role;
  /** The flueag-idp process that started FerretDB and will stop it. */
  ownerPid: number;
  ferretdbPid: number;
  port: number;
}

export interface EmbeddedDatabase {
  uri: string;
  /**
   * Settles when the FerretDB this process started exits before `release` (crashed, killed);
   * never for an instance of another process, nor after `release`.
   */
  lost: Promise<FerretDBExit & { pid: number; logFile: string }>;
  /** Stops FerretDB if this process started it; otherwise leaves it to its owner. */
  release(): Promise<void>;
}

/** A holder that stops refreshing the lock (killed, frozen) loses it after this long. */
const LOCK_STALE_MS = 10_000;
/** How long to wait for another process's instance to start or to stop. */
const WAIT_MS = 60_000;
/** How long an owner whose FerretDB has exited gets to notice it and let go of the lock. */
const LOST_GRACE_MS = 3_000;

/**
 * Returns the URI of the data directory's FerretDB, starting it if no live one exists.
 * A server refuses to share the directory with another running server; a CLI command
 * uses whichever instance is running. A server waits for a CLI-owned instance to finish.
 */
export async function openEmbeddedDatabase(dataDir: string, role: Role): Promise<EmbeddedDatabase> {
  const dir = path.join(dataDir, 'ferretdb');
  const recordFile = path.join(dir, 'instance.json');
  await makeDirectory(dir);

  const deadline = Date.now() + WAIT_MS;
  let lostSince: number | undefined;
  for (;;) {
    const unlock = await tryLock(dir);
    if (unlock) return startOwned(dir, recordFile, role, unlock);

    const running = await readRecord(recordFile);
    const ownerAlive = running !== undefined && isAlive(running.ownerPid);
    // An owner whose FerretDB is gone releases the lock once it notices (a server stops at
    // once); one that keeps holding it will not serve this directory again.
    if (ownerAlive && !isAlive(running.ferretdbPid)) {
      lostSince ??= Date.now();
      if (Date.now() - lostSince > LOST_GRACE_MS) throw lostInstance(dataDir, dir, running);
    } else {
      lostSince = undefined;
    }
    if (ownerAlive && isAlive(running.ferretdbPid)) {
      if (role === 'cli') {
        return { uri: uriFor(running.port), lost: never, release: async () => {} };
      }
      if (running.role === 'server') {
        throw new EmbeddedDatabaseError(
          `another flueag-idp server (pid ${running.ownerPid}) is already using ${dataDir}; stop it or choose another DATA_DIR`,
        );
      }
    }
    if (Date.now() > deadline) {
      throw new EmbeddedDatabaseError(
        `the embedded database in ${dataDir} stayed locked by another process for ${WAIT_MS / 1000} s; stop it or choose another DATA_DIR`,
      );
    }
    await sleep(100);
  }
}

function lostInstance(dataDir: string, dir: string, record: InstanceRecord): EmbeddedDatabaseError {
  return new EmbeddedDatabaseError(
    `the embedded database in ${dataDir} is not running: its FerretDB (pid ${record.ferretdbPid}) has exited, ` +
      `but flueag-idp process ${record.ownerPid}, which started it, still holds the data directory. ` +
      `Stop process ${record.ownerPid} and start the server again (it starts a new FerretDB on the same files; ` +
      `never start FerretDB on them by hand); why it exited is in ${path.join(dir, 'ferretdb.log')}`,
  );
}

async function startOwned(
  dir: string,
  recordFile: string,
  role: Role,
  unlock: () => Promise<void>,
): Promise<EmbeddedDatabase> {
  let ferretdb: FerretDBProcess | undefined;
  try {
    await stopOrphan(recordFile);
    ferretdb = await startFerretDB(dir);
    const record: InstanceRecord = {
      role,
      ownerPid: process.pid,
      ferretdbPid: ferretdb.pid,
      port: ferretdb.port,
    };
    const draft = `${recordFile}.${process.pid}`;
    await writeFile(draft, JSON.stringify(record));
    await rename(draft, recordFile);
  } catch (error) {
    await ferretdb?.stop();
    await unlock();
    throw error;
  }

  const started = ferretdb;
  let released = false;
  return {
    uri: uriFor(started.port),
    lost: started.exited.then((exit) =>
      released ? never : { ...exit, pid: started.pid, logFile: path.join(dir, 'ferretdb.log') },
    ),
    release: async () => {
      if (released) return;
      released = true;
      // The record goes first: while it exists, its FerretDB must be running, or a CLI
      // command would take the instance for dead (see `openEmbeddedDatabase`).
      await unlink(recordFile).catch(() => {});
      await started.stop();
      await unlock();
    },
  };
}

/** Takes the data directory's lock, or returns undefined while another process holds it. */
async function tryLock(dir: string): Promise<(() => Promise<void>) | undefined> {
  try {
    return await lockfile.lock(dir, {
      lockfilePath: path.join(dir, 'owner.lock'),
      realpath: false,
      retries: 0,
      stale: LOCK_STALE_MS,
      onCompromised: (error) => {
        process.stderr.write(
          `flueag-idp: lost the lock of the embedded database: ${error.message}\n`,
        );
      },
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
    throw error;
  }
}

/**
 * A previous owner that died without stopping its FerretDB (SIGKILL, power cut) leaves it
 * running on the same files: end it before starting another.
 */
async function stopOrphan(recordFile: string): Promise<void> {
  const previous = await readRecord(recordFile);
  if (!previous) return;
  if (isAlive(previous.ferretdbPid) && (await isFerretDB(previous.ferretdbPid))) {
    process.kill(previous.ferretdbPid, 'SIGTERM');
    while (isAlive(previous.ferretdbPid)) await sleep(50);
  }
  await unlink(recordFile).catch(() => {});
}

async function readRecord(file: string): Promise<InstanceRecord | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as InstanceRecord;
  } catch {
    return undefined;
  }
}

async function isFerretDB(pid: number): Promise<boolean> {
  const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return commandLine.includes('ferretdb');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const never = new Promise<never>(() => {});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const uriFor = (port: number) => `mongodb://127.0.0.1:${port}/flueag`;
