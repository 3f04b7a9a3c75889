/**
 * `npm run bench:trace`: where the time of one operation goes. Starts its own FerretDB and
 * server like the bench, grows the collections with `--warm` operations of each kind, and
 * then, for one full sign-in, one refresh-token grant, one introspection, one userinfo
 * request and one page of the admin account list (of a tenant with `--tenant-accounts`
 * accounts), lists every database command (collection, filter shape, whether FerretDB's SQLite
 * backend can answer it by primary key, duration) by HTTP request; then measures the CPU
 * time of `--runs` of each operation in this process and in FerretDB, and profiles as many
 * and prints the functions with the most self time on the main thread; with `--profiles`
 * it also keeps these profiles and FerretDB's own CPU profile of the same runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';

import { Command } from 'commander';

import { startFerretDB } from '../src/db/ferretdb.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../test/support/server.ts';
import { signInToConsole } from '../test/support/console.ts';
import { consolePage, seedAccounts } from './admin-list.ts';
import { CommandTrace, commandTable, labelRequests } from './commands.ts';
import { selfTimes, type CpuProfile } from './profile.ts';
import { signIn, signInOffline } from './sign-in.ts';
import { withCost } from './stats.ts';

const program = new Command('bench:trace')
  .option('--warm <n>', 'operations of each kind before tracing, to grow the collections', '200')
  .option('--runs <n>', 'operations of each kind under the CPU profiler', '30')
  .option(
    '--accounts <n>',
    'accounts of other authorities, 20 per authority, stored beforehand',
    '0',
  )
  .option('--tenant-accounts <n>', "accounts of the admin list's own authority", '1000')
  .option(
    '--profiles <dir>',
    "also write the profiles here: node's .cpuprofile (Chrome DevTools) and FerretDB's .pprof (go tool pprof)",
  );
program.parse();
const options = program.opts<{
  warm: string;
  runs: string;
  accounts: string;
  tenantAccounts: string;
  profiles?: string;
}>();
const warm = Number(options.warm);
const runs = Number(options.runs);
const population = Number(options.accounts);
const tenantAccounts = Number(options.tenantAccounts);

interface Operation {
  name: string;
  run: () => Promise<unknown>;
  /** False for an operation that stores nothing, so repeating it grows no collection. */
  grows?: boolean;
}

