/**
 * The account lifecycle: creation with a one-time password, password changes under the
 * policy, and the state changes of design section 2. Each method validates, changes one
 * document atomically, revokes access where the design says so, and records an audit event.
 */
import { randomBytes } from 'node:crypto';

import type { AuditTrail, RequestContext } from '../audit/trail.ts';
import { AppError, conflict, notFound, ValidationError } from '../errors.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import { newAccountSchema, parseInput } from '../validation.ts';
import { emptyLockout } from './lockout.ts';
import type { Account, AccountModel, AccountState } from './model.ts';
import { usernameKey } from './normalize.ts';
import { passwordProblems, type PasswordPolicySettings } from './password-policy.ts';
import { generateInitialPassword, type PasswordHasher } from './passwords.ts';

export interface PasswordSettings extends PasswordPolicySettings {
  maxAgeDays: number;
  history: number;
  initialValidDays: number;
}

/** Ends sessions and revokes grants and tokens of an account (the provider's storage). */
export interface AccessRevoker {
  revokeAccount(accountId: string, options?: { exceptSessionUid?: string }): Promise<void>;
}

interface AccountServiceDeps {
  accounts: AccountModel;
  tenants: TenantDirectory;
  hasher: PasswordHasher;
  audit: AuditTrail;
  revoker: AccessRevoker;
  password: PasswordSettings;
  now: () => Date;
}

const DAY = 86_400_000;

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
    return this.#deps.accounts.findOne({ tenantId, usernameKey: usernameKey(username) }).lean();
  }

  /** When the current password stops being accepted without a change. */
  passwordExpiresAt(account: Account): Date {
    return new Date(account.password.changedAt.getTime() + this.#deps.password.maxAgeDays * DAY);
  }

  /** True while the account must set a new password before any token is issued. */
  requiresPasswordChange(account: Account): boolean {
    return account.password.mustChange || this.passwordExpiresAt(account) <= this.#deps.now();
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
    return { account, initialPassword };
  }

  /** The policy problems of `newPassword` for this account, history included. */
  async passwordProblems(account: Account, newPassword: string): Promise<string[]> {
    const problems = passwordProblems(newPassword, this.#deps.password, {
      username: account.username,
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
   * grants; the session `keepSessionUid` (where the change happened) continues.
   */
  async changePassword(
    accountId: string,
    change: { newPassword: string; confirmation: string; currentPassword?: string },
    context: RequestContext,
    keepSessionUid?: string,
  ): Promise<void> {
    const account = await this.find(accountId);
    if (!account || account.state !== 'active') throw notFound('account.not_found');

    const { hasher } = this.#deps;
    if (
      change.currentPassword !== undefined &&
      !(await hasher.verify(account.password.hash, change.currentPassword))
    ) {
      await this.#record(
        context,
        account,
        'password.changed',
        {},
        'failure',
        'wrong_current_password',
      );
      throw new ValidationError({ current_password: ['password.current_wrong'] });
    }
    const problems = await this.passwordProblems(account, change.newPassword);
    if (problems.length > 0) throw new ValidationError({ new_password: problems });
    if (change.newPassword !== change.confirmation) {
      throw new ValidationError({ new_password_confirm: ['password.mismatch'] });
    }

    const history = [account.password.hash, ...account.password.history].slice(
      0,
      this.#deps.password.history,
    );
    const updated = await this.#deps.accounts.collection.updateOne(
      { _id: account._id as never, 'password.hash': account.password.hash },
      {
        $set: {
          password: {
            hash: await hasher.hash(change.newPassword),
            changedAt: this.#deps.now(),
            mustChange: false,
            initialExpiresAt: null,
            history,
          },
          updatedAt: this.#deps.now(),
        },
      } as never,
    );
    if (updated.modifiedCount !== 1) throw conflict('password.changed_concurrently');

    await this.#deps.revoker.revokeAccount(
      account._id,
      keepSessionUid ? { exceptSessionUid: keepSessionUid } : {},
    );
    await this.#record(context, account, 'password.changed');
  }

  /** Moves an account between the states of design section 2. */
  async setState(
    accountId: string,
    target: 'active' | 'deactivated' | 'retired',
    context: RequestContext,
  ): Promise<Account> {
    const account = await this.find(accountId);
    if (!account) throw notFound('account.not_found');
    if (account.state === 'retired') throw new AppError(409, 'account.retired');
    if (account.state === target) return account;

    const allowed: Record<AccountState, AccountState[]> = {
      active: ['deactivated', 'retired'],
      deactivated: ['active', 'retired'],
      retired: [],
    };
    if (!allowed[account.state].includes(target))
      throw new AppError(409, 'account.state_transition');

    const updated = await this.#deps.accounts
      .findOneAndUpdate(
        { _id: account._id, state: account.state },
        { $set: { state: target } },
        { new: true },
      )
      .lean();
    if (!updated) throw conflict('account.changed_concurrently');

    if (target !== 'active') await this.#deps.revoker.revokeAccount(account._id);
    const action = {
      active: 'account.reactivated',
      deactivated: 'account.deactivated',
      retired: 'account.retired',
    }[target];
    await this.#record(context, account, action, { from: account.state });
    return updated;
  }

  /** Lifts a lock after failed sign-ins. */
  async unlock(accountId: string, context: RequestContext): Promise<void> {
    const account = await this.find(accountId);
    if (!account) throw notFound('account.not_found');
    await this.#deps.accounts.collection.updateOne({ _id: account._id as never }, {
      $set: { lockout: emptyLockout() },
    } as never);
    await this.#record(context, account, 'account.unlocked');
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
