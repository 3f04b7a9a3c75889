/**
 * The HTTP server: the provider with our pages and routes, on the services of `services.ts`.
 */
import http from 'node:http';

import type Provider from 'oidc-provider';

import { Housekeeping } from './db/housekeeping.ts';
import { mountHttp } from './http/app.ts';
import { Views } from './http/views.ts';
import { createProvider } from './oidc/provider.ts';
import type { Services } from './services.ts';
import { demoRelyingParty } from './demo/relying-party.ts';

export interface RunningServer {
  provider: Provider;
  server: http.Server;
  /** The base URL the server listens on (not necessarily the issuer behind a proxy). */
  url: string;
  close(): Promise<void>;
}

/** Builds the provider and starts listening on `port` (0 = any free port). */
export async function startServer(
  services: Services,
  options: { port: number; host: string; demo?: boolean },
): Promise<RunningServer> {
  const { config, log } = services;
  const views = new Views({ support: config.support });
  const provider = createProvider({ ...services, views });
  mountHttp(provider, {
    provider,
    signIn: services.signIn,
    accounts: services.accounts,
    tenants: services.tenants,
    views,
    log,
    databaseReady: services.databaseReady,
    ...(options.demo ? { extraRoutes: demoRelyingParty(config, views) } : {}),
  });

  const housekeeping = new Housekeeping(
    services.db,
    services.audit,
    config.auditRetentionDays,
    log,
  );
  housekeeping.start();

  const server = http.createServer(provider.callback());
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host === '0.0.0.0' ? 'localhost' : options.host}:${port}`;

  return {
    provider,
    server,
    url,
    close: async () => {
      housekeeping.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