const basic = (client: TestClient) =>
  `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret!)}`).toString('base64')}`;

async function post(url: string, client: TestClient, body: Record<string, string>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: basic(client),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
  return json;
}

/** The five operations, each keeping what it needs (a rotating refresh token) in a closure. */
async function operations(test: TestServer): Promise<Operation[]> {
  const client = await createClient(test);
  const tenantId = (await createTenant(test)).id;
  const person: TestAccount = await createAccount(test, tenantId);
  if (population > 0) {
    const slots = [];
    for (let stored = 0; stored < population; stored += 20)
      slots.push({
        tenantId: (await createTenant(test)).id,
        count: Math.min(20, population - stored),
      });
    await seedAccounts(test, slots, person.account);
  }
  const admin = await createAccount(test, tenantId, { roles: ['local_admin'] });
  await seedAccounts(test, [{ tenantId, count: Math.max(tenantAccounts - 2, 0) }], person.account);
  const { browser } = await signInToConsole(test, admin);
  const offline = await signInOffline(client, person);
  let refreshToken = offline.refreshToken;
  const metadata = client.config.serverMetadata();
  return [
    { name: 'full sign-in', run: () => signIn(client, person) },
    {
      name: 'refresh-token grant',
      run: async () => {
        const body = await post(metadata.token_endpoint!, client, {
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
        });
        refreshToken = body.refresh_token as string;
      },
    },
    {
      name: 'introspection',
      run: async () => {
        const body = await post(metadata.introspection_endpoint!, client, {
          token: offline.accessToken,
        });
        if (body.active !== true) throw new Error('introspection calls the token inactive');
      },
    },
    {
      name: 'userinfo',
      run: async () => {
        const response = await fetch(metadata.userinfo_endpoint!, {
          headers: { authorization: `Bearer ${offline.accessToken}` },
        });
        if (response.status !== 200) throw new Error(`userinfo answered ${response.status}`);
      },
    },
    {
      name: 'admin list page',
      run: () => consolePage(test, browser, '/admin/accounts'),
      grows: false,
    },
  ];
}

const fixed = (ms: number) => ms.toFixed(1);

async function collectionSizes(test: TestServer): Promise<string> {
  const db = test.services.db;
  const names = (await db.listCollections({}, { nameOnly: true }).toArray())
    .map((c) => c.name)
    .sort();
  const counts = await Promise.all(
    names.map(async (name) => [name, await db.collection(name).countDocuments()] as const),
  );
  return counts
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'flueag-trace-'));
const ferretdb = await startFerretDB(dir);
process.env.FLUEAG_TEST_MONGODB = ferretdb.uri;
const progress = (step: string) => process.stderr.write(`bench:trace: ${step}\n`);
try {
  const test = await startTestServer();
  try {
    const trace = new CommandTrace(test);
    labelRequests(trace);
    const ops = await operations(test);
    progress(`${warm} operations of each kind`);
    for (let round = 0; round < warm; round += 1)
      for (const op of ops) if (op.grows !== false) await op.run();

    const out: string[] = [
      `# Trace, ${new Date().toISOString()}: Node ${process.version}, ${os.cpus().length} cores, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      '',
      `After ${warm} operations of each kind: ${await collectionSizes(test)}.`,
    ];
    for (const op of ops) {
      trace.commands = [];
      trace.step = op.name;
      const started = performance.now();
      await op.run();
      const ms = performance.now() - started;
      trace.step = '';
      out.push('', `## ${op.name}: ${fixed(ms)} ms`, '', commandTable(trace.commands));
    }

    out.push(
      '',
      `## CPU per operation: ${runs} runs each, one after another, without the profiler`,
      '',
      '| operation | ms each | CPU ms, node (server and client) | CPU ms, FerretDB |',
      '| --- | ---: | ---: | ---: |',
    );
    const wallMsEach = new Map<Operation, number>();
    for (const op of ops) {
      progress(`${runs} × ${op.name}`);
      const started = performance.now();
      const { cost } = await withCost(ferretdb.pid, async () => {
        for (let run = 0; run < runs; run += 1) await op.run();
        return { ops: runs };
      });
      wallMsEach.set(op, (performance.now() - started) / runs);
      out.push(
        `| ${op.name} | ${fixed((performance.now() - started) / runs)} | ${fixed(cost.cpuSecondsPerOp * 1000)} | ${fixed(cost.databaseCpuSecondsPerOp * 1000)} |`,
      );
    }

    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    for (const op of ops) {
      progress(`profiling ${runs} × ${op.name}`);
      const file = path.join(options.profiles ?? '', op.name.replace(/\W+/g, '-'));
      // FerretDB's pprof profiles for whole seconds: the runs go on until it is complete.
      const seconds = Math.max(1, Math.ceil(((wallMsEach.get(op) ?? 0) * runs) / 1000));
      let profiling: Promise<void> | undefined;
      let profiled = !options.profiles;
      if (options.profiles)
        profiling = fetch(`${ferretdb.debugUrl}/debug/pprof/profile?seconds=${seconds}`)
          .then(async (response) => writeFile(`${file}.ferretdb.pprof`, await response.bytes()))
          .finally(() => (profiled = true));
      await session.post('Profiler.start');
      const started = performance.now();
      let count = 0;
      while (count < runs || !profiled) {
        await op.run();
        count += 1;
      }
      const wallMs = performance.now() - started;
      const { profile } = (await session.post('Profiler.stop')) as unknown as {
        profile: CpuProfile;
      };
      await profiling;
      if (options.profiles) await writeFile(`${file}.cpuprofile`, JSON.stringify(profile));
      const { busyMs, top, areas } = selfTimes(profile);
      const rows = (list: typeof top) =>
        list.map(
          (t) => `| ${(t.ms / count).toFixed(2)} | ${(t.share * 100).toFixed(1)} % | ${t.key} |`,
        );
      out.push(
        '',
        `## CPU profile, ${op.name}: ${count} runs, ${fixed(wallMs / count)} ms each, main thread busy ${fixed(busyMs / count)} ms each`,
        '',
        '| self ms per run | share | area |',
        '| ---: | ---: | --- |',
        ...rows(areas),
        '',
        '| self ms per run | share | function |',
        '| ---: | ---: | --- |',
        ...rows(top),
      );
    }
    session.disconnect();
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await test.close();
  }
} finally {
  await ferretdb.stop();
  await rm(dir, { recursive: true, force: true });
}
