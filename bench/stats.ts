/** Latency figures of a series of timed runs. */
export interface Latency {
  runs: number;
  p50: number;
  p95: number;
  max: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;

const round = (ms: number) => Math.round(ms * 10) / 10;

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
  times.sort((a, b) => a - b);
  return {
    runs,
    p50: round(percentile(times, 50)),
    p95: round(percentile(times, 95)),
    max: round(times.at(-1) ?? 0),
  };
}
