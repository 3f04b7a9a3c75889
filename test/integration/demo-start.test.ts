/**
 * `npm start` with the demo, as a new user runs it: the first start on an empty data
 * directory, then a restart on another port on the same data.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { freePort } from '../../src/db/ferretdb.ts';
import { asPage, Browser, text } from '../support/browser.ts';
import { messages } from '../support/flows.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-demo-start-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

/** `npm start` on `dataDir` and a free loopback port, until it has printed the demo. */
async function start() {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: issuer,
    LOG_LEVEL: 'warn',
    // Any free port: another installation on this machine may hold the default.
    METRICS_PORT: '0',
  };
  delete env.MONGODB_URI;
  delete env.DEMO_SEED;
  // `npm start` itself, as a person types it: a signal to npm must reach the server.
  const child = spawn('npm', ['start', '--silent'], { env, cwd: root });
  let output = '';
  const printed = new Promise<void>((resolve, reject) => {
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (/\/demo\n[\s\S]*\n\n/.test(output)) resolve();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('exit', (code) => reject(new Error(`npm start exited with ${code}: ${output}`)));
    setTimeout(() => reject(new Error(`npm start printed no demo: ${output}`)), 40_000).unref();
  });
  printed.catch(() => child.kill('SIGTERM'));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await printed;
  return {
    issuer,
    output: () => output,
    /** SIGTERM to npm, as a service manager sends it; resolves once nothing answers. */
    stop: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      const answered = await fetch(`${issuer}/healthz`).then(
        () => true,
        () => false,
      );
      return { code, answered };
    },
  };
}

describe('npm start with the demo', () => {
  it('prints the demo URL, and on a restart how to get a new password, and follows the new port', async () => {
    const first = await start();
    expect(first.output()).toContain(`open          ${first.issuer}/demo`);
    expect(first.output()).toMatch(/Benutzername {2}admin1 {3}Einmal-Kennwort {2}\S+/);
    expect(first.output()).toMatch(/Benutzername {2}admin2 {3}Einmal-Kennwort {2}\S+/);
    expect(await first.stop()).toEqual({ code: 0, answered: false });

    const restart = await start();
    try {
      const output = restart.output();
      expect(output).toContain(`open          ${restart.issuer}/demo`);
      expect(output).not.toContain('Einmal-Kennwort');
      expect(output).toContain(
        'npx flueag-idp account reset-password --tenant 05999999 --username admin1',
      );
      expect(output).toContain(dataDir);

      const login = asPage(await new Browser().visit(`${restart.issuer}/demo/login`));
      expect(text(login)).not.toContain(messages.invalidRedirectUri);
      expect(login.document.querySelector('#username')).not.toBeNull();
    } finally {
      expect(await restart.stop()).toEqual({ code: 0, answered: false });
    }
  }, 120_000);
});
