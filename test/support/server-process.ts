/**
 * A flueag-idp server in a process of its own, started as the image starts it
 * (`node src/main.ts`), on a database of its own on the shared FerretDB. Tests that measure
 * the server use it, so that its memory is not mixed with the test's own. The test reaches
 * the same database through services of its own, to create tenants, accounts and clients and
 * to read what the server stored.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { loadConfig } from '../../src/config.ts';
import { freePort } from '../../src/db/ferretdb.ts';
import { createLogger } from '../../src/log.ts';
import { newKeyMaterial, saveKeyMaterial } from '../../src/oidc/keys.ts';
import { openServices, type Services } from '../../src/services.ts';
import { newDatabaseName } from './server.ts';

const root = path.resolve(import.meta.dirname, '../..');
const probe = path.join(import.meta.dirname, 'memory-probe.ts');

export interface MemoryUsage {
  rss: number;
  heapUsed: number;
}

export interface ServerProcess {
  issuer: string;
  /** Services of the test process on the server's database. */
  services: Services;
  pid: number;
  /** The server's memory, after a full garbage collection when `collect` is set. */
  memory(options?: { collect?: boolean }): Promise<MemoryUsage>;
  /** What the server wrote to stderr, for a failure message. */
  stderr(): string;
  /** Stops the server and drops its database. */
  close(): Promise<void>;
}

/**
 * Starts `node src/main.ts` with the production defaults, except what `env` sets, and
 * waits until it is ready. `mongodb` is the FerretDB to use (the shared one by default);
 * `niceness` lowers the server's CPU priority once it is ready.
 */
export async function startServerProcess(
  env: Record<string, string> = {},
  options: { mongodb?: string; niceness?: number } = {},
): Promise<ServerProcess> {
  const base = options.mongodb ?? process.env.FLUEAG_TEST_MONGODB;
  if (!base) throw new Error('FLUEAG_TEST_MONGODB is not set: run the tests with npm test');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-process-'));
  // One key file for the server and the test's services, as for two servers of one installation.
  const keysFile = path.join(dataDir, 'keys.json');
  await saveKeyMaterial(keysFile, newKeyMaterial());
  const port = await freePort();
  const serverEnv: Record<string, string> = {
    MONGODB_URI: `${base}${newDatabaseName()}`,
    DATA_DIR: dataDir,
    KEYS_FILE: keysFile,
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    // Request lines at `info` would only be piped away; warnings and errors are kept.
    LOG_LEVEL: 'warn',
    DEMO_SEED: 'false',
    METRICS_PORT: 'off',
    ...env,
  };

  const child = spawn(process.execPath, ['--expose-gc', '--import', probe, 'src/main.ts'], {
    cwd: root,
    // Only what a container has: no variable of the test run leaks in.
    env: { PATH: process.env.PATH, NODE_ENV: 'production', ...serverEnv },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.on(
    'data',
    (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)),
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const answers = new Map<number, (usage: MemoryUsage) => void>();
  child.on('message', (answer: MemoryUsage & { id: number }) => {
    answers.get(answer.id)?.({ rss: answer.rss, heapUsed: answer.heapUsed });
    answers.delete(answer.id);
  });
  let questions = 0;

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };

  let services: Services;
  try {
    await waitUntilReady(`${serverEnv.ISSUER}/readyz`, exited, () => stderr);
    if (options.niceness !== undefined) await renice(child.pid!, options.niceness);
    services = await openServices(
      loadConfig({ ...serverEnv, LOG_LEVEL: 'silent' }),
      createLogger('silent'),
      serverEnv.MONGODB_URI!,
    );
  } catch (error) {
    await stop();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  return {
    issuer: serverEnv.ISSUER!,
    services,
    pid: child.pid!,
    memory: ({ collect = false } = {}) =>
      new Promise((resolve, reject) => {
        const id = (questions += 1);
        answers.set(id, resolve);
        child.send({ id, collect }, (error) => error && reject(error));
      }),
    stderr: () => stderr,
    close: async () => {
      await stop();
      await services.db.dropDatabase().catch(() => {});
      await services.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Sets the CPU priority of every thread of process `pid` (Linux keeps one per thread, and
 * the threads a process starts later inherit it from the thread that starts them).
 */
export async function renice(pid: number, niceness: number): Promise<void> {
  const threads = await readdir(`/proc/${pid}/task`).catch(() => [String(pid)]);
  for (const thread of threads) {
    try {
      os.setPriority(Number(thread), niceness);
    } catch {
      // A thread that ended meanwhile.
    }
  }
}

async function waitUntilReady(url: string, exited: Promise<void>, stderr: () => string) {
  let gone = false;
  void exited.then(() => (gone = true));
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (gone) throw new Error(`the server stopped during start: ${stderr()}`);
    const response = await fetch(url).catch(() => undefined);
    if (response?.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never answered 200: ${stderr()}`);
}
