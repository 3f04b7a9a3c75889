/**
 * The oidc-provider configuration of design section 4. Each option names the upstream
 * documentation it follows (https://github.com/panva/node-oidc-provider/blob/main/docs/README.md,
 * written DOC#anchor below).
 */
import type { Context, Next } from 'koa';
import type { Db } from 'mongodb';
import Provider, {
  errors,
  type Adapter,
  type Configuration,
  type KoaContextWithOIDC,
} from 'oidc-provider';

import type { AccountService } from '../accounts/service.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { Config } from '../config.ts';
import { isDatabaseUnavailable } from '../db/connection.ts';
import type { Views } from '../http/views.ts';
import { hasText, pageLanguage, translator } from '../http/views.ts';
import type { Logger } from '../log.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import { permissions } from '../accounts/model.ts';
import { accountFinder, claimsByScope, grantedPermissions } from './account-claims.ts';
import { MongoAdapter } from './adapter.ts';
import { ADMIN_SCOPE, loadGrant } from './grants.ts';
import { providerCookieKeys, providerJwks, type KeyMaterial } from './keys.ts';
import { interactionPrompts } from './policy.ts';

export interface ProviderDeps {
  config: Config;
  keys: KeyMaterial;
  db: Db;
  accounts: AccountService;
  tenants: TenantDirectory;
  audit: AuditTrail;
  views: Views;
  log: Logger;
}

/** The default signing algorithm; RS256 stays available to clients that register it. */
export const DEFAULT_SIGNING_ALG = 'ES256';

/**
 * An unreachable database, as the provider answers it: 503 `temporarily_unavailable`. RFC
 * 6749 §4.1.2.1 defines the code for the authorization endpoint (where it reaches the relying
 * party on its redirect URI); the token, userinfo, introspection and revocation endpoints
 * answer it too, with the 503 status and `Retry-After` that tell any HTTP client to retry,
 * rather than a `server_error` 500 that reads as a fault.
 */
class DatabaseUnavailable extends errors.OIDCProviderError {
  constructor(cause: unknown) {
    super(503, 'temporarily_unavailable', { cause });
    // The library hides every error of status 500 and above behind `server_error`.
    this.expose = true;
    this.error_description = 'the service is temporarily unavailable, retry later';
  }
}

const metUnavailable = Symbol('metUnavailable');

/**
 * `work` with an unreachable database turned into `DatabaseUnavailable`. The provider
 * reaches the database only through its adapter and `findAccount`, so guarding those two
 * lets the library answer every endpoint in its own format. A request of the provider that
 * has met an unreachable database does not wait for it a second time: the library's error
 * handler of the authorization endpoint looks the client up again, which would double the
 * time before the answer.
 */
async function guarded<T>(work: () => Promise<T>): Promise<T> {
  const state = Provider.ctx?.state as { [metUnavailable]?: unknown } | undefined;
  if (state?.[metUnavailable] !== undefined) throw new DatabaseUnavailable(state[metUnavailable]);
  try {
    return await work();
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    if (state) state[metUnavailable] = error;
    throw new DatabaseUnavailable(error);
  }
}

/** The adapter with every call guarded. */
function guardedAdapter(adapter: MongoAdapter): Adapter {
  return {
    upsert: (id, payload, expiresIn) => guarded(() => adapter.upsert(id, payload, expiresIn)),
    find: (id) => guarded(() => adapter.find(id)),
    findByUid: (uid) => guarded(() => adapter.findByUid(uid)),
    findByUserCode: (userCode) => guarded(() => adapter.findByUserCode(userCode)),
    consume: (id) => guarded(() => adapter.consume(id)),
    destroy: (id) => guarded(() => adapter.destroy(id)),
    revokeByGrantId: (grantId) => guarded(() => adapter.revokeByGrantId(grantId)),
  };
}

