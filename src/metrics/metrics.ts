/**
 * Prometheus metrics of one server process. Every series has bounded labels: reasons are
 * the stable codes of the audit trail, routes are route names or patterns (never a raw path
 * with an interaction uid in it), grant types are the few the provider enables.
 *
 * The numbers come from the places that already decide: sign-in outcomes, locks and
 * password changes from the audit events (`audit.ts`), tokens from the provider's
 * `grant.success` event, database errors from the driver's monitoring events. Each
 * process has a registry of its own, so several servers in one process (the tests) keep
 * separate counts.
 */
import type { Context, Next } from 'koa';
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { AuditEventInput } from '../audit/trail.ts';

/**
 * Server error codes the application expects and handles, which are no database fault:
 * NamespaceNotFound (26) and NamespaceExists (48) at start-up, DuplicateKey (11000) where
 * a unique insert decides a race (leases, consumed codes).
 */
const expectedErrorCodes = new Set([26, 48, 11000]);

export class Metrics {
  readonly registry = new Registry();

  readonly #signIns = new Counter({
    name: 'flueag_sign_ins_total',
    help: 'Password checks at sign-in and re-authentication, by outcome and audit reason',
    labelNames: ['outcome', 'reason'] as const,
    registers: [this.registry],
  });

  readonly #locks = new Counter({
    name: 'flueag_account_locks_total',
    help: 'Accounts locked after consecutive failed sign-ins',
    registers: [this.registry],
  });

  readonly #passwordChanges = new Counter({
    name: 'flueag_password_changes_total',
    help: 'Passwords set: changed by the account holder, or reset to a one-time password',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly #tokensIssued = new Counter({
    name: 'flueag_tokens_issued_total',
    help: 'Successful token endpoint responses, by grant type',
    labelNames: ['grant_type'] as const,
    registers: [this.registry],
  });

  readonly #httpDuration = new Histogram({
    name: 'flueag_http_request_duration_seconds',
    help: 'HTTP request duration, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    // A sign-in costs one argon2 verification (tens of milliseconds); the upper buckets show
    // waiting for the hashing queue or for a lease.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly #hashingQueueDepth = new Gauge({
    name: 'flueag_password_hashing_queue_depth',
    help: 'Password hashing operations waiting for a hashing slot',
    registers: [this.registry],
  });

  readonly #databaseErrors = new Counter({
    name: 'flueag_database_errors_total',
    help: 'Failed database commands and failed server heartbeats, by operation',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Present from the start, so that a rate over them is defined before the first event.
    this.#hashingQueueDepth.set(0);
    this.#locks.inc(0);
  }

  /** Counts what an audit event reports; other actions are not metrics. */
  observeAuditEvent(event: AuditEventInput): void {
    if (event.action === 'login') {
      this.#signIns.inc({ outcome: event.outcome, reason: event.reason ?? 'none' });
    } else if (event.action === 'account.locked') {
      this.#locks.inc();
    } else if (event.action === 'password.changed') {
      this.#passwordChanges.inc({ kind: 'changed' });
    } else if (event.action === 'password.reset') {
      this.#passwordChanges.inc({ kind: 'reset' });
    }
  }

  /** For the password hashing queue: how many operations wait right now. */
  setHashingQueueDepth(depth: number): void {
    this.#hashingQueueDepth.set(depth);
  }

  /** Counts issued tokens from the provider's `grant.success` event (docs/events.md). */
  observeProvider(provider: Provider): void {
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const grantType = ctx.oidc?.params?.grant_type;
      this.#tokensIssued.inc({ grant_type: typeof grantType === 'string' ? grantType : 'unknown' });
    });
  }

  /**
   * Counts failed commands and heartbeats of the driver. Needs `monitorCommands` on the
   * client (db/connection.ts); errors the application expects are left out.
   */
  observeDatabase(connection: Connection): void {
    const client = connection.getClient();
    client.on('commandFailed', (event) => {
      const code = (event.failure as { code?: unknown }).code;
      if (typeof code === 'number' && expectedErrorCodes.has(code)) return;
      this.#databaseErrors.inc({ operation: event.commandName });
    });
    client.on('serverHeartbeatFailed', () => this.#databaseErrors.inc({ operation: 'heartbeat' }));
  }

  /**
   * Koa middleware timing each request. Mounted first, so the duration covers everything,
   * and the status is the one sent, after our error pages.
   */
  httpMiddleware() {
    return async (ctx: Context, next: Next) => {
      const stop = this.#httpDuration.startTimer();
      try {
        await next();
      } finally {
        stop({ method: methodLabel(ctx.method), route: routeLabel(ctx), status: ctx.status });
      }
    };
  }
}

const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const methodLabel = (method: string) => (knownMethods.has(method) ? method : 'other');

/** The provider's route name, else our router's pattern, else `unmatched` (a 404). */
function routeLabel(ctx: Context): string {
  const oidcRoute = (ctx as Partial<KoaContextWithOIDC>).oidc?.route;
  if (typeof oidcRoute === 'string' && oidcRoute) return oidcRoute;
  const routed = ctx as Context & {
    _matchedRoute?: unknown;
    matched?: { path: unknown; methods: string[] }[];
  };
  const pattern = routed._matchedRoute;
  if (typeof pattern === 'string' && pattern.startsWith('/')) return pattern;
  // A path-less middleware of a router (`router.use(fn)`) that the route's router passes
  // through leaves a regular expression of its own there, e.g. `(?:\/|$)`; the route
  // itself is the last matched layer that answers the method.
  const route = routed.matched?.findLast(
    (layer) =>
      layer.methods.includes(ctx.method) &&
      typeof layer.path === 'string' &&
      layer.path.startsWith('/'),
  );
  return typeof route?.path === 'string' ? route.path : 'unmatched';
}
