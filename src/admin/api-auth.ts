/**
 * Who is calling the admin JSON API. Two ways in, checked by the rules of the admin pages:
 *
 * - `Authorization: Bearer <access token>`: an opaque access token of this provider carrying
 *   the `admin` scope (granted to local admins and operators only), for automation;
 * - the console session cookie of a signed-in admin, for the console's own scripts; a
 *   state-changing request then needs the CSRF token in `X-CSRF-Token`, because the cookie
 *   is sent by the browser on its own (OWASP CSRF cheat sheet, "custom request header").
 *
 * The account behind either is loaded afresh on every request: a deactivated account, a
 * withdrawn role, a password that must change or a deactivated tenant end access at once.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';

import type { AccountService } from '../accounts/service.ts';
import type { ConsoleSignIn } from '../console/sign-in.ts';
import { AppError } from '../errors.ts';
import { verifyCsrf } from '../http/security.ts';
import { ADMIN_SCOPE } from '../oidc/grants.ts';
import type { AdminService, Administrator } from './service.ts';

export interface ApiAuthDeps {
  provider: Provider;
  accounts: AccountService;
  consoleSignIn: ConsoleSignIn;
  admin: AdminService;
}

/** RFC 6750 §2.1: `Bearer` followed by a b64token. */
const bearerPattern = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A refusal of the credentials, answered with `WWW-Authenticate` (RFC 6750 §3): 401 without
 * usable credentials, 403 with a valid token that lacks the `admin` scope.
 */
export class AuthenticationError extends AppError {
  override name = 'AuthenticationError';
  readonly challenge: string;

  constructor(status: 401 | 403, code: string, challenge: string, detail: string) {
    super(status, code, { detail });
    this.challenge = challenge;
  }
}

const realm = 'realm="flueag-idp admin API"';
const missing = (detail: string) =>
  new AuthenticationError(401, 'token.missing', `Bearer ${realm}`, detail);
const invalidToken = (detail: string) =>
  new AuthenticationError(401, 'token.invalid', `Bearer ${realm}, error="invalid_token"`, detail);

/** The administrator of an API request, or an AppError (401, 403) saying why not. */
export async function apiAdministrator(ctx: Context, deps: ApiAuthDeps): Promise<Administrator> {
  const authorization = ctx.get('authorization');
  if (authorization !== '') return bearerAdministrator(authorization, deps);

  const user = await deps.consoleSignIn.user(ctx);
  if (!user) throw missing('neither a bearer token nor a console session');
  const administrator = deps.admin.actingAdministrator(user.account);
  if (!safeMethods.has(ctx.method)) verifyCsrf(ctx, ctx.get('x-csrf-token') || undefined);
  return administrator;
}

async function bearerAdministrator(
  authorization: string,
  deps: ApiAuthDeps,
): Promise<Administrator> {
  const value = bearerPattern.exec(authorization)?.[1];
  if (!value) throw invalidToken('malformed Authorization header');

  // `find` verifies expiry (with the configured clock tolerance) and the session binding
  // of tokens that expire with their session.
  const token = await deps.provider.AccessToken.find(value);
  if (!token || token.isExpired) throw invalidToken('unknown, revoked or expired token');
  // A DPoP- or certificate-bound token is worthless without its proof (RFC 9449 §7.1).
  if (token.isSenderConstrained()) throw invalidToken('sender-constrained token');

  // Revoking an account's access deletes its grants; a token of a deleted grant is void,
  // as at the userinfo endpoint.
  const grant = token.grantId ? await deps.provider.Grant.find(token.grantId) : undefined;
  if (!grant || grant.accountId !== token.accountId || grant.clientId !== token.clientId)
    throw invalidToken('the grant of the token is gone');
  if (!token.clientId || !(await deps.provider.Client.find(token.clientId)))
    throw invalidToken('the client of the token is gone');

  const acting = await deps.accounts.acting(token.accountId);
  if (!acting) throw invalidToken('the account of the token cannot act');

  const administrator = deps.admin.actingAdministrator(acting.account);
  if (!(token.scope ?? '').split(' ').includes(ADMIN_SCOPE)) {
    throw new AuthenticationError(
      403,
      'token.insufficient_scope',
      `Bearer ${realm}, error="insufficient_scope", scope="${ADMIN_SCOPE}"`,
      'token without the admin scope',
    );
  }
  return administrator;
}