export function createProvider(deps: ProviderDeps): Provider {
  const { config, keys, db } = deps;
  const grantOwners = new GrantOwners();
  const findAccountUnguarded = accountFinder(deps.accounts, deps.tenants);
  const findAccount: typeof findAccountUnguarded = (ctx, sub, token) =>
    guarded(() => findAccountUnguarded(ctx, sub, token));

  const configuration: Configuration = {
    adapter: (name: string) =>
      guardedAdapter(
        new MongoAdapter(db, name, {
          onGrantDeleted: (grantId, accountId) =>
            grantOwners.note(Provider.ctx, grantId, accountId),
          // A parallel reuse is caught by the adapter, not the library: report its revocation
          // as the library reports a sequential one.
          onReuse: (grantId) => {
            const ctx = Provider.ctx;
            if (ctx) provider.emit('grant.revoked', ctx, grantId);
          },
        }),
      ),
    // Clients live in the database (the adapter's Client model), managed by the CLI.
    clients: [],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: DEFAULT_SIGNING_ALG,
    },
    // DOC#findaccount; the account's state decides, see account-claims.ts.
    findAccount: findAccount as unknown as Configuration['findAccount'],
    // DOC#claims; the permission scopes appear here so they are static scopes too, and an
    // opaque access token obtained without `resource` lists them (design section 4).
    claims: claimsByScope,
    // `admin`: the admin JSON API, granted to local admins and operators only (grants.ts).
    scopes: ['openid', 'offline_access', ADMIN_SCOPE],
    // DOC#conformidtokenclaims: ID tokens carry the scope claims, as userinfo does.
    conformIdTokenClaims: false,
    // DOC#jwks: the signing keys first, then the staged and retired ones (keys.ts).
    jwks: providerJwks(keys) as Configuration['jwks'],
    // DOC#cookies: signed with Keygrip keys, the signing one first; `Secure` follows
    // ctx.secure.
    cookies: {
      keys: providerCookieKeys(keys),
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    responseTypes: ['code'],
    // DOC#allowomittingsingleregisteredredirecturi: OIDC Core 1.0 §3.1.2.1 requires
    // redirect_uri in every authentication request; without it the error page is shown.
    allowOmittingSingleRegisteredRedirectUri: false,
    // DOC#clientauthmethods: the methods a registered client can use (clients.ts registers
    // client_secret_basic or none; the library accepts a basic client's secret in the body
    // too). Without this list discovery announces client_secret_jwt and private_key_jwt,
    // for which no client can be registered.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    // DOC#pkce: required for every client; the library accepts only S256.
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      // DOC#featuresintrospection: confidential clients (the reporting API among them) may
      // introspect any token; a public client only its own. A token of an account that
      // `findAccount` no longer serves (deactivated, or its password must change) is
      // inactive, as it is at the userinfo endpoint.
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) =>
          (client.clientAuthMethod !== 'none' || token.clientId === client.clientId) &&
          (!('accountId' in token) ||
            (await findAccount(ctx, token.accountId, token)) !== undefined),
      },
      // DOC#featuresrevocation: a client revokes only tokens issued to it.
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          deps.views.render(ctx, 'logout', {
            title: translator(pageLanguage(ctx))('logout.title'),
            form,
          });
        },
        postLogoutSuccessSource: async (ctx) => {
          deps.views.render(ctx, 'logged-out', {
            title: translator(pageLanguage(ctx))('logged_out.title'),
          });
        },
      },
      // DOC#featuresresourceindicators: `resource=<reporting API>` yields a JWT for it.
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: () => false,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== config.reportingApiResource) throw new errors.InvalidTarget();
          return {
            scope: permissions.join(' '),
            audience: indicator,
            accessTokenTTL: config.ttl.accessToken,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: DEFAULT_SIGNING_ALG } },
          };
        },
      },
    },
    // DOC#extratokenclaims: the reporting API reads tenant and permissions offline.
    extraTokenClaims: async (ctx, token) => {
      if (!('accountId' in token) || !token.accountId) return undefined;
      const account = await findAccount(ctx, token.accountId);
      if (!account) return undefined;
      const claims = account.claims('userinfo', token.scope ?? '');
      return {
        tenant_id: claims.tenant_id,
        permissions: grantedPermissions(account.permissions, token.scope),
      };
    },
    loadExistingGrant: loadGrant,
    interactions: {
      policy: interactionPrompts({ sessionSeconds: config.ttl.session }),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // DOC#rotaterefreshtoken: every use rotates; a reused one revokes the grant (the library).
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: config.ttl.accessToken,
      AuthorizationCode: 60,
      IdToken: config.ttl.idToken,
      // Absolute lifetime: rotation keeps `iiat`, the first issue time of the chain.
      RefreshToken: (_ctx, token) => {
        const iiat = (token as unknown as { iiat?: number }).iiat ?? Math.floor(Date.now() / 1000);
        return Math.max(1, iiat + config.ttl.refreshToken - Math.floor(Date.now() / 1000));
      },
      Session: (_ctx, session) => sessionLifetime(config, session),
      Interaction: config.ttl.interaction,
      // A Grant outlives the refresh tokens issued under it (see grants.ts).
      Grant: config.ttl.refreshToken + config.ttl.interaction,
    },
    renderError: async (ctx, out, error) => renderProviderError(deps, ctx, out, error),
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustedProxyHops > 0;
  if (config.trustedProxyHops > 0) provider.maxIpsCount = config.trustedProxyHops;
  listen(provider, deps, grantOwners);
  return provider;
}

/**
 * The seconds a sign-in session lives from now (DOC#ttl). The library saves the session
 * again with this lifetime at every request that uses it, so it ends `sessionIdle` after its
 * last use (ASVS 5.0 7.3.1), and never later than `session` after the sign-in (7.3.2).
 */
function sessionLifetime(config: Config, session: { loginTs?: number }): number {
  const now = Math.floor(Date.now() / 1000);
  const absoluteEnd = (session.loginTs ?? now) + config.ttl.session;
  return Math.max(1, Math.min(config.ttl.sessionIdle, absoluteEnd - now));
}

