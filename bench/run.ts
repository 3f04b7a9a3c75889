/**
 * `npm run bench`: starts its own FerretDB and server, measures, prints a table and writes
 * JSON and Markdown to bench/results/. `--profile smoke` is the small run of CI. `--only`
 * runs some of the parts, each on a server and database of its own, and prints their rows
 * without writing results.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Command, Option } from 'commander';

import { loadConfig } from '../src/config.ts';
import { startFerretDB } from '../src/db/ferretdb.ts';
import { startTestServer, type TestServer } from '../test/support/server.ts';
import { benchAdminList } from './admin-list.ts';
import { benchArgon2 } from './argon2.ts';
import { benchBareRefresh } from './bare.ts';
import { benchPopulation } from './population.ts';
import { hashingSettings, markdown, partialMarkdown, type BenchResult } from './report.ts';
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

const parts = ['argon2', 'sign-ins', 'tokens', 'bare', 'population', 'admin-list'] as const;
type Part = (typeof parts)[number];

const program = new Command('bench')
  .addOption(
    new Option('--profile <name>', 'size of the run')
      .choices(Object.keys(profiles))
      .default('full'),
  )
  .option('--out <dir>', 'where results go', path.join(import.meta.dirname, 'results'))
  .addOption(
    new Option('--only <parts...>', 'run only these parts, each in isolation').choices(parts),
  );
program.parse();
const { profile, out, only } = program.opts<{
  profile: keyof typeof profiles;
  out: string;
  only?: Part[];
}>();
const settings = profiles[profile];

const dir = await mkdtemp(path.join(os.tmpdir(), 'flueag-bench-'));
const ferretdb = await startFerretDB(dir);
process.env.FLUEAG_TEST_MONGODB = ferretdb.uri;
const progress = (step: string) => process.stderr.write(`bench: ${step}\n`);
// The hashing an operator sizes for: the ARGON2_* and HASH_* variables of the environment
// apply to the ceiling and to every server the bench starts.
const hashing: Record<string, string> = {};
for (const [name, value] of Object.entries(process.env))
  if (/^(ARGON2|HASH)_/.test(name) && value !== undefined) hashing[name] = value;
try {
  const config = loadConfig({ ...hashing, DATA_DIR: dir, METRICS_PORT: 'off' });
  await (only ? runParts(only, config) : runAll(config));
} finally {
  await ferretdb.stop();
  await rm(dir, { recursive: true, force: true });
}

/** Every part in one run, the population on the throughput's server; writes the results. */
async function runAll(config: ReturnType<typeof loadConfig>) {
  const { seconds } = settings;
  progress('argon2id ceiling');
  const argon2 = await withCost(ferretdb.pid, () => benchArgon2(config.argon2, { seconds }));

  // The throughput and the population share one server; the large tenant gets a database
  // of its own, so that each measures the collection sizes it names.
  const test = await startTestServer(hashing);
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
  const large = await startTestServer(hashing);
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
}

/** The chosen parts, each on a fresh server and database; prints their rows. */
async function runParts(chosen: Part[], config: ReturnType<typeof loadConfig>) {
  const { seconds } = settings;
  const argon2Settings = config.argon2;
  process.stdout.write(`${hashingSettings(argon2Settings, config.hashQueue.concurrency)}\n\n`);
  const result: Partial<BenchResult> = {};
  const onFreshServer = async <T>(work: (test: TestServer) => Promise<T>) => {
    const test = await startTestServer(hashing);
    return work(test).finally(() => test.close());
  };
  for (const part of parts.filter((name) => chosen.includes(name))) {
    progress(part);
    if (part === 'argon2')
      result.argon2 = await withCost(ferretdb.pid, () => benchArgon2(argon2Settings, { seconds }));
    if (part === 'sign-ins')
      result.signIns = await onFreshServer((test) =>
        benchSignIns(test, ferretdb.pid, { concurrencies: settings.signInConcurrencies, seconds }),
      );
    if (part === 'tokens')
      result.tokens = await onFreshServer((test) =>
        benchTokenEndpoints(test, ferretdb.pid, {
          concurrency: settings.tokenConcurrency,
          seconds,
        }),
      );
    if (part === 'bare')
      result.bareRefresh = await benchBareRefresh(ferretdb.pid, {
        concurrency: settings.tokenConcurrency,
        seconds,
      });
    if (part === 'population')
      result.population = await onFreshServer((test) => benchPopulation(test, settings.population));
    if (part === 'admin-list')
      result.adminList = await onFreshServer((test) => benchAdminList(test, settings.adminList));
  }
  process.stdout.write(`${partialMarkdown(result)}\n`);
}
