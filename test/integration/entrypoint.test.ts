/**
 * The image's entry point (`node src/main.ts`, the Dockerfile's CMD) started as the
 * container starts it: configured by the environment compose.yaml passes, on a database
 * given by MONGODB_URI, with no embedded FerretDB.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';

import { freePort } from '../../src/db/ferretdb.ts';
import { newDatabaseName } from '../support/server.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** The environment of the first provider service of compose.yaml. */
function composeEnvironment(): Record<string, string> {
  const compose = parse(readFileSync(path.join(root, 'compose.yaml'), 'utf8'), {
    merge: true,
  }) as { services: Record<string, { environment?: Record<string, string> }> };
  return compose.services['idp-1']!.environment!;
}

function run(entry: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, entry, {
    cwd: root,
    // Only what a container has: no variable of the test run leaks in.
    env: { PATH: process.env.PATH, NODE_ENV: 'production', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function waitFor(url: string): Promise<Response> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const response = await fetch(url).catch(() => undefined);
    if (response) return response;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never answered`);
}

describe('entry point', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-entry-'));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts with the configuration of compose.yaml and is healthy and ready', async () => {
    const port = await freePort();
    const server = run(['src/main.ts'], {
      ...composeEnvironment(),
      MONGODB_URI: `${process.env.FLUEAG_TEST_MONGODB}${newDatabaseName()}`,
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: '0',
    });
    try {
      // The image's HEALTHCHECK asks http://127.0.0.1:$PORT/healthz, whatever the ISSUER.
      expect((await waitFor(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      // The line follows the last step of the start, which may come just after the first
      // answers.
      const startedLine = () =>
        server
          .stdout()
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((line) => line.event === 'server.started');
      for (let wait = 0; wait < 100 && !startedLine(); wait += 1)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(startedLine()).toMatchObject({
        issuer: 'https://idp.localhost',
        embedded_database: false,
      });
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });

  it('stops at a wrong value with one line naming it', async () => {
    const server = run(['src/main.ts'], {
      ...composeEnvironment(),
      DATA_DIR: dataDir,
      TRUST_PROXY: 'several',
    });
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toBe(
      'flueag-idp: invalid configuration: TRUST_PROXY: must be false, true or the number of trusted proxy hops (0 to 10)\n',
    );
    expect(server.stdout()).toBe('');
  });

  it.each([
    ['HOST', 'foo.invalid', 'HOST: foo.invalid is no address and no host name that resolves'],
    [
      'METRICS_HOST',
      'foo.invalid',
      'METRICS_HOST: foo.invalid is no address and no host name that resolves',
    ],
    ['METRICS_HOST', '999.1.1.1', 'METRICS_HOST: must be a valid IP address or a host name'],
    ['PORT', 'abc', 'PORT: must be a whole number'],
    ['PORT', '', 'PORT: is empty; give it a value, or unset it to use the default'],
  ])('stops at %s=%s with one line naming the variable', async (name, value, problem) => {
    const port = await freePort();
    const server = run(['src/main.ts'], {
      ...composeEnvironment(),
      MONGODB_URI: `${process.env.FLUEAG_TEST_MONGODB}${newDatabaseName()}`,
      DATA_DIR: dataDir,
      PORT: String(port),
      METRICS_PORT: '0',
      [name]: value,
    });
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toMatch(
      new RegExp(`^flueag-idp: invalid configuration: ${escape(problem)}[^\n]*\n$`),
    );
  });

  it.each([
    [
      'DATA_DIR is a file',
      { DATA_DIR: 'file' },
      'cannot create {dir}/file/ferretdb: a part of the path is not a directory; check DATA_DIR and KEYS_FILE',
    ],
    // Node's recursive mkdir never returns below /proc; the start must not hang there.
    [
      'DATA_DIR is below /proc',
      { DATA_DIR: '/proc/flueag-idp' },
      'cannot create /proc/flueag-idp: its directory does not exist; check DATA_DIR and KEYS_FILE',
    ],
    [
      'KEYS_FILE is a directory',
      { KEYS_FILE: '.' },
      'cannot read the key file {dir}: it is a directory, not a file',
    ],
  ])('stops when %s, with one line naming the path', async (_case, paths, problem) => {
    await writeFile(path.join(dataDir, 'file'), '');
    const env = Object.fromEntries(
      Object.entries(paths).map(([name, value]) => [name, path.resolve(dataDir, value)]),
    );
    const server = run(['src/main.ts'], {
      DATA_DIR: dataDir,
      PORT: String(await freePort()),
      METRICS_PORT: 'off',
      ...env,
    });
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toBe(`flueag-idp: ${problem.replaceAll('{dir}', dataDir)}\n`);
  });

  it('has the operator CLI that the image links as flueag-idp', async () => {
    const cli = run(['bin/flueag-idp.js', '--version'], {});
    expect(await cli.exited).toBe(0);
    expect(cli.stdout().trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
