/**
 * `npm run bench`: starts its own FerretDB and server, measures, prints a table and writes
 * JSON and Markdown to bench/results/. `--profile smoke` is the small run of CI.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Command, Option } from 'commander';

import { loadConfig } from '../src/config.ts';
import { startFerretDB } from '../src/db/ferretdb.ts';
import { startTestServer } from '../test/support/server.ts';
import { benchAdminList } from './admin-list.ts';
import { benchArgon2 } from './argon2.ts';
import { benchBareRefresh } from './bare.ts';
import { benchPopulation } from './population.ts';
import { markdown, type BenchResult } from './report.ts';
import { benchSignIns } from './sign-in.ts';
import { rssMiB, withCost } from './stats.ts';
import { benchTokenEndpoints } from './tokens.ts';

const profiles = {
  smoke: {
    seconds: 1,
    signInConcurrencies: [1, 2],
    tokenConcurrency: 2,
    population: { tenants: 4, accountsPerTenant: 5, runs: 3 },
    adminList: { accounts: 200, runs: 3 },
  },
  full: {
    seconds: 8,
    signInConcurrencies: [1, 2, 4, 8],
    tokenConcurrency: 8,
    population: { tenants: 400, accountsPerTenant: 20, runs: 50 },
    adminList: { accounts: 10_000, runs: 20 },
  },
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
const progress = (step: string) => process.stderr.write(`bench: ${step}\n`);
try {
  const config = loadConfig({ DATA_DIR: dir, METRICS_PORT: 'off' });
  const { seconds } = settings;

  progress('argon2id ceiling');
  const argon2 = await withCost(ferretdb.pid, () => benchArgon2(config.argon2, { seconds }));

  // The throughput and the population share one server; the large tenant gets a database
  // of its own, so that each measures the collection sizes it names.
  const test = await startTestServer();
  let main;
  try {
    const restMiB = rssMiB();
    progress('full sign-ins');
    const signIns = await benchSignIns(test, ferretdb.pid, {
      concurrencies: settings.signInConcurrencies,
      seconds,
    });
    progress('token endpoints');
    const tokens = await benchTokenEndpoints(test, ferretdb.pid, {
      concurrency: settings.tokenConcurrency,
      seconds,
    });
    progress('bare oidc-provider');
    const bareRefresh = await benchBareRefresh(ferretdb.pid, {
      concurrency: settings.tokenConcurrency,
      seconds,
    });
    progress('population');
    const population = await benchPopulation(test, settings.population);
    main = { restMiB, signIns, tokens, bareRefresh, population };
  } finally {
    await test.close();
  }

  progress('admin list of one large tenant');
  const large = await startTestServer();
  const adminList = await benchAdminList(large, settings.adminList).finally(() => large.close());

  const loads = [argon2, ...main.signIns, ...Object.values(main.tokens), main.bareRefresh];
  const result: BenchResult = {
    profile,
    at: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? '',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    database: 'FerretDB v1.24.2 (SQLite)',
    hashConcurrency: config.hashQueue.concurrency,
    memory: {
      restMiB: main.restMiB,
      peakMiB: Math.max(...loads.map((load) => load.cost.peakRssMiB)),
    },
    argon2,
    signIns: main.signIns,
    tokens: main.tokens,
    bareRefresh: main.bareRefresh,
    population: main.population,
    adminList,
  };

  const report = markdown(result);
  process.stdout.write(`${report}\n`);
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, `${profile}.json`), `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(path.join(out, `${profile}.md`), report);
} finally {
  await ferretdb.stop();
  await rm(dir, { recursive: true, force: true });
}
