/** Latency figures, timed load loops and what a phase of the bench costs in CPU and memory. */
import { readFile } from 'node:fs/promises';

/** Latency figures of a series of timed runs. */
export interface Latency {
  runs: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;

const round = (ms: number) => Math.round(ms * 10) / 10;

/** The latency figures of `times` (milliseconds, any order). */
export function latencyOf(times: number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    runs: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? 0),
  };
}

/** Runs `operation` `runs` times one after another and returns its latency in milliseconds. */
export async function timeSeries(
  runs: number,
  operation: () => Promise<unknown>,
): Promise<Latency> {
  const times: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const started = performance.now();
    await operation();
    times.push(performance.now() - started);
  }
  return latencyOf(times);
}

/** What a load loop achieved. */
export interface Throughput {
  concurrency: number;
  ops: number;
  seconds: number;
  perSecond: number;
  latency: Latency;
}

/**
 * Runs `concurrency` workers for `seconds`, each calling `operation(worker)` one after
 * another, so every worker can keep its own state (a refresh token that rotates).
 */
export async function loadLoop(
  options: { concurrency: number; seconds: number },
  operation: (worker: number) => Promise<unknown>,
): Promise<Throughput> {
  const times: number[] = [];
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const worker = async (index: number) => {
    while (performance.now() < deadline) {
      const begun = performance.now();
      await operation(index);
      times.push(performance.now() - begun);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, index) => worker(index)));
  const seconds = (performance.now() - started) / 1000;
  return {
    concurrency: options.concurrency,
    ops: times.length,
    seconds: Math.round(seconds * 100) / 100,
    perSecond: Math.round((times.length / seconds) * 10) / 10,
    latency: latencyOf(times),
  };
}

/** CPU and memory of one phase: this process (server and load generator) and FerretDB. */
export interface Cost {
  /** CPU seconds of this process per operation: the server and the load generator. */
  cpuSecondsPerOp: number;
  /** CPU seconds of the FerretDB process per operation. */
  databaseCpuSecondsPerOp: number;
  /** The largest resident set of this process seen during the phase. */
  peakRssMiB: number;
}

const MiB = 2 ** 20;
/** Linux counts process CPU time in clock ticks of 1/100 s (USER_HZ). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the process `pid` has used, from /proc; 0 where there is none. */
async function processCpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** The resident set of this process in MiB. */
export const rssMiB = () => Math.round(process.memoryUsage.rss() / MiB);

/**
 * Runs `phase` and measures its CPU time (this process through process.cpuUsage, which
 * counts every thread, argon2's among them; FerretDB through /proc) and peak memory.
 */
export async function withCost<T extends { ops: number }>(
  databasePid: number,
  phase: () => Promise<T>,
): Promise<T & { cost: Cost }> {
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  const databaseBefore = await processCpuSeconds(databasePid);
  const before = process.cpuUsage();
  try {
    const result = await phase();
    const used = process.cpuUsage(before);
    const databaseUsed = (await processCpuSeconds(databasePid)) - databaseBefore;
    const perOp = (seconds: number) => Math.round((seconds / Math.max(1, result.ops)) * 1e5) / 1e5;
    return {
      ...result,
      cost: {
        cpuSecondsPerOp: perOp((used.user + used.system) / 1e6),
        databaseCpuSecondsPerOp: perOp(databaseUsed),
        peakRssMiB: Math.round(Math.max(peak, process.memoryUsage.rss()) / MiB),
      },
    };
  } finally {
    clearInterval(sampler);
  }
}
