/**
 * Password sign-in: resolve the tenant, find the account, check the lock, verify the
 * password, count the failure or reset the counter. Every credential failure costs one
 * argon2 verification and answers alike; only the audit event says which failure it was.
 */
import { createHash } from 'node:crypto';

import type { Collection } from 'mongoose';

import type { AuditTrail, RequestContext } from '../audit/trail.ts';
import type { Leases } from '../db/leases.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import type { Tenant } from '../tenants/model.ts';
import {
  clearExpiredLock,
  countFailure,
  emptyLockout,
  ensureFailureCounter,
  isLocked,
  type FailureResult,
  type LockoutHolder,
  type LockoutSettings,
  type LoginFailureModel,
} from './lockout.ts';
import type { Account, AccountModel } from './model.ts';
import { usernameKey } from './normalize.ts';
import type { PasswordHasher } from './passwords.ts';

export interface Credentials {
  tenant: string;
  username: string;
  password: string;
}

export type SignInResult =
  | { kind: 'success'; account: Account; tenant: Tenant }
  /** Unknown tenant, unknown username or wrong password: one answer for all three. */
  | { kind: 'invalid' }
  | { kind: 'locked' }
  /** Only after the correct password: the account is deactivated or retired. */
  | { kind: 'inactive'; state: 'deactivated' | 'retired' }
  /** Only after the correct password: the one-time password was not used in time. */
  | { kind: 'initial_expired' };

const LOCKED = { kind: 'locked' } as const;
const INVALID = { kind: 'invalid' } as const;

interface SignInDeps {
  accounts: AccountModel;
  leases: Leases;
  loginFailures: LoginFailureModel;
  tenants: TenantDirectory;
  hasher: PasswordHasher;
  audit: AuditTrail;
  lockout: LockoutSettings;
  now: () => Date;
}

export class SignIn {
  readonly #deps: SignInDeps;

  constructor(deps: SignInDeps) {
    this.#deps = deps;
  }

  /** Checks the credentials and records the outcome. */
  async attempt(credentials: Credentials, context: RequestContext): Promise<SignInResult> {
    const { accounts, tenants } = this.#deps;
    const tenant = await tenants.resolve(credentials.tenant);
    const key = usernameKey(credentials.username);
    const account = tenant?.active
      ? ((await accounts.findOne({ tenantId: tenant._id, usernameKey: key }).lean()) ?? undefined)
      : undefined;

    if (!tenant || !account) {
      return this.#unknown(credentials, tenant, key, context);
    }
    return this.#known(account, tenant, credentials.password, context);
  }

  async #known(account: Account, tenant: Tenant, password: string, context: RequestContext) {
    const { accounts, hasher, leases, lockout, now } = this.#deps;
    const at = now();
    const lease = `account:${account._id}`;
    await leases.run(lease, () => clearExpiredLock(accounts.collection, account, lockout, at));

    if (isLocked(account.lockout, lockout, at)) {
      await hasher.verifyNothing(password);
      await this.#audit(context, account, 'login', 'failure', 'locked');
      return LOCKED;
    }

