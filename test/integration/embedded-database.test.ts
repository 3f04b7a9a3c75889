/**
 * The embedded FerretDB of the default installation: one instance per data directory,
 * shared by the server and the CLI, whichever starts first.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose from 'mongoose';

import { openEmbeddedDatabase } from '../../src/db/embedded.ts';
import { freePort } from '../../src/db/ferretdb.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-embedded-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliIn(dataDir, ...args);
}

/** The CLI on the data directory `directory`. */
function cliIn(
  directory: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: directory };
  delete env.MONGODB_URI;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/flueag-idp.js'), ...args],
      { env, cwd: root },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('embedded database', () => {
  it('lets the CLI work without a running server, on the files the server uses later', async () => {
    const added = await cli(
      'tenant',
      'add',
      '05334002',
      '--name',
      'Stadt Aachen',
      '--kind',
      'gemeinde',
    );
    expect(added).toMatchObject({ code: 0 });
    expect(added.stdout).toMatch(/added: 05334002 Stadt Aachen/);

    const server = await openEmbeddedDatabase(dataDir, 'server');
    const connection = await mongoose.createConnection(server.uri).asPromise();
    expect(
      await connection.db!.collection('tenants').findOne({ _id: '05334002' as never }),
    ).toMatchObject({ name: 'Stadt Aachen' });
    await connection.close();
    await server.release();
  });

  it('shares a running server instance with the CLI and refuses a second server', async () => {
    const server = await openEmbeddedDatabase(dataDir, 'server');
    try {
      const command = await openEmbeddedDatabase(dataDir, 'cli');
      expect(command.uri).toBe(server.uri);
      await command.release();

      await expect(openEmbeddedDatabase(dataDir, 'server')).rejects.toThrow(/already using/);
      const added = await cli(
        'tenant',
        'add',
        '05334',
        '--name',
        'Städteregion Aachen',
        '--kind',
        'kreis',
      );
      expect(added.code).toBe(0);

      const connection = await mongoose.createConnection(server.uri).asPromise();
      expect(await connection.db!.collection('tenants').countDocuments()).toBe(2);
      await connection.close();
    } finally {
      await server.release();
    }
  });

  it('lets only one of two servers started at the same moment run, and keeps its instance', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-race-'));
    try {
      const [first, second] = await Promise.allSettled([
        openEmbeddedDatabase(directory, 'server'),
        openEmbeddedDatabase(directory, 'server'),
      ]);
      const opened = [first, second].filter((result) => result.status === 'fulfilled');
      const refused = [first, second].filter((result) => result.status === 'rejected');
      expect(opened).toHaveLength(1);
      expect(String(refused[0]?.reason)).toMatch(/already using/);

      const winner = opened[0]!.value;
      const command = await openEmbeddedDatabase(directory, 'cli');
      expect(command.uri).toBe(winner.uri);
      const connection = await mongoose.createConnection(winner.uri).asPromise();
      expect((await connection.db!.command({ ping: 1 })).ok).toBe(1);
      await connection.close();
      await winner.release();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('stops its FerretDB when start-up is interrupted', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-interrupt-'));
    try {
      const server = startProvider(directory, await freePort());
      const record = await waitForRecord(directory);
      server.process.kill('SIGINT');

      expect(await server.exited).toBe(0);
      expect(isRunning(record.ferretdbPid)).toBe(false);
      await expect(readFile(instanceFile(directory), 'utf8')).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('stops the server with status 1 and an error line when its FerretDB dies', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-lost-'));
    try {
      const server = startProvider(directory, await freePort(), {
        LOG_LEVEL: 'info',
        DEMO_SEED: 'false',
      });
      await waitForOutput(server.output, /"event":"server.started"/);
      const record = await waitForRecord(directory);
      process.kill(record.ferretdbPid, 'SIGKILL');

      expect(await server.exited).toBe(1);
      const lines = server
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.find((line) => line.event === 'database.embedded_exited')).toMatchObject({
        level: 50,
        ferretdb_pid: record.ferretdbPid,
        signal: 'SIGKILL',
      });
      // It let go of the data directory: the next process starts a FerretDB of its own.
      await expect(readFile(instanceFile(directory), 'utf8')).rejects.toThrow(/ENOENT/);
      const database = await openEmbeddedDatabase(directory, 'cli');
      const connection = await mongoose.createConnection(database.uri).asPromise();
      expect((await connection.db!.command({ ping: 1 })).ok).toBe(1);
      await connection.close();
      await database.release();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('names the embedded database, not MONGODB_URI, when its FerretDB does not answer', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-frozen-'));
    const owner = await openEmbeddedDatabase(directory, 'server');
    const record = await waitForRecord(directory);
    process.kill(record.ferretdbPid, 'SIGSTOP');
    try {
      const command = await cliIn(directory, 'audit', 'verify');
      expect(command.code).toBe(1);
      expect(command.stderr).toMatch(
        new RegExp(
          `^flueag-idp: cannot reach the embedded database of ${directory} \\(FerretDB at mongodb://127\\.0\\.0\\.1:\\d+/`,
        ),
      );
      expect(command.stderr).not.toContain('MONGODB_URI');
    } finally {
      process.kill(record.ferretdbPid, 'SIGCONT');
      await owner.release();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('tells a CLI command at once that the recorded FerretDB is not running', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-gone-'));
    const owner = await openEmbeddedDatabase(directory, 'server');
    try {
      const record = await waitForRecord(directory);
      process.kill(record.ferretdbPid, 'SIGKILL');
      await owner.lost;

      const started = Date.now();
      const command = await cliIn(directory, 'audit', 'verify');
      expect(command.code).toBe(1);
      expect(command.stderr).toContain(
        `its FerretDB (pid ${record.ferretdbPid}) has exited, but flueag-idp process ${process.pid}`,
      );
      expect(command.stderr).not.toMatch(/stayed locked/);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await owner.release();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('writes nothing when it cannot listen: no demo, no client, no audit event', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-busy-'));
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const busyPort = (blocker.address() as net.AddressInfo).port;
    try {
      const server = startProvider(directory, busyPort);
      expect(await server.exited).toBe(1);
      expect(server.output()).toMatch(/PORT: port \d+ is already in use/);
      expect(server.output()).not.toMatch(/Einmal-Kennwort/);

      const database = await openEmbeddedDatabase(directory, 'cli');
      const connection = await mongoose.createConnection(database.uri).asPromise();
      for (const collection of ['tenants', 'accounts', 'oidc_client', 'audit_events'])
        expect([collection, await connection.db!.collection(collection).countDocuments()]).toEqual([
          collection,
          0,
        ]);
      await connection.close();
      await database.release();
    } finally {
      blocker.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});

/** `npm start` in `directory` on `port`, with its exit status and everything it printed. */
function startProvider(directory: string, port: number, extra: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: directory,
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    LOG_LEVEL: 'warn',
    // Any free port: another installation on this machine may hold the default.
    METRICS_PORT: '0',
    ...extra,
  };
  delete env.MONGODB_URI;
  const child = spawn(process.execPath, [path.join(root, 'src/main.ts')], { env, cwd: root });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { process: child, exited, output: () => output };
}

const instanceFile = (directory: string) => path.join(directory, 'ferretdb', 'instance.json');

async function waitForRecord(directory: string): Promise<{ ferretdbPid: number }> {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    const record = await readFile(instanceFile(directory), 'utf8').catch(() => undefined);
    if (record) return JSON.parse(record) as { ferretdbPid: number };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('FerretDB did not start');
}

async function waitForOutput(output: () => string, pattern: RegExp): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    if (pattern.test(output())) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never printed ${pattern}: ${output()}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
