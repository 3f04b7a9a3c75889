/**
 * Password sign-in: resolve the tenant, find the account (by its username entry,
 * usernames.ts), check the lock, verify the password, count the failure or reset the
 * counter. Every credential failure costs one
 * argon2 verification and answers alike; only the audit event says which failure it was.
 *
 * The check of one name runs under that name's lease (db/leases.ts): parallel attempts on
 * one account are checked one after the other, so exactly `maxFailures` wrong passwords are
 * verified before the lock, and none after it.
 *
 * Before any of that, the throttle (throttle.ts) decides whether the attempt comes too soon
 * after earlier failures of the same name from the same address, or of the same address; if
 * so it is answered at once, with no argon2 work and no look-up of the account, so the answer
 * is the same for every name. Its audit event, like that of an attempt the full hashing queue
 * turned away (503), names the typed username, as the other failures do.
 */
import { createHash } from 'node:crypto';

import type { AuditTarget, AuditTrail, RequestContext } from '../audit/trail.ts';
import type { Leases } from '../db/leases.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import type { Tenant } from '../tenants/model.ts';
import {
  clearExpiredLock,
  countFailure,
  emptyLockout,
  ensureFailureCounter,
  isLocked,
  type LockoutSettings,
  type LoginFailureModel,
} from './lockout.ts';
import type { Account, AccountModel } from './model.ts';
import { usernameKey } from './normalize.ts';
import type { FailureFloor } from './failure-floor.ts';
import { HashQueueFull, type PasswordHasher } from './passwords.ts';
import { nameKey, type Admission, type SignInThrottle } from './throttle.ts';
import { holds, type HeldName, type UsernameIndex } from './usernames.ts';

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
  | { kind: 'initial_expired' }
  /** Too soon after earlier failures of this name or address; nothing was checked. */
  | { kind: 'throttled'; retryAfterSeconds: number };

/** What one check found, with the precise reason the audit event records. */
type Check =
  | { result: { kind: 'success'; account: Account } }
  | {
      result: Exclude<SignInResult, { kind: 'success' }>;
      reason: string;
      /** Whether a wrong password counted (a retyped one does not). */
      counted?: boolean;
      lockedNow?: boolean;
    };

/** The account read under the lease does not hold the name its entry was found by. */
const STALE_ENTRY = Symbol('stale username entry');

interface SignInDeps {
  accounts: AccountModel;
  usernames: UsernameIndex;
  leases: Leases;
  loginFailures: LoginFailureModel;
  throttle: SignInThrottle;
  tenants: TenantDirectory;
  hasher: PasswordHasher;
  audit: AuditTrail;
  lockout: LockoutSettings;
  now: () => Date;
  /** When failed attempts are answered at the earliest (failure-floor.ts); none = at once. */
  failureFloor?: FailureFloor;
}

export class SignIn {
  readonly #deps: SignInDeps;

  constructor(deps: SignInDeps) {
    this.#deps = deps;
  }

  /** Checks the credentials and records the outcome. */
  async attempt(credentials: Credentials, context: RequestContext): Promise<SignInResult> {
    const started = performance.now();
    const result = await this.#attempt(credentials, context);
    const floor = this.#deps.failureFloor;
    if (result.kind === 'success' || !floor) return result;
    // A refusal by the delays reveals nothing about the name and does no work to hide.
    if (result.kind !== 'throttled') floor.record(performance.now() - started);
    const left = started + floor.target() - performance.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    return result;
  }

  async #attempt(credentials: Credentials, context: RequestContext): Promise<SignInResult> {
    const { tenants, usernames } = this.#deps;
    const tenant = await tenants.resolve(credentials.tenant);
    const key = usernameKey(credentials.username);
    const tenantScope = tenant?._id ?? `?${credentials.tenant.trim().toLowerCase()}`;
    const target = { username: credentials.username.slice(0, 64), tenantId: tenant?._id ?? null };
    return this.#throttled(tenantScope, key, context, target, async () => {
      if (!tenant?.active) return this.#unknown(credentials, tenant, key, context);
      const name = { tenantId: tenant._id, usernameKey: key };