/** The German error page of browser-facing protocol errors (DOC#rendererror). */
function renderProviderError(
  deps: ProviderDeps,
  ctx: KoaContextWithOIDC,
  out: { error: string; error_description?: string },
  error: Error,
) {
  const t = translator(pageLanguage(ctx));
  const key =
    out.error === 'temporarily_unavailable' ? 'service.unavailable' : `error.${out.error}`;
  const isRedirectUri =
    out.error === 'invalid_redirect_uri' || /redirect_uri/.test(out.error_description ?? '');
  const message = isRedirectUri
    ? t('error.invalid_redirect_uri')
    : hasText(key)
      ? t(key)
      : t('error.generic');
  if (out.error === 'server_error')
    deps.log.error({ err: error, request_id: ctx.state.requestId }, 'provider error page');
  deps.views.render(ctx, 'error', {
    title: t('error.title'),
    message,
    hint: t('error.back'),
    code: out.error,
  });
}

/** Log and audit lines from the provider's events (docs/events.md). */
function listen(provider: Provider, deps: ProviderDeps, grantOwners: GrantOwners) {
  const { log } = deps;

  provider.on('server_error', (ctx: KoaContextWithOIDC, error: Error) => {
    log.error(
      { err: error, request_id: ctx.state.requestId, event: 'provider.server_error' },
      'provider server error',
    );
  });
  provider.on(
    'grant.error',
    (ctx: KoaContextWithOIDC, error: Error & { error_description?: string }) => {
      log.info(
        {
          event: 'grant.failed',
          error: error.message,
          detail: error.error_description,
          client_id: ctx.oidc?.client?.clientId,
          request_id: ctx.state.requestId,
        },
        'token request refused',
      );
    },
  );
  // Revocation by the client, by logout, or by the library after a reused code or a
  // reused refresh token (which revokes the whole grant).
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    beforeResponse(
      ctx,
      auditProviderEvent(
        deps,
        ctx,
        'grant.revoked',
        { grant_id: grantId, route: ctx.oidc?.route },
        grantOwners.of(ctx, grantId),
      ),
    );
  });
  provider.on('access_token.destroyed', () => {
    const ctx = Provider.ctx;
    if (ctx?.oidc?.route === 'revocation')
      beforeResponse(ctx, auditProviderEvent(deps, ctx, 'token.revoked', { type: 'access_token' }));
  });
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    beforeResponse(ctx, auditProviderEvent(deps, ctx, 'logout'));
  });
}

const pendingWrites = Symbol('pendingWrites');

/**
 * The provider's event listeners are synchronous, but what they write belongs to the
 * request: `awaitProviderEventWrites` holds the response until it is stored, so a relying
 * party that has its answer finds the audit event in place.
 */
function beforeResponse(ctx: KoaContextWithOIDC, write: Promise<void>): void {
  const state = ctx.state as { [pendingWrites]?: Promise<void>[] };
  (state[pendingWrites] ??= []).push(write);
}

/** Koa middleware: the response leaves once the writes of the provider's events are done. */
export async function awaitProviderEventWrites(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } finally {
    await Promise.all((ctx.state as { [pendingWrites]?: Promise<void>[] })[pendingWrites] ?? []);
  }
}

/**
 * The accounts of the grants a request deleted: the library announces a revocation by grant
 * id only, once the grant is gone, and the audit trail names the account.
 */
class GrantOwners {
  readonly #byRequest = new WeakMap<object, Map<string, string>>();

  note(ctx: KoaContextWithOIDC | undefined, grantId: string, accountId: string | null): void {
    if (!ctx || !accountId) return;
    let owners = this.#byRequest.get(ctx);
    if (!owners) this.#byRequest.set(ctx, (owners = new Map()));
    owners.set(grantId, accountId);
  }

  of(ctx: KoaContextWithOIDC, grantId: string): string | undefined {
    return this.#byRequest.get(ctx)?.get(grantId);
  }
}

/** One audit event for a provider event, attributed to the account and its tenant. */
async function auditProviderEvent(
  deps: ProviderDeps,
  ctx: KoaContextWithOIDC,
  action: string,
  details?: Record<string, unknown>,
  knownAccountId?: string,
): Promise<void> {
  const entities = ctx.oidc?.entities as
    Record<string, { accountId?: string } | undefined> | undefined;
  const accountId =
    knownAccountId ??
    ctx.oidc?.session?.accountId ??
    entities?.RefreshToken?.accountId ??
    entities?.AccessToken?.accountId ??
    entities?.AuthorizationCode?.accountId ??
    null;
  try {
    const account = accountId ? await deps.accounts.find(accountId) : null;
    const tenantId = account?.tenantId ?? null;
    await deps.audit.record(
      {
        requestId: ctx.state.requestId as string | undefined,
        ip: ctx.ip,
        // At the token and revocation endpoints the relying party acts; elsewhere (logout)
        // the person in the browser does.
        actor: ['token', 'revocation'].includes(ctx.oidc?.route ?? '')
          ? { kind: 'client', clientId: ctx.oidc?.client?.clientId ?? null }
          : { kind: 'account', accountId, tenantId },
      },
      {
        tenantId,
        action,
        outcome: 'success',
        target: { accountId, clientId: ctx.oidc?.client?.clientId ?? null },
        ...(details === undefined ? {} : { details }),
      },
    );
  } catch (error) {
    deps.log.error(
      { err: error, event: 'audit.failed', action },
      'audit of a provider event failed',
    );
  }
}
