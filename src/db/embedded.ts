/**
 * The embedded database of the default installation: one FerretDB per data directory,
 * shared by the server and the CLI. Two FerretDB processes must never open the same SQLite
 * files (each caches the catalogue in memory), so the first process records its instance in
 * `ferretdb/instance.json` and later ones reuse it while it lives.
 */
import { readFile, unlink, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

import { startFerretDB, type FerretDBProcess } from './ferretdb.ts';

type Role = 'server' | 'cli';

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
  /** Stops FerretDB if this process started it; otherwise leaves it to its owner. */
  release(): Promise<void>;
}

/**
 * Returns the URI of the data directory's FerretDB, starting it if no live one exists.
 * A server refuses to share the directory with another running server; a CLI command
 * uses whichever instance is running. A server waits for a CLI-owned instance to finish.
 */
export async function openEmbeddedDatabase(dataDir: string, role: Role): Promise<EmbeddedDatabase> {
  const dir = path.join(dataDir, 'ferretdb');
  const recordFile = path.join(dir, 'instance.json');
  await mkdir(dir, { recursive: true });

  for (let attempt = 0; attempt < 600; attempt += 1) {
    const existing = await readLiveRecord(recordFile);
    if (!existing) break;
    if (role === 'cli') return { uri: uriFor(existing.port), release: async () => {} };
    if (existing.role === 'server') {
      throw new EmbeddedDatabaseError(
        `another flueag-idp server (pid ${existing.ownerPid}) is already using ${dataDir}; stop it or choose another DATA_DIR`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const ferretdb = await startFerretDB(dir);
  const record: InstanceRecord = {
    role,
    ownerPid: process.pid,
    ferretdbPid: ferretdb.pid,
    port: ferretdb.port,
  };
  await writeFile(recordFile, JSON.stringify(record));
  return { uri: uriFor(ferretdb.port), release: () => stopOwned(ferretdb, recordFile) };
}

async function stopOwned(ferretdb: FerretDBProcess, recordFile: string): Promise<void> {
  await ferretdb.stop();
  await unlink(recordFile).catch(() => {});
}

async function readLiveRecord(file: string): Promise<InstanceRecord | undefined> {
  let record: InstanceRecord;
  try {
    record = JSON.parse(await readFile(file, 'utf8')) as InstanceRecord;
  } catch {
    return undefined;
  }
  if (isAlive(record.ownerPid) && isAlive(record.ferretdbPid)) return record;

  // The owner died without stopping its FerretDB (SIGKILL, power cut): end the orphan
  // before another instance opens the same files.
  if (isAlive(record.ferretdbPid) && (await isFerretDB(record.ferretdbPid))) {
    process.kill(record.ferretdbPid, 'SIGTERM');
    while (isAlive(record.ferretdbPid)) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await unlink(file).catch(() => {});
  return undefined;
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

const uriFor = (port: number) => `mongodb://127.0.0.1:${port}/flueag`;
