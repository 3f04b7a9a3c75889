/**
 * Which account holds a username in a tenant, kept as one small document per name in
 * `usernames`, whose `_id` is `<tenant id>/<username key>`. The sign-in finds its account
 * through it by `_id` alone: FerretDB 1.24 hands only such a filter to SQLite, and a query on
 * (tenantId, usernameKey) reads and decodes every account of every tenant (MongoDB answers
 * both from an index).
 *
 * The account stays the source of truth and its unique index on (tenantId, usernameKey)
 * the guard against two holders. An entry is written after its account, in a second
 * single-document write: a crash in between leaves an account without entry, which the
 * query on the accounts finds, and the entry is written then. Whoever follows an entry
 * checks that the account it names holds the name; one that does not (an account removed
 * by hand) is looked up afresh the same way. A name that nobody holds has no entry and is
 * looked up by that query too, so on FerretDB an unknown name still reads every account.
 */
import type { Collection, Db } from 'mongodb';

import type { Account, AccountModel } from './model.ts';

/** A username in a tenant: the tenant's id and the normalised name (normalize.ts). */
export interface HeldName {
  tenantId: string;
  usernameKey: string;
}

interface UsernameEntry {
  _id: string;
  accountId: string;
}

/** Tenant ids are `[a-z0-9_-]` (validation.ts), so the slash separates unambiguously. */
const entryId = (name: HeldName) => `${name.tenantId}/${name.usernameKey}`;

/** True when `account` is the holder of `name`. */
export const holds = (account: Pick<Account, 'tenantId' | 'usernameKey'>, name: HeldName) =>
  account.tenantId === name.tenantId && account.usernameKey === name.usernameKey;

export class UsernameIndex {
  readonly #entries: Collection<UsernameEntry>;
  readonly #accounts: AccountModel;

  constructor(db: Db, accounts: AccountModel) {
    this.#entries = db.collection<UsernameEntry>('usernames');
    this.#accounts = accounts;
  }

  /**
   * Enters the name of a stored account, replacing a wrong entry. Inserted first: FerretDB
   * answers an update, also one by `_id`, by reading every row, an insert by its index.
   */
  async record(account: Pick<Account, '_id' | 'tenantId' | 'usernameKey'>): Promise<void> {
    const _id = entryId(account);
    try {
      await this.#entries.insertOne({ _id, accountId: account._id });
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      await this.#entries.updateOne({ _id }, { $set: { accountId: account._id } });
    }
  }

  /** Enters the names of accounts stored together, none of which has an entry yet. */
  async recordMany(accounts: Array<Pick<Account, '_id' | 'tenantId' | 'usernameKey'>>) {
    if (accounts.length === 0) return;
    await this.#entries.insertMany(
      accounts.map((account) => ({ _id: entryId(account), accountId: account._id })),
    );
  }

  /**
   * The id of the account the entry of `name` names, or of the holder the accounts show when
   * there is no entry. The caller checks that the account holds the name (`holds`) and
   * calls `search` when it does not.
   */
  async accountId(name: HeldName): Promise<string | undefined> {
    const entry = await this.#entries.findOne({ _id: entryId(name) });
    return entry?.accountId ?? (await this.search(name))?._id;
  }

  /**
   * The holder of `name` as the accounts show it, read by the query on (tenantId,
   * usernameKey); its entry is written on the way, and a wrong one (`stale`) is removed
   * when nobody holds the name.
   */
  async search(name: HeldName, stale = false): Promise<Account | null> {
    const holder = await this.#accounts.findOne(name).lean();
    if (holder) await this.record(holder);
    else if (stale) await this.#entries.deleteOne({ _id: entryId(name) });
    return holder;
  }

  /** The account that holds `name`, or null. */
  async find(name: HeldName): Promise<Account | null> {
    const entry = await this.#entries.findOne({ _id: entryId(name) });
    const named = entry ? await this.#accounts.findById(entry.accountId).lean() : null;
    if (named && holds(named, name)) return named;
    return this.search(name, entry !== null);
  }
}
