/**
 * What local admins and operators may do to accounts (design sections 1 and 3.5), for the
 * admin pages and the JSON API alike. Every method takes the acting administrator first:
 * a local admin reaches only the accounts of their own tenant, and an account of another
 * tenant is "not found", never "forbidden", so ids of other tenants reveal nothing. An
 * operator reaches every tenant, and the audit trail marks each of their actions.
 */
import type { Account, AccountState, Permission } from '../accounts/model.ts';
import { permissions as allPermissions } from '../accounts/model.ts';
import type { AccountModel } from '../accounts/model.ts';
import { isLocked, type LockoutSettings } from '../accounts/lockout.ts';
import type { AccountService } from '../accounts/service.ts';
import type { RequestContext } from '../audit/trail.ts';
import type { Leases } from '../db/leases.ts';
import { AppError, conflict, notFound, ValidationError } from '../errors.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import type { Tenant, TenantModel } from '../tenants/model.ts';

/** The states an administrator sees; `locked` is an active account after five failures. */
export const visibleStates = ['active', 'locked', 'deactivated', 'retired'] as const;
export type VisibleState = (typeof visibleStates)[number];

/** The person acting in the admin UI or API, loaded fresh for every request. */
export interface Administrator {
  account: Account;
  /** An operator of the platform: may act in every tenant, marked so in the audit trail. */
  operator: boolean;
}

/** Where a request came from, for the audit trail. */
export interface RequestOrigin {
  requestId?: string | undefined;
  ip?: string | undefined;
}

export interface AccountQuery {
  /** Part of the username, given or family name. */
  search?: string | undefined;
  state?: VisibleState | undefined;
  permission?: Permission | undefined;
  localAdmin?: boolean | undefined;
  /** The username key after which the page starts (keyset paging). */
  after?: string | undefined;
  limit?: number | undefined;
}

export interface AccountPage {
  accounts: AccountSummary[];
  /** The `after` of the next page; null on the last page. */
  next: string | null;
  total: number;
}

/** An account as lists show it: no password material. */
export interface AccountSummary {
  id: string;
  username: string;
  givenName: string;
  familyName: string;
  email: string | null;
  state: VisibleState;
  permissions: Permission[];
  localAdmin: boolean;
  lastLoginAt: Date | null;
}

/** One account in full, as its admin page and the API show it. */
export interface AccountDetail extends AccountSummary {
  tenantId: string;
  operator: boolean;
  lockedAt: Date | null;
  failedAttempts: number;
  passwordChangedAt: Date;
  passwordExpiresAt: Date;
  /** True while the one-time password of an admin has not been replaced. */
  initialPassword: boolean;
  initialPasswordExpiresAt: Date | null;
  nameHistory: Array<{
    givenName: string;
    familyName: string;
    changedAt: Date;
    changedBy: string | null;
  }>;
  createdAt: Date;
}

interface AdminServiceDeps {
  accounts: AccountService;
  accountModel: AccountModel;
  tenantModel: TenantModel;
  tenants: TenantDirectory;
  leases: Leases;
  lockout: LockoutSettings;
  now: () => Date;
}

const PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;
const MIN_ACTIVE_ADMINS = 2;

