/**
 * Reading a tenant's audit trail for its admins: newest first, filtered by account and
 * action, a page at a time or all of it for the CSV export.
 */
import { Types } from 'mongoose';

import type { AccountModel } from '../accounts/model.ts';
import type { AuditEvent, AuditModel } from './trail.ts';

export interface AuditFilter {
  /** The account the event is about: its id, or a username as typed at a failed sign-in. */
  accountId?: string | undefined;
  username?: string | undefined;
  action?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
  /** The id of the event after which the page starts (older than it). */
  before?: string | undefined;
  limit?: number | undefined;
}

/** An event as the trail shows it, with the acting person's username resolved. */
export interface AuditEntry {
  id: string;
  at: Date;
  action: string;
  outcome: 'success' | 'failure';
  reason: string | null;
  actor: { kind: string; accountId: string | null; username: string | null; operator: boolean };
  target: { accountId: string | null; username: string | null; clientId: string | null };
  details: Record<string, unknown> | null;
  ip: string | null;
  requestId: string | null;
}

const PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;

/** The actions a tenant's trail can hold, for the filter of the audit page. */
export const tenantActions = [
  'login',
  'account.locked',
  'account.unlocked',
  'account.created',
  'account.renamed',
  'account.permission_granted',
  'account.permission_withdrawn',
  'account.role_granted',
  'account.role_withdrawn',
  'account.deactivated',
  'account.reactivated',
  'account.retired',
  'account.sessions_ended',
  'password.changed',
  'password.reset',
  'grant.revoked',
  'token.revoked',
  'logout',
] as const;

export class AuditQuery {
  readonly #events: AuditModel;
  readonly #accounts: AccountModel;

  constructor(events: AuditModel, accounts: AccountModel) {
    this.#events = events;
    this.#accounts = accounts;
  }

  /** One page of the tenant's events, newest first; `next` is the `before` of the next page. */
  async page(
    tenantId: string,
    filter: AuditFilter,
  ): Promise<{ entries: AuditEntry[]; next: string | null }> {
    const limit = Math.min(Math.max(filter.limit ?? PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const query = this.#query(tenantId, filter);
    if (filter.before !== undefined) {
      if (!Types.ObjectId.isValid(filter.before)) return { entries: [], next: null };
      query._id = { $lt: new Types.ObjectId(filter.before) };
    }
    const events = await this.#events
      .find(query)
      .sort({ _id: -1 })
      .limit(limit + 1)
      .lean();
    const page = events.slice(0, limit);
    return {
      entries: await this.#entries(page),
      next: events.length > limit ? String(page.at(-1)?._id) : null,
    };
  }

  /** Every matching event, newest first, in batches (for the CSV export). */
  async *all(tenantId: string, filter: AuditFilter): AsyncGenerator<AuditEntry> {
    let before: string | undefined;
    for (;;) {
      const { entries, next } = await this.page(tenantId, { ...filter, before, limit: 500 });
      yield* entries;
      if (next === null) return;
      before = next;
    }
  }

  #query(tenantId: string, filter: AuditFilter): Record<string, unknown> {
    const query: Record<string, unknown> = { tenantId };
    if (filter.action) query.action = filter.action;
    if (filter.outcome) query.outcome = filter.outcome;
    const about = [
      ...(filter.accountId ? [{ 'target.accountId': filter.accountId }] : []),
      ...(filter.username ? [{ 'target.username': filter.username }] : []),
    ];
    if (about.length > 0) query.$or = about;
    return query;
  }

  async #entries(events: AuditEvent[]): Promise<AuditEntry[]> {
    const actorIds = [
      ...new Set(
        events.map((event) => event.actor?.accountId).filter((id) => typeof id === 'string'),
      ),
    ];
    const actors = actorIds.length
      ? await this.#accounts.find({ _id: { $in: actorIds } }, { username: 1 }).lean()
      : [];
    const usernames = new Map(actors.map((account) => [account._id, account.username]));

    return events.map((event) => ({
      id: String(event._id),
      at: event.at,
      action: event.action,
      outcome: event.outcome,
      reason: event.reason ?? null,
      actor: {
        kind: event.actor?.kind ?? 'system',
        accountId: event.actor?.accountId ?? null,
        username: usernames.get(event.actor?.accountId ?? '') ?? null,
        operator: event.actor?.operator === true,
      },
      target: {
        accountId: event.target?.accountId ?? null,
        username: event.target?.username ?? null,
        clientId: event.target?.clientId ?? null,
      },
      details: event.details ?? null,
      ip: event.ip ?? null,
      requestId: event.requestId ?? null,
    }));
  }
}
