/** The bench's tables: throughput, latency, and the targets with the ratios they rest on. */
import type { AdminListResult } from './admin-list.ts';
import type { Argon2Ceiling } from './argon2.ts';
import type { PopulationResult } from './population.ts';
import type { SignInThroughput } from './sign-in.ts';
import type { Latency } from './stats.ts';
import type { Measured, TokenEndpoints } from './tokens.ts';

export interface BenchResult {
  profile: string;
  at: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  database: string;
  hashConcurrency: number;
  memory: { restMiB: number; peakMiB: number };
  argon2: Argon2Ceiling & Measured;
  signIns: SignInThroughput[];
  tokens: TokenEndpoints;
  bareRefresh: Measured;
  population: PopulationResult;
  adminList: AdminListResult;
}

export interface Target {
  name: string;
  measured: string;
  goal: string;
  met: boolean;
}

const percent = (ratio: number) => `${Math.round(ratio * 1000) / 10} %`;

/** The three targets, each as measured in this run. */
export function targets(result: BenchResult): Target[] {
  const bestSignIn = Math.max(...result.signIns.map((run) => run.perSecond));
  const signInRatio = bestSignIn / result.argon2.perSecond;
  const refreshRatio = result.tokens.refresh.perSecond / result.bareRefresh.perSecond;
  const [worstName, worst] = Object.entries(result.adminList.cases).reduce((a, b) =>
    b[1].p95 > a[1].p95 ? b : a,
  );
  return [
    {
      name: 'full sign-ins / argon2 ceiling',
      measured: `${percent(signInRatio)} (${bestSignIn} / ${result.argon2.perSecond} per s)`,
      goal: '≥ 80 %',
      met: signInRatio >= 0.8,
    },
    {
      name: 'refresh grants / bare oidc-provider',
      measured: `${percent(refreshRatio)} (${result.tokens.refresh.perSecond} / ${result.bareRefresh.perSecond} per s)`,
      goal: '≥ 50 %',
      met: refreshRatio >= 0.5,
    },
    {
      name: `admin list p95, ${result.adminList.accounts.toLocaleString('en')} accounts (slowest request: ${worstName})`,
      measured: `${worst.p95} ms`,
      goal: '< 100 ms at 10,000',
      met: worst.p95 < 100 && result.adminList.accounts >= 10_000,
    },
  ];
}

const throughputRow = (name: string, run: Measured) =>
  `| ${name} | ${run.concurrency} | ${run.perSecond} | ${run.latency.p50} | ${run.latency.p99} | ${run.cost.cpuSecondsPerOp} | ${run.cost.databaseCpuSecondsPerOp} | ${run.cost.peakRssMiB} |`;

const latencyRow = (name: string, latency: Latency) =>
  `| ${name} | ${latency.runs} | ${latency.p50} | ${latency.p95} | ${latency.p99} | ${latency.max} |`;

/** The hashing parameters that the figures hold for. */
export const hashingSettings = (
  argon2: { memoryCost: number; timeCost: number; parallelism: number },
  concurrency: number,
) =>
  `argon2id ${Math.round(argon2.memoryCost / 1024)} MiB, ${argon2.timeCost} passes, ${argon2.parallelism} ${argon2.parallelism === 1 ? 'lane' : 'lanes'}, hashing queue ${concurrency} at once`;