/** True when `account` may use the admin UI and API. */
export function mayAdminister(account: Account): boolean {
  return account.roles.includes('local_admin') || account.roles.includes('operator');
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class AdminService {
  readonly #deps: AdminServiceDeps;

  constructor(deps: AdminServiceDeps) {
    this.#deps = deps;
  }

  /**
   * The administrator `account` acts as: 403 without the role, and 403 while locked, so a
   * lock that leaves sessions open (design section 2) does not leave admin powers with
   * them, not even to lift the lock itself.
   */
  actingAdministrator(account: Account): Administrator {
    if (!mayAdminister(account)) throw new AppError(403, 'admin.not_allowed');
    if (isLocked(account.lockout, this.#deps.lockout, this.#deps.now()))
      throw new AppError(403, 'admin.locked');
    return { account, operator: account.roles.includes('operator') };
  }

  /** The tenants `admin` may manage, by name: all for an operator, else their own. */
  async tenantsOf(admin: Administrator): Promise<Tenant[]> {
    if (!admin.operator) {
      const own = await this.#deps.tenants.find(admin.account.tenantId);
      return own ? [own] : [];
    }
    return this.#deps.tenantModel.find().sort({ nameKey: 1 }).lean();
  }

  /** The tenant `tenantId` if `admin` may manage it; otherwise 404. */
  async tenant(admin: Administrator, tenantId: string): Promise<Tenant> {
    if (!admin.operator && tenantId !== admin.account.tenantId)
      throw notFound('tenant.not_found', `tenant ${tenantId} is not the admin's`);
    const tenant = await this.#deps.tenants.find(tenantId);
    if (!tenant) throw notFound('tenant.not_found', `tenant ${tenantId}`);
    return tenant;
  }

  /** How many local admins of the tenant can act now: active, not locked. */
  async activeLocalAdmins(tenantId: string): Promise<number> {
    const admins = await this.#deps.accountModel
      .find({ tenantId, roles: 'local_admin', state: 'active' }, { lockout: 1 })
      .lean();
    const now = this.#deps.now();
    return admins.filter((admin) => !isLocked(admin.lockout, this.#deps.lockout, now)).length;
  }

  /** True while the tenant has fewer than two local admins who can act (the banner). */
  async needsMoreAdmins(tenantId: string): Promise<boolean> {
    return (await this.activeLocalAdmins(tenantId)) < MIN_ACTIVE_ADMINS;
  }

  /** One page of the tenant's accounts, ordered by username. */
  async list(admin: Administrator, tenantId: string, query: AccountQuery): Promise<AccountPage> {
    await this.tenant(admin, tenantId);
    const filter = this.#filter(tenantId, query);
    const limit = Math.min(Math.max(query.limit ?? PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const pageFilter =
      query.after === undefined ? filter : { ...filter, usernameKey: { $gt: query.after } };

    const [rows, total] = await Promise.all([
      this.#deps.accountModel
        .find(pageFilter, summaryProjection)
        .sort({ usernameKey: 1 })
        .limit(limit + 1)
        .lean(),
      this.#deps.accountModel.countDocuments(filter),
    ]);
    const page = rows.slice(0, limit);
    return {
      accounts: page.map((account) => this.#summary(account as Account)),
      next: rows.length > limit ? (page.at(-1)?.usernameKey ?? null) : null,
      total,
    };
  }

  /** The account `accountId` if `admin` may manage it; otherwise 404. */
  async account(admin: Administrator, accountId: string): Promise<AccountDetail> {
    return this.#detail(await this.#target(admin, accountId));
  }

  /** The account of `username` in a tenant `admin` may manage, if there is one. */
  async accountByUsername(
    admin: Administrator,
    tenantId: string,
    username: string,
  ): Promise<AccountDetail | undefined> {
    await this.tenant(admin, tenantId);
    const account = await this.#deps.accounts.findByUsername(tenantId, username);
    return account ? this.#detail(account) : undefined;
  }

  async create(
    admin: Administrator,
    tenantId: string,
    input: {
      username?: unknown;
      givenName?: unknown;
      familyName?: unknown;
      email?: unknown;
      permissions?: unknown;
      localAdmin?: unknown;
    },
    origin: RequestOrigin,
  ): Promise<{ account: AccountDetail; initialPassword: string }> {
    await this.tenant(admin, tenantId);
    if (input.localAdmin !== undefined && typeof input.localAdmin !== 'boolean')
      throw new ValidationError({ localAdmin: ['local_admin.invalid'] });
    const { account, initialPassword } = await this.#deps.accounts.create(
      {
        tenantId,
        username: input.username,
        givenName: input.givenName,
        familyName: input.familyName,
        email: input.email === '' ? null : (input.email ?? null),
        permissions: input.permissions ?? [],
        roles: input.localAdmin === true ? ['local_admin'] : [],
      },
      this.#context(admin, origin),
    );
    return { account: this.#detail(account), initialPassword };
  }

  async rename(
    admin: Administrator,
    accountId: string,
    input: { givenName?: unknown; familyName?: unknown },
    origin: RequestOrigin,
  ): Promise<AccountDetail> {
    const target = await this.#target(admin, accountId);
    return this.#detail(
      await this.#deps.accounts.rename(target._id, input, this.#context(admin, origin)),
    );
  }

  /** Sets the permissions; withdrawing one revokes the account's grants at once. */
  async setPermissions(
    admin: Administrator,
    accountId: string,
    wanted: unknown,
    origin: RequestOrigin,
  ): Promise<AccountDetail> {
    if (!Array.isArray(wanted) || wanted.some((p) => !allPermissions.includes(p as Permission)))
      throw new ValidationError({ permissions: ['permission.unknown'] });
    const target = await this.#target(admin, accountId);
    await this.#deps.accounts.setPermissions(
      target._id,
      wanted as Permission[],
      this.#context(admin, origin),
    );
    return this.account(admin, accountId);
  }

  async grantLocalAdmin(
    admin: Administrator,
    accountId: string,
    origin: RequestOrigin,
  ): Promise<AccountDetail> {
    const target = await this.#target(admin, accountId);
    if (target.state === 'retired') throw new AppError(409, 'account.retired');
    await this.#deps.accounts.addRole(target._id, 'local_admin', this.#context(admin, origin));
    return this.account(admin, accountId);
  }

  /** Withdraws the local-admin role, unless that leaves the tenant without an active one. */
  async withdrawLocalAdmin(
    admin: Administrator,
    accountId: string,
    origin: RequestOrigin,
  ): Promise<AccountDetail> {
    const target = await this.#target(admin, accountId);
    await this.#keepingAnAdmin(admin, target, () =>
      this.#deps.accounts.removeRole(target._id, 'local_admin', this.#context(admin, origin)),
    );
    return this.account(admin, accountId);
  }

  /** Deactivates, reactivates or retires; see the two-admin rule in `#keepingAnAdmin`. */
  async setState(
    admin: Administrator,
    accountId: string,
    state: AccountState,
    origin: RequestOrigin,
  ): Promise<AccountDetail> {
    const target = await this.#target(admin, accountId);
    const change = () =>
      this.#deps.accounts.setState(target._id, state, this.#context(admin, origin));
    return this.#detail(
      state === 'active' ? await change() : await this.#keepingAnAdmin(admin, target, change),
    );
  }

  /** Lifts a lock; false when the account was not locked. */
  async unlock(admin: Administrator, accountId: string, origin: RequestOrigin): Promise<boolean> {
    const target = await this.#target(admin, accountId);
    return this.#deps.accounts.unlock(target._id, this.#context(admin, origin));
  }

  /** Issues a new one-time password for a person who forgot theirs (shown once). */
  async resetPassword(
    admin: Administrator,
    accountId: string,
    origin: RequestOrigin,
  ): Promise<{ account: AccountDetail; initialPassword: string }> {
    const target = await this.#target(admin, accountId);
    if (target.state !== 'active') throw new AppError(409, 'account.not_active');
    const { initialPassword } = await this.#deps.accounts.resetPassword(
      target._id,
      this.#context(admin, origin),
    );
    return { account: await this.account(admin, accountId), initialPassword };
  }

  async endSessions(admin: Administrator, accountId: string, origin: RequestOrigin): Promise<void> {
    const target = await this.#target(admin, accountId);
    await this.#deps.accounts.endSessions(target._id, this.#context(admin, origin));
  }

  /** The audit context of an administrator's action; operators are marked. */
  context(admin: Administrator, origin: RequestOrigin): RequestContext {
    return this.#context(admin, origin);
  }

  #context(admin: Administrator, origin: RequestOrigin): RequestContext {
    return {
      requestId: origin.requestId,
      ip: origin.ip,
      actor: {
        kind: 'account',
        accountId: admin.account._id,
        tenantId: admin.account.tenantId,
        ...(admin.operator ? { operator: true } : {}),
      },
    };
  }

  async #target(admin: Administrator, accountId: string): Promise<Account> {
    const account =
      typeof accountId === 'string' ? await this.#deps.accounts.find(accountId) : null;
    if (!account || (!admin.operator && account.tenantId !== admin.account.tenantId))
      throw notFound('account.not_found', `account ${accountId} not reachable for the admin`);
    return account;
  }

  /**
   * Runs a change that may take a local admin away (withdrawing the role, deactivating,
   * retiring) under the tenant's admin lease, so that two admins removing each other at the
   * same moment are serialised: the second one finds itself removed, or the target the last.
   * Only an operator may remove the last active local admin of a tenant.
   */
  async #keepingAnAdmin<T>(admin: Administrator, target: Account, change: () => Promise<T>) {
    return this.#deps.leases.run(`tenant-admins:${target.tenantId}`, async () => {
      const actor = await this.#deps.accounts.find(admin.account._id);
      if (!actor || actor.state !== 'active' || !mayAdminister(actor))
        throw new AppError(403, 'admin.removed_meanwhile', {
          detail: 'the admin was removed meanwhile',
        });

      const stored = await this.#deps.accounts.find(target._id);
      if (stored && !admin.operator && this.#isActiveLocalAdmin(stored)) {
        if ((await this.activeLocalAdmins(target.tenantId)) <= 1)
          throw conflict('admins.last_admin', `tenant ${target.tenantId}`);
      }
      return change();
    });
  }

  #isActiveLocalAdmin(account: Account): boolean {
    return (
      account.roles.includes('local_admin') &&
      account.state === 'active' &&
      !isLocked(account.lockout, this.#deps.lockout, this.#deps.now())
    );
  }

  #filter(tenantId: string, query: AccountQuery): Record<string, unknown> {
    const filter: Record<string, unknown> = { tenantId };
    const clauses: Record<string, unknown>[] = [];
    const lockedSince = this.#lockedSince();
    if (query.state === 'active') {
      filter.state = 'active';
      clauses.push({
        $or: [{ 'lockout.lockedAt': null }, { 'lockout.lockedAt': { $lt: lockedSince } }],
      });
    } else if (query.state === 'locked') {
      filter.state = 'active';
      filter['lockout.lockedAt'] = { $ne: null, $gte: lockedSince };
    } else if (query.state) {
      filter.state = query.state;
    }
    if (query.permission) filter.permissions = query.permission;
    if (query.localAdmin) filter.roles = 'local_admin';

    const search = query.search?.normalize('NFC').trim();
    if (search) {
      const pattern = { $regex: escapeRegex(search), $options: 'i' };
      clauses.push({
        $or: [
          { usernameKey: { $regex: escapeRegex(search.toLowerCase()) } },
          { givenName: pattern },
          { familyName: pattern },
        ],
      });
    }
    if (clauses.length > 0) filter.$and = clauses;
    return filter;
  }

  /** Locks older than this have lifted by themselves (only with automatic unlock). */
  #lockedSince(): Date {
    const minutes = this.#deps.lockout.autoUnlockMinutes;
    return minutes === 0 ? new Date(0) : new Date(this.#deps.now().getTime() - minutes * 60_000);
  }

  #visibleState(account: Account): VisibleState {
    if (account.state !== 'active') return account.state;
    return isLocked(account.lockout, this.#deps.lockout, this.#deps.now()) ? 'locked' : 'active';
  }

  #summary(account: Account): AccountSummary {
    return {
      id: account._id,
      username: account.username,
      givenName: account.givenName,
      familyName: account.familyName,
      email: account.email ?? null,
      state: this.#visibleState(account),
      permissions: account.permissions,
      localAdmin: account.roles.includes('local_admin'),
      lastLoginAt: account.lastLoginAt ?? null,
    };
  }

  #detail(account: Account): AccountDetail {
    return {
      ...this.#summary(account),
      tenantId: account.tenantId,
      operator: account.roles.includes('operator'),
      lockedAt: this.#visibleState(account) === 'locked' ? account.lockout.lockedAt : null,
      failedAttempts: account.lockout.count,
      passwordChangedAt: account.password.changedAt,
      passwordExpiresAt: this.#deps.accounts.passwordExpiresAt(account),
      initialPassword: account.password.mustChange,
      initialPasswordExpiresAt: account.password.mustChange
        ? account.password.initialExpiresAt
        : null,
      nameHistory: account.nameHistory.map((change) => ({
        givenName: change.givenName,
        familyName: change.familyName,
        changedAt: change.changedAt,
        changedBy: change.changedBy?.accountId ?? null,
      })),
      createdAt: account.createdAt,
    };
  }
}

/** The fields a list needs; password hashes never leave the database for a list. */
const summaryProjection = {
  username: 1,
  usernameKey: 1,
  givenName: 1,
  familyName: 1,
  email: 1,
  state: 1,
  permissions: 1,
  roles: 1,
  lockout: 1,
  lastLoginAt: 1,
};
