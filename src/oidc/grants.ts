/**
 * Grants without a consent page: every client is first-party, so each authorization gets a
 * fresh Grant holding exactly the requested scopes the account may have (design 3.3).
 *
 * A fresh Grant per authorization, instead of extending the session's Grant, keeps a
 * withdrawn permission from lingering (Grants are additive) and lets refresh tokens run for
 * their full lifetime, which `ttl.Grant` would otherwise cap from the first sign-in on.
 */
import type { Context, Next } from 'koa';
import { errors, type Grant, type KoaContextWithOIDC } from 'oidc-provider';

import { permissions } from '../accounts/model.ts';
import { ProviderAccount } from './account-claims.ts';
import { mayUseAdminApi } from './clients.ts';

const permissionScopes = new Set<string>(permissions);

/**
 * The scope of the admin JSON API (`/admin/api`): granted only to local admins and
 * operators, and only through a client registered for the admin API, so a relying party
 * that a local admin signs in to gets no admin powers, whatever it asks for.
 */
export const ADMIN_SCOPE = 'admin';

/** `loadExistingGrant` of the provider configuration. */
export async function loadGrant(ctx: KoaContextWithOIDC): Promise<Grant | undefined> {
  const { oidc } = ctx;
  const account = oidc.account;
  if (!(account instanceof ProviderAccount) || !oidc.client) return undefined;

  // The password-change prompt comes first; the Grant is made once it is done.
  if (account.passwordChangeRequired) return undefined;

  // Resuming after the (automatic) consent step: the Grant made before it is the one.
  const consented = oidc.result?.consent?.grantId;
  if (typeof consented === 'string') {
    const grant = await oidc.provider.Grant.find(consented);
    if (grant?.accountId === account.accountId) return grant;
  }

  const requested = oidc.requestParamScopes;
  const requestedPermissions = [...requested].filter((scope) => permissionScopes.has(scope));
  const held = new Set<string>(account.permissions);
  if (requestedPermissions.length > 0 && !requestedPermissions.some((scope) => held.has(scope))) {
    throw new errors.AccessDenied('the account holds none of the requested permissions');
  }
  const adminAllowed = account.administrator && mayUseAdminApi(oidc.client);
  const allowed = (scope: string) =>
    scope === ADMIN_SCOPE ? adminAllowed : !permissionScopes.has(scope) || held.has(scope);

  const grant = new oidc.provider.Grant({
    accountId: account.accountId,
    clientId: oidc.client.clientId,
  });
  const oidcScopes = [...oidc.requestParamOIDCScopes];
  grant.addOIDCScope(oidcScopes.filter(allowed));
  grant.rejectOIDCScope(oidcScopes.filter((scope) => !allowed(scope)));
  grant.addOIDCClaims([...oidc.requestParamClaims]);

  for (const [indicator, resourceServer] of Object.entries(oidc.resourceServers ?? {})) {
    const scopes = [...requested].filter((scope) => resourceServer.scopes.has(scope));
    grant.addResourceScope(indicator, scopes.filter(allowed));
    grant.rejectResourceScope(
      indicator,
      scopes.filter((scope) => !allowed(scope)),
    );
  }

  await grant.save();
  return grant;
}

/**
 * Lets `offline_access` yield a refresh token without `prompt=consent`. The library drops
 * `offline_access` from requests without `prompt=consent` (OIDC Core 1.0 §11, which allows
 * other conditions to permit offline access); for our first-party clients that condition is
 * met, so such a request is treated as carrying `prompt=consent`. The consent step it causes
 * is passed automatically, without a page.
 */
export async function offlineAccessWithoutConsentPage(ctx: Context, next: Next): Promise<void> {
  const { scope, prompt = '' } = ctx.query;
  if (
    ctx.method === 'GET' &&
    ctx.path === '/auth' &&
    typeof scope === 'string' &&
    typeof prompt === 'string' &&
    scope.split(' ').includes('offline_access')
  ) {
    // `prompt=none` stays as it is: it must not be combined with anything (OIDC Core §3.1.2.1).
    const prompts = prompt.split(' ').filter(Boolean);
    if (!prompts.includes('none') && !prompts.includes('consent')) {
      ctx.query = { ...ctx.query, prompt: [...prompts, 'consent'].join(' ') };
    }
  }
  await next();
}
