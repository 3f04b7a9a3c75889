/**
 * The account lifecycle: creation with a one-time password, password changes under the
 * policy, and the state changes of design section 2. Each method validates, changes one
 * document atomically, revokes access where the design says so, and records an audit event.
 */
import { randomBytes } from 'node:crypto';

import type { AuditTrail, RequestContext } from '../audit/trail.ts';
import type { Leases } from '../db/leases.ts';
import { AppError, conflict, notFound, ValidationError } from '../errors.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import type { Tenant } from '../tenants/model.ts';
import { nameChangeSchema, newAccountSchema, parseInput } from '../validation.ts';
import { emptyLockout, isLocked, type LockoutSettings } from './lockout.ts';
import { permissions } from './model.ts';
import type {
  Account,
  AccountModel,
  AccountState,
  ActorRef,
  NameChange,
  PasswordState,
  Permission,
  Role,
} from './model.ts';
import { preparePassword, usernameKey } from './normalize.ts';
import { passwordProblems, type PasswordPolicySettings } from './password-policy.ts';
import { generateInitialPassword, type PasswordHasher } from './passwords.ts';
import { nameKey, type SignInThrottle } from './throttle.ts';
import type { UsernameIndex } from './usernames.ts';

export interface PasswordSettings extends PasswordPolicySettings {
  maxAgeDays: number;
  history: number;
  initialValidDays: number;
}

/** Ends sessions and revokes grants and tokens of an account (the provider's storage). */
export interface AccessRevoker {
  revokeAccount(accountId: string, options?: RevokeExceptions): Promise<void>;
  /** Ends everything of every account; the records removed, by collection. */
  revokeEveryone(): Promise<Record<string, number>>;
}

/** What a revocation leaves alone: the session and grant in which the holder acted. */
export interface RevokeExceptions {
  exceptSessionUid?: string;
  exceptGrantId?: string;
}

interface AccountServiceDeps {
  accounts: AccountModel;
  usernames: UsernameIndex;
  leases: Leases;
  tenants: TenantDirectory;
  hasher: PasswordHasher;
  audit: AuditTrail;
  revoker: AccessRevoker;
  /** Whose failures an unlock forgets, so that the name's sign-in delays end too. */
  throttle: SignInThrottle;
  password: PasswordSettings;
  lockout: LockoutSettings;
  now: () => Date;
}

const DAY = 86_400_000;

/** Which state may follow which (design section 2); `retired` is final. */
const transitions: Record<AccountState, AccountState[]> = {
  active: ['deactivated', 'retired'],
  deactivated: ['active', 'retired'],
  retired: [],
};

const stateActions: Record<AccountState, string> = {
  active: 'account.reactivated',
  deactivated: 'account.deactivated',
  retired: 'account.retired',
};

export class AccountService {
  readonly #deps: AccountServiceDeps;

  constructor(deps: AccountServiceDeps) {
    this.#deps = deps;
  }

  get passwordSettings(): PasswordSettings {
    return this.#deps.password;
  }

  find(accountId: string): Promise<Account | null> {
    return this.#deps.accounts.findById(accountId).lean();
  }

  findByUsername(tenantId: string, username: string): Promise<Account | null> {
    return this.#deps.usernames.find({ tenantId, usernameKey: usernameKey(username) });
  }

