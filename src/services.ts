/**
 * The composition root of the domain: database connection, models and services, shared by
 * the server, the CLI and the tests.
 */
import type { Connection } from 'mongoose';
import type { Db } from 'mongodb';

import { FailureFloor } from './accounts/failure-floor.ts';
import { loginFailureModel } from './accounts/lockout.ts';
import { accountModel } from './accounts/model.ts';
import { PasswordHasher } from './accounts/passwords.ts';
import { AccountService } from './accounts/service.ts';
import { SignIn } from './accounts/sign-in.ts';
import { SignInThrottle } from './accounts/throttle.ts';
import { UsernameIndex } from './accounts/usernames.ts';
import { AdminService } from './admin/service.ts';
import { AuditQuery } from './audit/query.ts';
import { auditModel, type AuditTrail } from './audit/trail.ts';
import type { Config } from './config.ts';
import { ConsoleSessions } from './console/sessions.ts';
import { connect, ping } from './db/connection.ts';
import {
  EmbeddedDatabaseError,
  openEmbeddedDatabase,
  type EmbeddedDatabase,
  type Role,
} from './db/embedded.ts';
import { Leases } from './db/leases.ts';
import { isUnreachableDatabase } from './failures.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Logger } from './log.ts';
import { MeteredAuditTrail } from './metrics/audit.ts';
import { Metrics } from './metrics/metrics.ts';
import { createAdapterIndexes } from './oidc/adapter.ts';
import { ClientRegistry } from './oidc/clients.ts';
import { loadKeyMaterial, type KeyMaterial } from './oidc/keys.ts';
import { ProviderAccessRevoker } from './oidc/revocation.ts';
import { TenantDirectory } from './tenants/directory.ts';
import { tenantModel } from './tenants/model.ts';

export interface Services {
  config: Config;
  log: Logger;
  connection: Connection;
  db: Db;
  keys: KeyMaterial;
  audit: AuditTrail;
  tenants: TenantDirectory;
  accounts: AccountService;
  signIn: SignIn;
  admin: AdminService;
  auditQuery: AuditQuery;
  consoleSessions: ConsoleSessions;
  clients: ClientRegistry;
  hasher: PasswordHasher;
  now: () => Date;
  /** This process's metrics; the hashing queue sets its depth here. */
  metrics: Metrics;
  databaseReady(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Opens the configured database (the embedded FerretDB of the data directory unless
 * `MONGODB_URI` is set) and the services on it; `lifecycle` closes both.
 */
export async function openConfiguredServices(
  config: Config,
  log: Logger,
  lifecycle: Lifecycle,
  role: Role,
): Promise<Services> {
  if (config.mongodbUri !== undefined)
    return lifecycle.open(openServices(config, log, config.mongodbUri), (services) =>
      services.close(),
    );

  const database = await lifecycle.open(openEmbeddedDatabase(config.dataDir, role), (opened) =>
    opened.release(),
  );
  void database.lost.then((exit) => stopOnLostDatabase(exit, log, lifecycle));
  const services = openServices(config, log, database.uri).catch((error: unknown) => {
    // The failure is about the embedded FerretDB, not about a MONGODB_URI nobody set.
    if (isUnreachableDatabase(error))
      throw new EmbeddedDatabaseError(
        `cannot reach the embedded database of ${config.dataDir} (FerretDB at ${database.uri}): ${(error as Error).message}`,
      );
    throw error;
  });
  return lifecycle.open(services, (opened) => opened.close());
}

/**
 * The embedded FerretDB is a child of this process, and nothing else would start it again:
 * a process that kept running without it would answer 503 forever while `/healthz` says
 * 200. So it stops with status 1 (closing the HTTP server first), for the service manager
 * to start it anew with a fresh FerretDB on the same files.
 */
function stopOnLostDatabase(
  exit: Awaited<EmbeddedDatabase['lost']>,
  log: Logger,
  lifecycle: Lifecycle,
): void {
  // A Ctrl-C or a service manager's stop reaches FerretDB too; that is no failure.
  if (lifecycle.stopping) return;
  log.error(
    {
      event: 'database.embedded_exited',
      ferretdb_pid: exit.pid,
      exit_code: exit.code,
      signal: exit.signal,
      ferretdb_log: exit.logFile,
    },
    'the embedded FerretDB exited; stopping',
  );
  void lifecycle.exit(1);
}

/** Connects to `uri`, creates indexes and wires the services. */
export async function openServices(
  config: Config,
  log: Logger,
  uri: string,
  now: () => Date = () => new Date(),
): Promise<Services> {
  const keys = await loadKeyMaterial(config.keysFile, !config.keysFileRequired);
  const connection = await connect(uri);
  try {
    return await wire(config, log, connection, keys, now);
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }
}

async function wire(
  config: Config,
  log: Logger,
  connection: Connection,
  keys: KeyMaterial,
  now: () => Date,
): Promise<Services> {
  const db = connection.db!;

  const models = {
    accounts: accountModel(connection),
    tenants: tenantModel(connection),
    audit: auditModel(connection),
    loginFailures: loginFailureModel(connection),
  };
  for (const model of Object.values(models)) {
    await model.createCollection().catch(() => {});
    await model.createIndexes();
  }
  await createAdapterIndexes(db);
  await ConsoleSessions.createIndexes(db);

  const metrics = new Metrics();
  metrics.observeDatabase(connection);
  const audit: AuditTrail = new MeteredAuditTrail(metrics, models.audit, log, now);
  const leases = new Leases(db);
  const tenants = new TenantDirectory(models.tenants, audit);
  const hasher = new PasswordHasher(
    config.argon2,
    Buffer.from(keys.fingerprintKey, 'base64url'),
    config.hashQueue,
    (depth) => metrics.setHashingQueueDepth(depth),
  );
  const throttle = new SignInThrottle(db, config.throttle, now);
  await throttle.createIndexes();
  const usernames = new UsernameIndex(db, models.accounts);
  const accounts = new AccountService({
    accounts: models.accounts,
    usernames,
    leases,
    tenants,
    hasher,
    audit,
    revoker: new ProviderAccessRevoker(db),
    throttle,
    password: config.password,
    lockout: config.lockout,
    now,
  });
  const signIn = new SignIn({
    accounts: models.accounts,
    usernames,
    leases,
    loginFailures: models.loginFailures,
    throttle,
    failureFloor: new FailureFloor({ baseMs: config.failureFloorMs }),
    tenants,
    hasher,
    audit,
    lockout: config.lockout,
    now,
  });

  const admin = new AdminService({
    accounts,
    accountModel: models.accounts,
    tenantModel: models.tenants,
    tenants,
    leases,
    lockout: config.lockout,
    now,
  });

  return {
    config,
    log,
    connection,
    db,
    keys,
    audit,
    tenants,
    accounts,
    signIn,
    admin,
    auditQuery: new AuditQuery(models.audit, models.accounts),
    consoleSessions: new ConsoleSessions(
      db,
      // The limits of the sign-in session (BSI ORP.4, OWASP ASVS 5.0 7.3.1 and 7.3.2).
      { absoluteMs: config.ttl.session * 1000, idleMs: config.ttl.sessionIdle * 1000 },
      now,
    ),
    clients: new ClientRegistry(db, audit),
    hasher,
    now,
    metrics,
    databaseReady: () => ping(connection),
    close: () => connection.close(),
  };
}
