/**
 * A real flueag-idp server for a test file: its own database on the shared FerretDB, its
 * own data directory and keys, listening on a free loopback port.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as oidc from 'openid-client';
import type { DestinationStream } from 'pino';

import type { Account } from '../../src/accounts/model.ts';
import type { RequestContext } from '../../src/audit/trail.ts';
import { loadConfig } from '../../src/config.ts';
import { freePort } from '../../src/db/ferretdb.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { openServices, type Services } from '../../src/services.ts';

export const system: RequestContext = { actor: { kind: 'system' } };

export interface TestServer {
  issuer: string;
  /** The server's own database, for a CLI process to work on. */
  databaseUri: string;
  dataDir: string;
  services: Services;
  server: RunningServer;
  /** Clock offset in milliseconds, applied to every "now" of the services. */
  clock: { offsetMs: number };
  /** Stops the server and keeps its database, as between two starts of one installation. */
  stop(): Promise<void>;
  /** Stops the server and drops its database. */
  close(): Promise<void>;
}

/**
 * Starts a server with its own database; `env` overrides configuration variables. A given
 * `database` is reused, as by a restart of the same installation; `demo` serves `/demo`;
 * `databaseServer` (a MongoDB URI ending in `/`) replaces the shared FerretDB; `log` receives
 * the server's log lines instead of stdout.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  options: {
    database?: string;
    demo?: boolean;
    databaseServer?: string;
    log?: DestinationStream;
  } = {},
): Promise<TestServer> {
  const base = options.databaseServer ?? process.env.FLUEAG_TEST_MONGODB;
  if (!base) throw new Error('FLUEAG_TEST_MONGODB is not set: run the tests with npm test');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-server-'));
  const clock = { offsetMs: 0 };
  const database = options.database ?? newDatabaseName();
  // Between `freePort` and the server's listen another process may take the port (outgoing
  // connections draw from the same range); the server then starts again on another one.
  for (let attempt = 1; ; attempt += 1) {
    const port = env.PORT === undefined ? await freePort() : Number(env.PORT);
    const config = loadConfig({
      PORT: String(port),
      HOST: '127.0.0.1',
      ISSUER: `http://127.0.0.1:${port}`,
      DATA_DIR: dataDir,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      DEMO_SEED: 'false',
      // Each test server scrapes on a free port of its own.
      METRICS_PORT: '0',
      // Tests sign in many times in a row from one address; the delay and timing tests turn
      // the delays and the failure floor on.
      SIGNIN_DELAY_BASE_MS: '0',
      SIGNIN_FAILURE_FLOOR_MS: '0',
      ...env,
    });
    const services = await openServices(
      config,
      createLogger(config.logLevel, options.log),
      `${base}${database}`,
      () => new Date(Date.now() + clock.offsetMs),
    );
    try {
      const server = await startServer(services, {
        port,
        host: '127.0.0.1',
        demo: options.demo ?? false,
      });
      return running({ config, services, server, clock, base, database, dataDir });
    } catch (error) {
      await services.close();
      const taken = /PORT: port \d+ is already in use/.test((error as Error).message);
      if (!taken || env.PORT !== undefined || attempt === 3) throw error;
    }
  }
}

/** The TestServer of a server that listens. */
function running(parts: {
  config: ReturnType<typeof loadConfig>;
  services: Services;
  server: RunningServer;
  clock: { offsetMs: number };
  base: string;
  database: string;
  dataDir: string;
}): TestServer {
  const { config, services, server, clock, base, database, dataDir } = parts;
  const shutDown = async (dropDatabase: boolean) => {
    await server.close();
    if (dropDatabase) await services.db.dropDatabase().catch(() => {});
    await services.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  return {
    issuer: config.issuer,
    databaseUri: `${base}${database}`,
    dataDir,
    services,
    server,
    clock,
    stop: () => shutDown(false),
    close: () => shutDown(true),
  };
}

/**
 * What the helpers that create data need: services on the server's database and its issuer.
 * A TestServer is one; so is a server in a process of its own (server-process.ts).
 */
export type Installation = Pick<TestServer, 'issuer' | 'services'>;

/** A database name of its own on the shared FerretDB. */
export const newDatabaseName = () => `t_${randomBytes(6).toString('hex')}`;

export interface TestAccount {
  account: Account;
  tenantId: string;
  username: string;
  password: string;
}

let tenantCounter = 0;

/** Creates a Gemeinde with a generated 8-digit key (unique within the test file's database). */
export async function createTenant(
  test: Installation,
  id = `05${String((tenantCounter += 1)).padStart(6, '0')}`,
  name = `Testkommune ${id}`,
) {
  await test.services.tenants.add({ id, name, kind: 'gemeinde', parent: null }, system);
  return { id, name };
}

/**
 * Creates an account and, unless `initial` is set, gives it a password of its own (as
 * after the first sign-in), so tests can sign in without the password-change step.
 */
export async function createAccount(
  test: Installation,
  tenantId: string,
  fields: {
    username?: string;
    permissions?: string[];
    roles?: string[];
    givenName?: string;
    familyName?: string;
    email?: string;
  } = {},
  options: { initial?: boolean } = {},
): Promise<TestAccount> {
  const username = fields.username ?? `user${randomBytes(3).toString('hex')}`;
  const { account, initialPassword } = await test.services.accounts.create(
    {
      tenantId,
      username,
      givenName: fields.givenName ?? 'Erika',
      familyName: fields.familyName ?? 'Mustermann',
      email: fields.email ?? null,
      permissions: fields.permissions ?? ['meldeverfahren', 'zahlungsmitteilungen'],
      roles: fields.roles ?? [],
    },
    system,
  );
  if (options.initial) return { account, tenantId, username, password: initialPassword };

  // A letter after the random part: "Kennwort" with only digits and signs around it is a
  // common password by the policy.
  const password = `Kennwort-${randomBytes(4).toString('hex')}x!1`;
  await test.services.accounts.changePassword(
    account._id,
    { newPassword: password, confirmation: password },
    system,
  );
  const updated = (await test.services.accounts.find(account._id))!;
  return { account: updated, tenantId, username, password };
}

export interface TestClient {
  clientId: string;
  clientSecret: string | undefined;
  redirectUri: string;
  postLogoutRedirectUri: string;
  config: oidc.Configuration;
}

/** Registers a client and returns an openid-client configuration for it. */
export async function createClient(
  test: Installation,
  options: { public?: boolean; clientId?: string; adminApi?: boolean } = {},
): Promise<TestClient> {
  const clientId = options.clientId ?? `rp-${randomBytes(4).toString('hex')}`;
  const redirectUri = 'https://rp.example.test/cb';
  const postLogoutRedirectUri = 'https://rp.example.test/logged-out';
  const { clientSecret } = await test.services.clients.add(
    {
      clientId,
      redirectUris: [redirectUri],
      postLogoutRedirectUris: [postLogoutRedirectUri],
      public: options.public ?? false,
      adminApi: options.adminApi ?? false,
    },
    system,
  );
  const auth = clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret);
  const config = await oidc.discovery(new URL(test.issuer), clientId, undefined, auth, {
    execute: [oidc.allowInsecureRequests],
  });
  return { clientId, clientSecret, redirectUri, postLogoutRedirectUri, config };
}

/** A server with one registered client and one tenant: what most test files start from. */
export async function startWithClient(env: Record<string, string> = {}) {
  const test = await startTestServer(env);
  const client = await createClient(test);
  const tenantId = (await createTenant(test)).id;
  return { test, client, tenantId };
}