  /** When the current password stops being accepted without a change. */
  passwordExpiresAt(account: Account): Date {
    return new Date(account.password.changedAt.getTime() + this.#deps.password.maxAgeDays * DAY);
  }

  /** True while the account must set a new password before any token is issued. */
  requiresPasswordChange(account: Account): boolean {
    return account.password.mustChange || this.passwordExpiresAt(account) <= this.#deps.now();
  }

  /**
   * The account and its tenant while the account can act with what it holds: active, in an
   * active tenant, and no password change pending; undefined otherwise.
   */
  async acting(accountId: string): Promise<{ account: Account; tenant: Tenant } | undefined> {
    const account = await this.find(accountId);
    if (!account || account.state !== 'active' || this.requiresPasswordChange(account))
      return undefined;
    const tenant = await this.#deps.tenants.find(account.tenantId);
    return tenant?.active ? { account, tenant } : undefined;
  }

  /** Creates an account with a one-time password, which is returned once and never stored. */
  async create(
    input: unknown,
    context: RequestContext,
  ): Promise<{ account: Account; initialPassword: string }> {
    const fields = parseInput(newAccountSchema, input);
    const tenant = await this.#deps.tenants.find(fields.tenantId);
    if (!tenant) throw new ValidationError({ tenantId: ['tenant.unknown'] });
    if (!tenant.active) throw new ValidationError({ tenantId: ['tenant.inactive'] });

    const now = this.#deps.now();
    const initialPassword = generateInitialPassword();
    const account: Account = {
      _id: randomBytes(16).toString('base64url'),
      tenantId: tenant._id,
      username: fields.username,
      usernameKey: usernameKey(fields.username),
      givenName: fields.givenName,
      familyName: fields.familyName,
      email: fields.email,
      nameHistory: [],
      permissions: [...new Set(fields.permissions)],
      roles: [...new Set(fields.roles)],
      state: 'active',
      password: {
        hash: await this.#deps.hasher.hash(initialPassword),
        changedAt: now,
        mustChange: true,
        initialExpiresAt: new Date(now.getTime() + this.#deps.password.initialValidDays * DAY),
        history: [],
      },
      lockout: emptyLockout(),
      lastLoginAt: null,
      createdAt: now,
      updatedAt: now,
    };

    try {
      await this.#deps.accounts.collection.insertOne(account as never);
    } catch (error) {
      if ((error as { code?: number }).code === 11000) throw conflict('username.taken');
      throw error;
    }
    await this.#record(context, account, 'account.created', {
      permissions: account.permissions,
      roles: account.roles,
    });
    // After the account and its event: without the entry the sign-in still finds it.
    await this.#deps.usernames.record(account);
    return { account, initialPassword };
  }

  /** The policy problems of `newPassword` for this account, history included. */
  async passwordProblems(account: Account, newPassword: string): Promise<string[]> {
    const tenant = await this.#deps.tenants.find(account.tenantId);
    const problems = passwordProblems(newPassword, this.#deps.password, {
      username: account.username,
      givenName: account.givenName,
      familyName: account.familyName,
      tenantId: account.tenantId,
      ...(tenant ? { tenantName: tenant.name } : {}),
    });
    if (problems.length > 0) return problems;

    const { hasher } = this.#deps;
    const recent = [
      account.password.hash,
      ...account.password.history.slice(0, this.#deps.password.history),
    ];
    for (const hash of recent) {
      if (await hasher.verify(hash, newPassword)) return ['password.reused'];
    }
    return [];
  }

