/**
 * The Prometheus scrape endpoint, on a listener of its own (`METRICS_HOST:METRICS_PORT`,
 * loopback by default) and never on the public one: the reverse proxy forwards only the
 * public port, so `/metrics` cannot leak to the internet through it. Where the metrics port
 * is reachable from a shared network, `METRICS_TOKEN` additionally asks for
 * `Authorization: Bearer <token>`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

import { ConfigError, listenFailure } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';

export interface MetricsListener {
  /** The scrape URL, `http://host:port/metrics`. */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsListener(
  metrics: Metrics,
  options: { port: number; host: string; token: string | undefined },
  log: Logger,
): Promise<MetricsListener> {
  const server = http.createServer((request, response) => {
    void answer(metrics, options.token, request, response).catch((error: unknown) => {
      log.error({ err: error, event: 'metrics.failed' }, 'metrics scrape failed');
      if (!response.headersSent) response.writeHead(500).end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new ConfigError(
              `METRICS_PORT ${options.port} is already in use; set METRICS_PORT to a free port or off`,
            )
          : listenFailure(
              error,
              { host: 'METRICS_HOST', port: 'METRICS_PORT' },
              options.host,
              options.port,
            ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;

  return {
    url: `http://${host}:${port}/metrics`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

async function answer(
  metrics: Metrics,
  token: string | undefined,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  const path = (request.url ?? '').split('?')[0];
  if (path !== '/metrics') {
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  if (token !== undefined && !bearerMatches(request.headers.authorization, token)) {
    response.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="metrics"' }).end('unauthorized\n');
    return;
  }

  const body = await metrics.registry.metrics();
  response.writeHead(200, {
    'Content-Type': metrics.registry.contentType,
    'Cache-Control': 'no-store',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** Compares digests, so neither the length nor the content leaks through timing. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(token));
}