/** The Markdown report of one run. */
export function markdown(result: BenchResult): string {
  const { argon2, population, adminList } = result;
  return [
    `${result.profile} profile, ${result.at}: ${result.machine.cpus} cores (${result.machine.cpuModel}), ${result.machine.memoryGiB} GiB, Node ${result.machine.node}, ${result.database}, ${hashingSettings(argon2.settings, result.hashConcurrency)}.`,
    '',
    '| target | measured | goal | result |',
    '| --- | ---: | ---: | --- |',
    ...targets(result).map(
      (target) =>
        `| ${target.name} | ${target.measured} | ${target.goal} | ${target.met ? 'met' : 'missed'} |`,
    ),
    '',
    '| operation | concurrency | per second | p50 ms | p99 ms | CPU s/op, node | CPU s/op, FerretDB | peak RSS MiB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    throughputRow('argon2id verification (ceiling, all cores)', argon2),
    ...result.signIns.map((run) =>
      throughputRow('full sign-in (authorize → form → code → token)', run),
    ),
    throughputRow('refresh-token grant', result.tokens.refresh),
    throughputRow('refresh-token grant, bare oidc-provider (memory adapter)', result.bareRefresh),
    throughputRow('introspection', result.tokens.introspection),
    throughputRow('userinfo', result.tokens.userinfo),
    '',
    `Population: ${population.tenants} authorities with ${population.accountsPerTenant} accounts each (seeded in ${population.seedSeconds} s); admin list: one authority with ${adminList.accounts.toLocaleString('en')} accounts.`,
    '',
    '| request | runs | p50 ms | p95 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    latencyRow('population: full sign-in', population.signIn),
    latencyRow('population: admin list of one authority', population.adminList),
    ...Object.entries(adminList.cases).map(([name, latency]) =>
      latencyRow(`${adminList.accounts.toLocaleString('en')} accounts: ${name}`, latency),
    ),
    '',
    `Resident memory of the bench process: ${result.memory.restMiB} MiB at rest, ${result.memory.peakMiB} MiB at the peak under load.`,
    'The server runs inside the bench process, so its CPU and memory figures include the load generator (autocannon, the sign-in client); FerretDB is a process of its own.',
    '',
  ].join('\n');
}

/**
 * The rows of the parts that ran (`npm run bench -- --only …`), and the ratio of a target
 * when both of its sides ran.
 */
export function partialMarkdown(result: Partial<BenchResult>): string {
  const rows: string[] = [];
  if (result.argon2)
    rows.push(throughputRow('argon2id verification (ceiling, all cores)', result.argon2));
  for (const run of result.signIns ?? [])
    rows.push(throughputRow('full sign-in (authorize → form → code → token)', run));
  if (result.tokens) rows.push(throughputRow('refresh-token grant', result.tokens.refresh));
  if (result.bareRefresh)
    rows.push(
      throughputRow('refresh-token grant, bare oidc-provider (memory adapter)', result.bareRefresh),
    );
  if (result.tokens)
    rows.push(
      throughputRow('introspection', result.tokens.introspection),
      throughputRow('userinfo', result.tokens.userinfo),
    );
  const ratios: string[] = [];
  if (result.argon2 && result.signIns) {
    const best = Math.max(...result.signIns.map((run) => run.perSecond));
    ratios.push(`full sign-ins / argon2 ceiling: ${percent(best / result.argon2.perSecond)}`);
  }
  if (result.tokens && result.bareRefresh) {
    const ratio = result.tokens.refresh.perSecond / result.bareRefresh.perSecond;
    ratios.push(`refresh grants / bare oidc-provider: ${percent(ratio)}`);
  }
  const latencies: string[] = [];
  if (result.population)
    latencies.push(
      latencyRow('population: full sign-in', result.population.signIn),
      latencyRow('population: admin list of one authority', result.population.adminList),
    );
  for (const [name, latency] of Object.entries(result.adminList?.cases ?? {}))
    latencies.push(
      latencyRow(`${result.adminList!.accounts.toLocaleString('en')} accounts: ${name}`, latency),
    );
  return [
    ...(rows.length === 0
      ? []
      : [
          '| operation | concurrency | per second | p50 ms | p99 ms | CPU s/op, node | CPU s/op, FerretDB | peak RSS MiB |',
          '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
          ...rows,
          '',
        ]),
    ...(latencies.length === 0
      ? []
      : [
          '| request | runs | p50 ms | p95 ms | p99 ms | max ms |',
          '| --- | ---: | ---: | ---: | ---: | ---: |',
          ...latencies,
          '',
        ]),
    ...ratios,
    '',
  ].join('\n');
}