      let accountId = await usernames.accountId(name);
      let result =
        accountId &&
        (await this.#verifyAccount(accountId, credentials.password, context, { name }));
      if (result === STALE_ENTRY) {
        accountId = (await usernames.search(name, true))?._id;
        result =
          accountId &&
          (await this.#verifyAccount(accountId, credentials.password, context, { name }));
      }

      if (!result || result === STALE_ENTRY)
        return this.#unknown(credentials, tenant, key, context);
      return result.kind === 'success' ? { ...result, tenant } : result;
    });
  }

  /**
   * Checks the password of a signed-in account again (before a sensitive change). Wrong
   * passwords count towards the lock like at sign-in, so a session is no way around it.
   */
  async reauthenticate(
    account: Account,
    password: string,
    context: RequestContext,
  ): Promise<SignInResult['kind']> {
    const result = await this.#throttled(
      account.tenantId,
      account.usernameKey,
      context,
      { accountId: account._id, username: account.username, tenantId: account.tenantId },
      async () => {
        const verified = await this.#verifyAccount(account._id, password, context, { account });
        return verified === STALE_ENTRY ? ({ kind: 'invalid' } as const) : verified;
      },
    );
    return result.kind;
  }

  /**
   * Runs `check` if the throttle admits the attempt; a right password clears the name's
   * failures from this address, a wrong one settles the attempt as a failure, and an error
   * forgets it. `target` names the typed username in the audit events written here.
   */
  async #throttled<T extends { kind: SignInResult['kind'] }>(
    tenantScope: string,
    usernameKey: string,
    context: RequestContext,
    target: AuditTarget & { tenantId: string | null },
    check: () => Promise<T>,
  ): Promise<T | { kind: 'throttled'; retryAfterSeconds: number }> {
    const { throttle, audit } = this.#deps;
    const refused = (reason: string, details: object) =>
      audit.record(context, {
        tenantId: target.tenantId,
        action: 'login',
        outcome: 'failure',
        reason,
        target,
        details: { ...details },
      });
    const admission: Admission = await throttle.admit(
      nameKey(tenantScope, usernameKey),
      context.ip,
    );
    if (!admission.admitted) {
      const retryAfterSeconds = Math.ceil(admission.retryAfterMs / 1000);
      await refused('throttled', { retryAfterSeconds });
      return { kind: 'throttled', retryAfterSeconds };
    }

    let result: T;
    try {
      result = await check();
    } catch (error) {
      await throttle.release(admission.tickets).catch(() => {});
      if (error instanceof HashQueueFull)
        await refused('busy', { retryAfterSeconds: error.retryAfterSeconds });
      throw error;
    }
    if (['success', 'inactive', 'initial_expired'].includes(result.kind)) {
      await throttle.succeeded(admission);
    } else {
      await throttle.failed(admission);
    }
    return result;
  }

  /**
   * Checks `accountId` under its lease and records the outcome. A sign-in found it by a
   * username (`name`): when the account does not hold that name, nothing is checked. A
   * signed-in `account` is checked as it stands.
   */
  async #verifyAccount(
    accountId: string,
    password: string,
    context: RequestContext,
    by: { name: HeldName } | { account: Account },
  ): Promise<Check['result'] | typeof STALE_ENTRY> {
    const name = 'name' in by ? by.name : undefined;
    const checked = await this.#deps.leases.run(`account:${accountId}`, () =>
      this.#check(accountId, password, name),
    );
    if (checked === STALE_ENTRY) return STALE_ENTRY;
    const { check } = checked;
    const account = checked.account ?? ('account' in by ? by.account : null);
    const target = { accountId, username: account?.username ?? null };
    const record = (
      action: string,
      outcome: 'success' | 'failure',
      reason?: string,
      details?: object,
    ) =>
      this.#deps.audit.record(context, {
        tenantId: account?.tenantId ?? null,
        action,
        outcome,
        target,
        ...(reason === undefined ? {} : { reason }),
        ...(details === undefined ? {} : { details: { ...details } }),
      });

    if (!('reason' in check)) {
      await record('login', 'success');
      return check.result;
    }
    await record(
      'login',
      'failure',
      check.reason,
      check.counted === undefined ? undefined : { counted: check.counted },
    );
    if (check.lockedNow) await record('account.locked', 'success', 'failed_logins');
    return check.result;
  }

  /** One check of one account; the caller holds the account's lease. */
  async #check(
    accountId: string,
    password: string,
    name: HeldName | undefined,
  ): Promise<{ account: Account | null; check: Check } | typeof STALE_ENTRY> {
    const { accounts, hasher } = this.#deps;
    const account = await accounts.findById(accountId).lean();
    if (name && !(account && holds(account, name))) return STALE_ENTRY;
    if (!account) {
      await hasher.verifyNothing(password);
      return { account, check: { result: { kind: 'invalid' }, reason: 'unknown_account' } };
    }
    return { account, check: await this.#checkPassword(account, password) };
  }

  async #checkPassword(account: Account, password: string): Promise<Check> {
    const { accounts, hasher, lockout, now } = this.#deps;
    const at = now();
    await clearExpiredLock(accounts.collection, account, lockout, at);

    if (isLocked(account.lockout, lockout, at)) {
      await hasher.verifyNothing(password);
      return { result: { kind: 'locked' }, reason: 'locked' };
    }

    if (!(await hasher.verify(account.password.hash, password))) {
      const fingerprint = hasher.fingerprint(account._id, password);
      const failure = await countFailure(
        accounts.collection,
        account._id,
        fingerprint,
        lockout,
        at,
      );
      const locked = failure.counted && failure.count >= lockout.maxFailures;
      return {
        result: { kind: locked ? 'locked' : 'invalid' },
        reason: 'wrong_password',
        counted: failure.counted,
        lockedNow: failure.lockedNow,
      };
    }

    if (account.state !== 'active') {
      return { result: { kind: 'inactive', state: account.state }, reason: account.state };
    }
    const { mustChange, initialExpiresAt } = account.password;
    if (mustChange && initialExpiresAt && initialExpiresAt < at) {
      return { result: { kind: 'initial_expired' }, reason: 'initial_password_expired' };
    }

    await accounts.updateOne(
      { _id: account._id },
      { $set: { lockout: emptyLockout(), lastLoginAt: at } },
    );
    if (hasher.needsRehash(account.password.hash)) {
      await accounts.updateOne(
        { _id: account._id },
        { $set: { 'password.hash': await hasher.hash(password) } },
      );
    }
    return {
      result: {
        kind: 'success',
        account: { ...account, lockout: emptyLockout(), lastLoginAt: at },
      },
    };
  }

  /**
   * A name that matches no account is counted like an account, in `login_failures`, and
   * kept as long as an account's counter would be: a lock that ended by itself would tell
   * an attacker which names do not exist.
   */
  async #unknown(
    credentials: Credentials,
    tenant: Tenant | undefined,
    key: string,
    context: RequestContext,
  ) {
    const { loginFailures, hasher, lockout, now } = this.#deps;
    const scope = createHash('sha256')
      .update(tenant?._id ?? `?${credentials.tenant.trim().toLowerCase()}`)
      .update('\0')
      .update(key)
      .digest('base64url');

    const locked = await this.#deps.leases.run(`login-failure:${scope}`, async () => {
      const at = now();
      const counter = await ensureFailureCounter(loginFailures, scope);
      await clearExpiredLock(loginFailures.collection, counter, lockout, at);
      await hasher.verifyNothing(credentials.password);
      if (isLocked(counter.lockout, lockout, at)) return 'already';

      const fingerprint = hasher.fingerprint(scope, credentials.password);
      const failure = await countFailure(loginFailures.collection, scope, fingerprint, lockout, at);
      return failure.counted && failure.count >= lockout.maxFailures ? 'now' : 'no';
    });

    const reason = tenant ? 'unknown_account' : 'unknown_tenant';
    await this.#deps.audit.record(context, {
      tenantId: tenant?._id ?? null,
      action: 'login',
      outcome: 'failure',
      reason: locked === 'already' ? `${reason}_locked` : reason,
      target: { username: credentials.username.slice(0, 64), tenantId: tenant?._id ?? null },
    });
    return locked === 'no' ? ({ kind: 'invalid' } as const) : ({ kind: 'locked' } as const);
  }
}
