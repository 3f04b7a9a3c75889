/**
 * The embedded FerretDB of the default installation: one instance per data directory,
 * shared by the server and the CLI, whichever starts first.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose from 'mongoose';

import { openEmbeddedDatabase } from '../../src/db/embedded.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-embedded-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir };
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
});