  /**
   * Sets a new password chosen by the account holder. Ends the account's other sessions and
   * grants; the session and grant of `keep` (where the change happened) continue. Confirming
   * the current password is the caller's step, through `SignIn.reauthenticate`, so that wrong
   * guesses count towards the lock.
   */
  async changePassword(
    accountId: string,
    change: { newPassword: string; confirmation: string },
    context: RequestContext,
    keep: RevokeExceptions = {},
  ): Promise<void> {
    const account = await this.find(accountId);
    if (!account || account.state !== 'active') throw notFound('account.not_found');

    const { hasher, now } = this.#deps;
    const problems: Record<string, string[]> = {};
    const policy = await this.passwordProblems(account, change.newPassword);
    if (policy.length > 0) problems.new_password = policy;
    if (preparePassword(change.newPassword) !== preparePassword(change.confirmation)) {
      problems.new_password_confirm = ['password.mismatch'];
    }
    if (Object.keys(problems).length > 0) throw new ValidationError(problems);

    const hash = await hasher.hash(change.newPassword);
    await this.#exclusive(accountId, async (stored) => {
      if (stored.password.hash !== account.password.hash)
        throw conflict('password.changed_concurrently');
      const password = this.#replacedPassword(stored, hash, { initial: false });
      await this.#deps.accounts.updateOne(
        { _id: accountId },
        { $set: { password, updatedAt: now() } },
      );
    });

    await this.#deps.revoker.revokeAccount(accountId, keep);
    await this.#record(context, account, 'password.changed');
  }

  /** Moves an account between the states of design section 2. */
  async setState(
    accountId: string,
    target: AccountState,
    context: RequestContext,
  ): Promise<Account> {
    const { before, after } = await this.#exclusive(accountId, async (account) => {
      if (account.state === target) return { before: account, after: account };
      if (!transitions[account.state].includes(target)) {
        throw new AppError(
          409,
          account.state === 'retired' ? 'account.retired' : 'account.state_transition',
        );
      }
      await this.#deps.accounts.updateOne(
        { _id: accountId },
        { $set: { state: target, updatedAt: this.#deps.now() } },
      );
      return { before: account, after: { ...account, state: target } };
    });
    if (before.state === after.state) return after;

    if (target !== 'active') await this.#deps.revoker.revokeAccount(accountId);
    await this.#record(context, after, stateActions[target], { from: before.state });
    return after;
  }

  /**
   * Lifts a lock after failed sign-ins and the sign-in delays of the account's name from
   * every address (throttle.ts); returns false, changing and recording nothing, when the
   * account is neither locked nor delayed.
   */
  async unlock(accountId: string, context: RequestContext): Promise<boolean> {
    const { accounts, lockout, throttle, now } = this.#deps;
    const unlocked = await this.#exclusive(accountId, async (stored) => {
      const locked = isLocked(stored.lockout, lockout, now());
      if (locked)
        await accounts.updateOne({ _id: accountId }, { $set: { lockout: emptyLockout() } });
      const failures = await throttle.forgetName(nameKey(stored.tenantId, stored.usernameKey));
      return { stored, lock: locked, delays: failures > 0 };
    });
    if (!unlocked.lock && !unlocked.delays) return false;
    const { stored, ...details } = unlocked;
    await this.#record(context, stored, 'account.unlocked', details);
    return true;
  }

  /**
   * Replaces a forgotten password with a new one-time password (returned once), lifts a
   * lock and the name's sign-in delays, and ends the account's sessions and grants.
   */
  async resetPassword(
    accountId: string,
    context: RequestContext,
  ): Promise<{ account: Account; initialPassword: string }> {
    const { hasher, now } = this.#deps;
    const initialPassword = generateInitialPassword();
    const hash = await hasher.hash(initialPassword);
    const account = await this.#exclusive(accountId, async (stored) => {
      if (stored.state === 'retired') throw new AppError(409, 'account.retired');
      const password = this.#replacedPassword(stored, hash, { initial: true });
      await this.#deps.accounts.updateOne(
        { _id: accountId },
        { $set: { password, lockout: emptyLockout(), updatedAt: now() } },
      );
      await this.#deps.throttle.forgetName(nameKey(stored.tenantId, stored.usernameKey));
      return stored;
    });
    await this.#deps.revoker.revokeAccount(accountId);
    await this.#record(context, account, 'password.reset');
    return { account, initialPassword };
  }

  /** Gives the account a role it does not have yet; true when it was added. */
  async addRole(accountId: string, role: Role, context: RequestContext): Promise<boolean> {
    const added = await this.#exclusive(accountId, async (stored) => {
      if (stored.roles.includes(role)) return undefined;
      await this.#deps.accounts.updateOne(
        { _id: accountId },
        { $set: { roles: [...stored.roles, role] } },
      );
      return stored;
    });
    if (added) await this.#record(context, added, 'account.role_granted', { role });
    return added !== undefined;
  }

  /** Takes a role away; true when the account had it. */
  async removeRole(accountId: string, role: Role, context: RequestContext): Promise<boolean> {
    const removed = await this.#exclusive(accountId, async (stored) => {
      if (!stored.roles.includes(role)) return undefined;
      await this.#deps.accounts.updateOne(
        { _id: accountId },
        {
          $set: {
            roles: stored.roles.filter((held) => held !== role),
            updatedAt: this.#deps.now(),
          },
        },
      );
      return stored;
    });
    if (removed) await this.#record(context, removed, 'account.role_withdrawn', { role });
    return removed !== undefined;
  }

  /**
   * Records a change of name (marriage, correction). The name before the change goes into
   * the history with who changed it and when; the username stays as it is.
   */
  async rename(accountId: string, input: unknown, context: RequestContext): Promise<Account> {
    const name = parseInput(nameChangeSchema, input);
    const { before, after } = await this.#exclusive(accountId, async (stored) => {
      if (stored.state === 'retired') throw new AppError(409, 'account.retired');
      if (stored.givenName === name.givenName && stored.familyName === name.familyName)
        return { before: stored, after: stored };
      const change: NameChange = {
        givenName: stored.givenName,
        familyName: stored.familyName,
        changedAt: this.#deps.now(),
        changedBy: actorRef(context),
      };
      const nameHistory = [change, ...stored.nameHistory];
      await this.#deps.accounts.updateOne(
        { _id: accountId },
        { $set: { ...name, nameHistory, updatedAt: change.changedAt } },
      );
      return { before: stored, after: { ...stored, ...name, nameHistory } };
    });
    if (before !== after) {
      await this.#record(context, after, 'account.renamed', {
        from: `${before.givenName} ${before.familyName}`,
        to: `${after.givenName} ${after.familyName}`,
      });
    }
    return after;
  }

  /**
   * Sets the permissions an account holds. Withdrawing one ends the account's sessions and
   * revokes its grants in the same call (design section 2): the next refresh fails and a
   * new sign-in is granted only what remains.
   */
  async setPermissions(
    accountId: string,
    wanted: readonly Permission[],
    context: RequestContext,
  ): Promise<{ granted: Permission[]; withdrawn: Permission[] }> {
    const target = permissions.filter((permission) => wanted.includes(permission));
    const { account, granted, withdrawn } = await this.#exclusive(accountId, async (stored) => {
      if (stored.state === 'retired') throw new AppError(409, 'account.retired');
      const granted = target.filter((permission) => !stored.permissions.includes(permission));
      const withdrawn = stored.permissions.filter((permission) => !target.includes(permission));
      if (granted.length + withdrawn.length > 0) {
        await this.#deps.accounts.updateOne(
          { _id: accountId },
          { $set: { permissions: target, updatedAt: this.#deps.now() } },
        );
      }
      return { account: stored, granted, withdrawn };
    });

    if (withdrawn.length > 0) await this.#deps.revoker.revokeAccount(accountId);
    for (const permission of granted)
      await this.#record(context, account, 'account.permission_granted', { permission });
    for (const permission of withdrawn)
      await this.#record(context, account, 'account.permission_withdrawn', { permission });
    return { granted, withdrawn };
  }

  /** Ends every session of the account and revokes its grants, codes and tokens. */
  async endSessions(accountId: string, context: RequestContext): Promise<void> {
    const account = await this.find(accountId);
    if (!account) throw notFound('account.not_found');
    await this.#deps.revoker.revokeAccount(accountId);
    await this.#record(context, account, 'account.sessions_ended');
  }

  /**
   * Ends every session of every account and revokes all grants, codes and tokens (the
   * operator's break-glass action after a key compromise or the restore of a backup).
   */
  async endAllSessions(context: RequestContext): Promise<Record<string, number>> {
    const removed = await this.#deps.revoker.revokeEveryone();
    await this.#deps.audit.record(context, {
      tenantId: null,
      action: 'sessions.ended_all',
      outcome: 'success',
      details: { removed },
    });
    return removed;
  }

  /** The password state once `hash` replaces the stored one, which moves into the history. */
  #replacedPassword(
    stored: Account,
    hash: string,
    { initial }: { initial: boolean },
  ): PasswordState {
    const now = this.#deps.now();
    return {
      hash,
      changedAt: now,
      mustChange: initial,
      initialExpiresAt: initial
        ? new Date(now.getTime() + this.#deps.password.initialValidDays * DAY)
        : null,
      history: [stored.password.hash, ...stored.password.history].slice(
        0,
        this.#deps.password.history,
      ),
    };
  }

  /**
   * Runs `work` on the stored account while holding its lease, so that concurrent changes of
   * one account never overwrite each other (see db/leases.ts).
   */
  #exclusive<T>(accountId: string, work: (account: Account) => Promise<T>): Promise<T> {
    return this.#deps.leases.run(`account:${accountId}`, async () => {
      const account = await this.find(accountId);
      if (!account) throw notFound('account.not_found');
      return work(account);
    });
  }

  #record(
    context: RequestContext,
    account: Account,
    action: string,
    details?: Record<string, unknown>,
    outcome: 'success' | 'failure' = 'success',
    reason?: string,
  ) {
    return this.#deps.audit.record(context, {
      tenantId: account.tenantId,
      action,
      outcome,
      target: { accountId: account._id, username: account.username },
      ...(details === undefined ? {} : { details }),
      ...(reason === undefined ? {} : { reason }),
    });
  }
}

/** Who made a change, as the account's own history keeps it. */
function actorRef(context: RequestContext): ActorRef {
  const { actor } = context;
  if (actor.kind === 'account')
    return {
      kind: 'account',
      accountId: actor.accountId ?? null,
      tenantId: actor.tenantId ?? null,
    };
  return { kind: actor.kind === 'cli' ? 'cli' : 'system', accountId: null, tenantId: null };
}
