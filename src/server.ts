/**
 * The HTTP server: the provider with our pages and routes, on the services of `services.ts`.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';

import type Provider from 'oidc-provider';

import { listenFailure } from './config.ts';
import { Housekeeping } from './db/housekeeping.ts';
import { mountHttp } from './http/app.ts';
import { translator, Views } from './http/views.ts';
import { startMetricsListener } from './metrics/listener.ts';
import { KeyFileWatch } from './oidc/key-reload.ts';
import type { KeyMaterial } from './oidc/keys.ts';
import { createProvider } from './oidc/provider.ts';
import type { Services } from './services.ts';
import { adminApi } from './admin/api.ts';
import { consoleRoutes } from './console/routes.ts';
import { ConsoleSignIn, ensureConsoleClient } from './console/sign-in.ts';
import { demoRelyingParty } from './demo/relying-party.ts';

export interface RunningServer {
  /** The provider serving new requests; a changed key file replaces it. */
  readonly provider: Provider;
  server: http.Server;
  /** The base URL the server listens on (not necessarily the issuer behind a proxy). */
  url: string;
  /** The Prometheus scrape URL on its own listener; undefined with METRICS_PORT=off. */
  metricsUrl: string | undefined;
  /** Reads the key file now (as every KEYS_RELOAD_SECONDS); true when new keys came in. */
  reloadKeys(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Requests that Node's HTTP parser refuses before Koa sees them (headers over 16 kB, an
 * over-long URL, broken syntax, a request that took too long) get a short German page
 * instead of an empty answer.
 */
function answerMalformedRequest(views: Views) {
  return (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || (socket as Duplex & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const [status, reason, key] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'error.too_large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'error.generic']
          : [400, 'Bad Request', 'error.generic'];
    const { headers, body } = refusalPage(views, key);
    socket.end(
      [
        `HTTP/1.1 ${status} ${reason}`,
        ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
        'Connection: close',
        '',
        body,
      ].join('\r\n'),
    );
  };
}

/**
 * True unless the request target is an absolute URL that does not parse. Koa reads paths
 * with the legacy `url.parse`, which throws on such targets (`GET http://[ HTTP/1.1`) that
 * Node's parser lets through; that request is malformed, not a fault of the server.
 */
function readableTarget(target = '/'): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(target) || URL.canParse(target);
}

/** The German page of a refused request, with the headers every page of ours carries. */
function refusalPage(views: Views, key: string) {
  const t = translator('de');
  const body = views.page('error', { title: t('error.title'), message: t(key), code: null }, 'de');
  const headers = {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
  };
  return { headers, body };
}

/** How long requests in flight may still run once the server is closing. */
const DRAIN_MS = 10_000;

/**
 * Closing the server as a rolling restart needs it: new connections are refused at once,
 * requests in flight finish with their normal answer, and each connection closes as soon
 * as its last request is answered (a keep-alive connection would otherwise hold the process
 * for `keepAliveTimeout`). Requests still running after `DRAIN_MS` are cut off.
 */
class Drain {
  readonly #server: http.Server;
  #closing = false;

  constructor(server: http.Server) {
    this.#server = server;
    server.on('request', (_request, response: http.ServerResponse) => {
      // 'close' follows 'finish' once the socket is detached, so the connection is idle.
      response.on('close', () => {
        if (this.#closing) server.closeIdleConnections();
      });
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const cutOff = setTimeout(() => this.#server.closeAllConnections(), DRAIN_MS);
    await closed;
    clearTimeout(cutOff);
  }
}

/** The provider with our middleware and routes on it, for one set of keys. */
interface App {
  provider: Provider;
  handle: (request: http.IncomingMessage, response: http.ServerResponse) => void;
}

function buildApp(
  services: Services,
  views: Views,
  keys: KeyMaterial,
  options: { demo?: boolean },
): App {
  const { config, log } = services;
  const provider = createProvider({ ...services, keys, views });
  // First, so that the request durations cover all our middleware.
  provider.use(services.metrics.httpMiddleware());
  services.metrics.observeProvider(provider);
  const consoleSignIn = new ConsoleSignIn({
    provider,
    db: services.db,
    issuer: config.issuer,
    accounts: services.accounts,
    sessions: services.consoleSessions,
    views,
    interactionTtlSeconds: config.ttl.interaction,
  });
  mountHttp(provider, {
    provider,
    signIn: services.signIn,
    accounts: services.accounts,
    tenants: services.tenants,
    views,
    log,
    issuer: config.issuer,
    databaseReady: services.databaseReady,
    console: consoleRoutes({
      consoleSignIn,
      admin: services.admin,
      auditQuery: services.auditQuery,
      accounts: services.accounts,
      signIn: services.signIn,
      views,
      now: services.now,
      api: adminApi({
        provider,
        accounts: services.accounts,
        consoleSignIn,
        admin: services.admin,
        auditQuery: services.auditQuery,
      }),
    }),
    ...(options.demo ? { extraRoutes: demoRelyingParty(config, views) } : {}),
  });
  return { provider, handle: provider.callback() };
}

/**
 * Builds the provider and starts listening on `port` (0 = any free port). When the key
 * file changes, the provider and its routes are built anew with the new keys and serve
 * every request from then on; a request already under way finishes on the ones it began
 * with. Both share the database, so sessions, interactions and tokens carry over.
 */
export async function startServer(
  services: Services,
  options: { port: number; host: string; demo?: boolean },
): Promise<RunningServer> {
  const { config, log } = services;
  const views = new Views({ support: config.support });
  let app = buildApp(services, views, services.keys, options);
  const keyFile = new KeyFileWatch({
    file: config.keysFile,
    intervalSeconds: config.keys.reloadSeconds,
    current: services.keys,
    apply: (keys) => {
      app = buildApp(services, views, keys, options);
    },
    log,
  });

  const metrics =
    config.metrics.port === undefined
      ? undefined
      : await startMetricsListener(
          services.metrics,
          { ...config.metrics, port: config.metrics.port },
          log,
        );

  const housekeeping = new Housekeeping(
    services.db,
    services.audit,
    config.auditRetentionDays,
    log,
  );

  const server = http.createServer((request, response) => {
    if (readableTarget(request.url)) return app.handle(request, response);
    const { headers, body } = refusalPage(views, 'error.generic');
    response.writeHead(400, { ...headers, Connection: 'close' }).end(body);
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.on('clientError', answerMalformedRequest(views));
  const drain = new Drain(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  }).catch(async (error: NodeJS.ErrnoException) => {
    await metrics?.close();
    throw listenFailure(error, { host: 'HOST', port: 'PORT' }, options.host, options.port);
  });
  // Only once the server listens: a start that fails changes nothing in the database (the
  // console client would follow a port that another server holds) and leaves no cleaning
  // run behind.
  await ensureConsoleClient(services.clients, config.issuer);
  housekeeping.start();
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host === '0.0.0.0' ? 'localhost' : options.host}:${port}`;

  keyFile.start();

  return {
    get provider() {
      return app.provider;
    },
    server,
    url,
    metricsUrl: metrics?.url,
    reloadKeys: () => keyFile.check(),
    close: async () => {
      keyFile.stop();
      housekeeping.stop();
      await metrics?.close();
      await drain.close();
    },
  };
}
