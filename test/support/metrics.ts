/** Reads a server's Prometheus scrape endpoint as a scraper does. */
import type { TestServer } from './server.ts';

export async function scrape(test: TestServer, token?: string): Promise<string> {
  const response = await fetch(test.server.metricsUrl!, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  if (response.status !== 200) throw new Error(`metrics answered ${response.status}`);
  return response.text();
}

/**
 * The value of one sample: `name` with exactly these labels (in any order); undefined when
 * there is no such series.
 */
export function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have =
      (match[2] ?? '')
        .match(/[a-zA-Z_]+="[^"]*"/g)
        ?.sort()
        .join(',') ?? '';
    if (have === wanted) return Number(match[3]);
  }
  return undefined;
}
