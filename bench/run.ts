/**
 * `npm run bench`: starts its own FerretDB and server, measures, prints a table and writes
 * JSON and Markdown to bench/results/. `--profile smoke` is the small run of CI.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Command, Option } from 'commander';

import { startFerretDB } from '../src/db/ferretdb.ts';
import { startTestServer } from '../test/support/server.ts';
import { benchAdminList } from './admin-list.ts';

const profiles = {
  smoke: { accounts: 500, runs: 10 },
  full: { accounts: 10_000, runs: 100 },
} as const;

const program = new Command('bench')
  .addOption(
    new Option('--profile <name>', 'size of the run')
      .choices(Object.keys(profiles))
      .default('full'),
  )
  .option('--out <dir>', 'where results go', path.join(import.meta.dirname, 'results'));
program.parse();
const { profile, out } = program.opts<{ profile: keyof typeof profiles; out: string }>();
const settings = profiles[profile];

const dir = await mkdtemp(path.join(os.tmpdir(), 'flueag-bench-'));
const ferretdb = await startFerretDB(dir);
process.env.FLUEAG_TEST_MONGODB = ferretdb.uri;
const test = await startTestServer();
try {
  const adminList = await benchAdminList(test, settings);
  const result = {
    profile,
    at: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? '',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    database: 'FerretDB v1.24.2 (SQLite)',
    adminList,
  };

  const rows = Object.entries(adminList.cases).map(
    ([name, latency]) =>
      `| ${name} | ${latency.runs} | ${latency.p50} | ${latency.p95} | ${latency.max} |`,
  );
  const markdown = [
    `Admin account list, one tenant with ${adminList.accounts.toLocaleString('en')} accounts (${profile} profile, ${result.machine.cpus} cores, ${result.database}, Node ${result.machine.node}):`,
    '',
    '| request | runs | p50 ms | p95 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(`${markdown}\n`);
  await writeFile(path.join(out, `${profile}.json`), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(path.join(out, `${profile}.md`), markdown);
} finally {
  await test.close();
  await ferretdb.stop();
  await rm(dir, { recursive: true, force: true });
}
