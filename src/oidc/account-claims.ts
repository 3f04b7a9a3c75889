/**
 * How an account appears to the provider: `findAccount` and the claims of design section 4.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';

import type { Account, Permission } from '../accounts/model.ts';
import { permissions as allPermissions } from '../accounts/model.ts';
import type { AccountService } from '../accounts/service.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import type { Tenant } from '../tenants/model.ts';

/** Scope → claims. The permission scopes are also static scopes, see `grants.ts`. */
export const claimsByScope = {
  openid: ['sub'],
  profile: [
    'name',
    'given_name',
    'family_name',
    'preferred_username',
    'tenant_id',
    'tenant_name',
    'tenant_kind',
  ],
  email: ['email', 'email_verified'],
  meldeverfahren: ['permissions'],
  zahlungsmitteilungen: ['permissions'],
};

/** The permissions of the account that the granted `scope` string includes. */
export function grantedPermissions(
  held: readonly Permission[],
  scope: string | undefined,
): Permission[] {
  const granted = new Set(scope?.split(' '));
  return allPermissions.filter(
    (permission) => held.includes(permission) && granted.has(permission),
  );
}

export class ProviderAccount {
  readonly accountId: string;
  readonly permissions: Permission[];
  /** Read by the `password_change` prompt of the interaction policy. */
  readonly passwordChangeRequired: boolean;
  /** A local admin or operator, who may be granted the `admin` scope of the admin API. */
  readonly administrator: boolean;
  readonly #account: Account;
  readonly #tenant: Tenant;

  constructor(account: Account, tenant: Tenant, passwordChangeRequired: boolean) {
    this.accountId = account._id;
    this.permissions = account.permissions;
    this.passwordChangeRequired = passwordChangeRequired;
    this.administrator =
      account.roles.includes('local_admin') || account.roles.includes('operator');
    this.#account = account;
    this.#tenant = tenant;
  }

  /** All claims; the provider keeps those the granted scopes and claims allow. */
  claims(_use: string, scope: string) {
    const account = this.#account;
    return {
      sub: account._id,
      name: `${account.givenName} ${account.familyName}`,
      given_name: account.givenName,
      family_name: account.familyName,
      preferred_username: account.username,
      tenant_id: this.#tenant._id,
      tenant_name: this.#tenant.name,
      tenant_kind: this.#tenant.kind,
      ...(account.email === null ? {} : { email: account.email, email_verified: false }),
      permissions: grantedPermissions(account.permissions, scope),
    };
  }
}

/**
 * `findAccount` of the provider configuration. Without a token (the authorization endpoint
 * re-checking a session) an active account is returned even when its password must change,
 * so the password-change prompt can run. With a token (code, refresh token, access token)
 * such an account is treated as gone, so no token is ever issued to it. Deactivated and
 * retired accounts, and accounts of a deactivated tenant, are gone either way. A locked
 * account keeps what it already holds (design section 2).
 *
 * The account and its tenant are read once per request: the token endpoint asks for the
 * account of one grant several times (the grant, the access token's claims, the ID token).
 * Nothing is kept across requests, so a deactivation counts from the next request on.
 */
export function accountFinder(accounts: AccountService, tenants: TenantDirectory) {
  const readInRequest = new WeakMap<object, Map<string, Promise<Loaded | undefined>>>();
  const read = async (sub: string): Promise<Loaded | undefined> => {
    const account = await accounts.find(sub);
    if (!account || account.state !== 'active') return undefined;
    const tenant = await tenants.find(account.tenantId);
    return tenant?.active ? { account, tenant } : undefined;
  };
  const load = (ctx: object | undefined, sub: string) => {
    if (!ctx) return read(sub);
    let loaded = readInRequest.get(ctx);
    if (!loaded) readInRequest.set(ctx, (loaded = new Map()));
    let found = loaded.get(sub);
    if (!found) loaded.set(sub, (found = read(sub)));
    return found;
  };

  return async (
    ctx: KoaContextWithOIDC | undefined,
    sub: string,
    token?: unknown,
  ): Promise<ProviderAccount | undefined> => {
    const found = await load(ctx, sub);
    if (!found) return undefined;

    const passwordChangeRequired = accounts.requiresPasswordChange(found.account);
    if (token !== undefined && passwordChangeRequired) return undefined;
    return new ProviderAccount(found.account, found.tenant, passwordChangeRequired);
  };
}

interface Loaded {
  account: Account;
  tenant: Tenant;
}