    if (!(await hasher.verify(account.password.hash, password))) {
      const fingerprint = hasher.fingerprint(account._id, password);
      const failure = await leases.run(lease, () =>
        countFailure(accounts.collection, account._id, fingerprint, lockout, at),
      );
      await this.#audit(context, account, 'login', 'failure', 'wrong_password', {
        counted: failure.counted,
      });
      if (failure.lockedNow)
        await this.#audit(context, account, 'account.locked', 'success', 'failed_logins');
      return (await this.#lockedAfter(failure, accounts.collection, account._id))
        ? LOCKED
        : INVALID;
    }

    if (account.state !== 'active') {
      await this.#audit(context, account, 'login', 'failure', account.state);
      return { kind: 'inactive', state: account.state } as const;
    }
    if (
      account.password.mustChange &&
      account.password.initialExpiresAt &&
      account.password.initialExpiresAt < at
    ) {
      await this.#audit(context, account, 'login', 'failure', 'initial_password_expired');
      return { kind: 'initial_expired' } as const;
    }

    const signedIn = await leases.run(lease, async () => {
      const current = await accounts.findById(account._id).lean();
      if (!current || isLocked(current.lockout, lockout, at)) return undefined;
      await accounts.updateOne(
        { _id: account._id },
        { $set: { lockout: emptyLockout(), lastLoginAt: at } },
      );
      if (hasher.needsRehash(current.password.hash)) await this.#rehash(current, password);
      return { ...current, lockout: emptyLockout(), lastLoginAt: at };
    });
    if (!signedIn) {
      // A parallel attempt set the lock between our read and this write.
      await this.#audit(context, account, 'login', 'failure', 'locked');
      return LOCKED;
    }
    await this.#audit(context, account, 'login', 'success');
    return { kind: 'success', account: signedIn, tenant } as const;
  }

  async #unknown(
    credentials: Credentials,
    tenant: Tenant | undefined,
    key: string,
    context: RequestContext,
  ) {
    const { loginFailures, hasher, lockout, now } = this.#deps;
    const at = now();
    const scope = createHash('sha256')
      .update(tenant?._id ?? `?${credentials.tenant.trim().toLowerCase()}`)
      .update('\0')
      .update(key)
      .digest('base64url');
    const lease = `login-failure:${scope}`;
    const counter = await this.#deps.leases.run(lease, async () => {
      const found = await ensureFailureCounter(
        loginFailures,
        scope,
        new Date(at.getTime() + 86_400_000),
      );
      await clearExpiredLock(loginFailures.collection, found, lockout, at);
      return found;
    });

    const reason = tenant ? 'unknown_account' : 'unknown_tenant';
    const target = { username: credentials.username.slice(0, 64), tenantId: tenant?._id ?? null };
    if (isLocked(counter.lockout, lockout, at)) {
      await hasher.verifyNothing(credentials.password);
      await this.#deps.audit.record(context, {
        tenantId: tenant?._id ?? null,
        action: 'login',
        outcome: 'failure',
        reason: `${reason}_locked`,
        target,
      });
      return LOCKED;
    }

    await hasher.verifyNothing(credentials.password);
    const fingerprint = hasher.fingerprint(scope, credentials.password);
    const failure = await this.#deps.leases.run(lease, () =>
      countFailure(loginFailures.collection, scope, fingerprint, lockout, at),
    );
    await this.#deps.audit.record(context, {
      tenantId: tenant?._id ?? null,
      action: 'login',
      outcome: 'failure',
      reason,
      target,
    });
    return (await this.#lockedAfter(failure, loginFailures.collection, scope)) ? LOCKED : INVALID;
  }

  /**
   * Whether the holder is locked after this failure. A failure that was not counted (a
   * retyped password, or the limit reached by a parallel attempt) reads the stored state.
   */
  async #lockedAfter(failure: FailureResult, collection: Collection, id: string): Promise<boolean> {
    if (failure.counted) return failure.count >= this.#deps.lockout.maxFailures;
    const current = await collection.findOne({ _id: id as never }, { projection: { lockout: 1 } });
    return isLocked(
      (current as LockoutHolder | null)?.lockout,
      this.#deps.lockout,
      this.#deps.now(),
    );
  }

  /** Re-hashes with the configured argon2 parameters; the caller holds the account's lease. */
  async #rehash(account: Account, password: string): Promise<void> {
    const hash = await this.#deps.hasher.hash(password);
    await this.#deps.accounts.updateOne({ _id: account._id }, { $set: { 'password.hash': hash } });
  }

  #audit(
    context: RequestContext,
    account: Account,
    action: string,
    outcome: 'success' | 'failure',
    reason?: string,
    details?: Record<string, unknown>,
  ) {
    return this.#deps.audit.record(context, {
      tenantId: account.tenantId,
      action,
      outcome,
      target: { accountId: account._id, username: account.username },
      ...(reason === undefined ? {} : { reason }),
      ...(details === undefined ? {} : { details }),
    });
  }
}
