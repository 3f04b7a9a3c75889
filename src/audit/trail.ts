/**
 * The audit trail: append-only events of every admin and security action. Writing goes
 * through `record` only; nothing updates or deletes an event except retention. Events are
 * chained by hash per tenant (chain.ts), so `verify` notices an edited or deleted one.
 */
import type { Collection } from 'mongodb';
import { Schema, Types, type Connection, type Model } from 'mongoose';

import type { Logger } from '../log.ts';
import {
  appendLinked,
  chainKey,
  purgeLinked,
  verifyAllChains,
  verifyChain,
  type ChainLink,
  type ChainReport,
  type ChainStore,
} from './chain.ts';

export type Outcome = 'success' | 'failure';

export interface AuditActor {
  kind: 'account' | 'client' | 'cli' | 'system' | 'anonymous';
  accountId?: string | null;
  /** The relying party that acted (revoked a token, presented a reused code). */
  clientId?: string | null;
  tenantId?: string | null;
  /** Set when an operator acts on a tenant that is not their own. */
  operator?: boolean;
}

export interface AuditTarget {
  accountId?: string | null;
  username?: string | null;
  clientId?: string | null;
  tenantId?: string | null;
}

/** What a caller knows about the request an event comes from. */
export interface RequestContext {
  requestId?: string | undefined;
  ip?: string | undefined;
  actor: AuditActor;
}

export interface AuditEventInput {
  tenantId: string | null;
  action: string;
  outcome: Outcome;
  target?: AuditTarget;
  /** The precise reason of a failure, e.g. `wrong_password` or `unknown_account`. */
  reason?: string;
  details?: Record<string, unknown>;
}

export interface AuditEvent extends AuditEventInput {
  _id: Types.ObjectId;
  at: Date;
  actor: AuditActor;
  requestId: string | null;
  ip: string | null;
  /** Absent on events recorded before the chain existed. */
  chain?: ChainLink;
}

const auditSchema = new Schema<AuditEvent>(
  {
    at: { type: Date, required: true },
    tenantId: { type: String, default: null },
    actor: { type: Schema.Types.Mixed, required: true },
    action: { type: String, required: true },
    outcome: { type: String, required: true, enum: ['success', 'failure'] },
    target: { type: Schema.Types.Mixed, default: {} },
    reason: { type: String },
    details: { type: Schema.Types.Mixed },
    requestId: { type: String, default: null },
    ip: { type: String, default: null },
    chain: { type: Schema.Types.Mixed },
  },
  { collection: 'audit_events', versionKey: false, minimize: false },
);

auditSchema.index({ tenantId: 1, at: -1 });
auditSchema.index({ 'target.accountId': 1, at: -1 });
// Of two writers appending the same position of a chain, exactly one wins (chain.ts).
// Sparse, so that events from before the chain do not collide.
auditSchema.index({ 'chain.key': 1, 'chain.seq': 1 }, { unique: true, sparse: true });

export type AuditModel = Model<AuditEvent>;

export const auditModel = (connection: Connection): AuditModel =>
  (connection.models.AuditEvent as AuditModel | undefined) ??
  connection.model<AuditEvent>('AuditEvent', auditSchema);

export class AuditTrail {
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #chain: ChainStore;

  constructor(model: AuditModel, log: Logger, now: () => Date = () => new Date()) {
    this.#log = log;
    this.#now = now;
    const db = model.db.db!;
    this.#chain = {
      events: model.collection as unknown as Collection,
      heads: db.collection('audit_chain_heads'),
      positions: db.collection('audit_chain'),
    };
  }

  /** Appends one event and writes the matching security log line. */
  async record(context: RequestContext, event: AuditEventInput): Promise<void> {
    const at = this.#now();
    const link = await appendLinked(this.#chain, {
      _id: new Types.ObjectId(),
      at,
      tenantId: event.tenantId,
      actor: context.actor,
      action: event.action,
      outcome: event.outcome,
      target: event.target ?? {},
      ...(event.reason === undefined ? {} : { reason: event.reason }),
      ...(event.details === undefined ? {} : { details: event.details }),
      requestId: context.requestId ?? null,
      ip: context.ip ?? null,
    });
    this.#log.info(
      {
        event: event.action,
        outcome: event.outcome,
        reason: event.reason,
        tenant_id: event.tenantId,
        account_id: event.target?.accountId ?? undefined,
        actor_id: context.actor.accountId ?? undefined,
        request_id: context.requestId,
        // Shipped logs keep the chain's positions outside the database: an anchor against
        // rewriting the whole chain.
        chain_seq: link.seq,
        chain_hash: link.hash,
      },
      `audit: ${event.action} ${event.outcome}`,
    );
  }

  /** Deletes events older than the retention period; returns how many went. */
  async purgeOlderThan(days: number): Promise<number> {
    const cutoff = new Date(this.#now().getTime() - days * 86_400_000);
    return purgeLinked(this.#chain, cutoff);
  }

  /** Checks the chain of one tenant (`null`: events without tenant), or of every chain. */
  async verify(tenantId?: string | null): Promise<ChainReport[]> {
    if (tenantId === undefined) return verifyAllChains(this.#chain);
    return [await verifyChain(this.#chain, chainKey(tenantId))];
  }
}
