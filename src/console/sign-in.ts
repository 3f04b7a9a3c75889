/**
 * Signing in to the console (`/admin`, `/account`) through the provider's own sign-in:
 * the console is a first-party client, so lockout, expiry and the forced password change
 * apply to admins exactly as to everybody else. The code flow runs with PKCE like any
 * relying party's; only the code is redeemed in-process, against the provider's stored
 * authorization code, instead of over HTTP: the issuer's public address need not be
 * reachable from inside the server (behind a TLS proxy it usually is not).
 */
import { createHash, randomBytes } from 'node:crypto';

import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Db } from 'mongodb';
import type Provider from 'oidc-provider';

import type { Account } from '../accounts/model.ts';
import type { AccountService } from '../accounts/service.ts';
import type { RequestContext } from '../audit/trail.ts';
import { AppError, conflict } from '../errors.ts';
import { PendingLogins } from '../http/pending-logins.ts';
import { renewCsrfSecret, verifyCsrf } from '../http/security.ts';
import { pageLanguage, translator, type Views } from '../http/views.ts';
import { revokeGrantRecords } from '../oidc/adapter.ts';
import type { ClientRegistry } from '../oidc/clients.ts';
import type { Tenant } from '../tenants/model.ts';
import type { ConsoleSession, ConsoleSessions } from './sessions.ts';

export const CONSOLE_CLIENT_ID = 'flueag-idp-console';
const SESSION_COOKIE = 'flueag.console';

/** The person signed in to the console, checked afresh for every request. */
export interface ConsoleUser {
  account: Account;
  tenant: Tenant;
  session: ConsoleSession;
}

export interface ConsoleDeps {
  provider: Provider;
  db: Db;
  issuer: string;
  accounts: AccountService;
  sessions: ConsoleSessions;
  views: Views;
  interactionTtlSeconds: number;
}

export const consoleRedirectUris = (issuer: string) => ({
  redirectUri: `${issuer}/console/callback`,
  postLogoutRedirectUri: `${issuer}/console/signed-out`,
});

/**
 * Registers the console as a confidential client whose secret nobody holds, so its codes
 * can be redeemed only here, never at the token endpoint; on later starts its URIs follow
 * the issuer.
 */
export async function ensureConsoleClient(clients: ClientRegistry, issuer: string) {
  const system: RequestContext = { actor: { kind: 'system' } };
  const { redirectUri, postLogoutRedirectUri } = consoleRedirectUris(issuer);
  const uris = { redirectUris: [redirectUri], postLogoutRedirectUris: [postLogoutRedirectUri] };
  // The console's URIs are the issuer's own: plain http is as safe as the issuer itself.
  const own = { ownOrigin: new URL(issuer).origin };
  if (!(await clients.exists(CONSOLE_CLIENT_ID))) {
    try {
      await clients.add(
        { clientId: CONSOLE_CLIENT_ID, clientName: 'Kontoverwaltung', ...uris, public: false },
        system,
        own,
      );
      return;
    } catch (error) {
      // Another instance registered it in the same moment.
      if (!(error instanceof AppError && error.code === 'client.exists')) throw error;
    }
  }
  await clients.setRedirectUris(CONSOLE_CLIENT_ID, uris, system, own);
}

/** A path of the console to return to after signing in; anything else becomes `/account`. */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || value.length > 1000) return '/account';
  if (!/^\/(admin|account)(\/[^\s\\]*)?(\?[^\s\\]*)?$/.test(value) || value.includes('//'))
    return '/account';
  return value;
}

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

export class ConsoleSignIn {
  readonly #deps: ConsoleDeps;
  readonly #pending: PendingLogins;

  constructor(deps: ConsoleDeps) {
    this.#deps = deps;
    this.#pending = new PendingLogins({
      cookie: 'flueag.console_login',
      path: '/console',
      maxAgeMs: deps.interactionTtlSeconds * 1000,
    });
  }

  /** The signed-in person of this request, or undefined (ending a session that is void). */
  async user(ctx: Context): Promise<ConsoleUser | undefined> {
    const { sessions, provider, accounts } = this.#deps;
    const token = ctx.cookies.get(SESSION_COOKIE, { signed: true });
    const session = await sessions.find(token);
    if (!session) return undefined;

    const grant = await provider.Grant.find(session.grantId);
    const acting =
      grant?.accountId === session.accountId ? await accounts.acting(session.accountId) : undefined;
    // A deactivated account, an expired password or a revoked grant all lead back to the
    // sign-in, which says why or asks for the new password.
    if (!acting) {
      await sessions.close(token);
      return undefined;
    }
    return { ...acting, session };
  }

  /** Middleware: `ctx.state.console` is the signed-in person, or the browser goes to sign in. */
  required() {
    return async (ctx: Context, next: Next) => {
      const user = await this.user(ctx);
      if (!user) {
        const back =
          ctx.method === 'GET' ? ctx.originalUrl : ctx.path.split('/').slice(0, 2).join('/');
        ctx.status = 303;
        ctx.redirect(`/console/login?return=${encodeURIComponent(safeReturnPath(back))}`);
        return;
      }
      ctx.state.console = user;
      await next();
    };
  }

  routes(): Router {
    const router = new Router();
    const { issuer, sessions, views } = this.#deps;
    const { redirectUri, postLogoutRedirectUri } = consoleRedirectUris(issuer);

    router.get('/console/login', async (ctx) => {
      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(16).toString('base64url');
      this.#pending.add(ctx, {
        state,
        verifier,
        startedAt: Date.now(),
        returnTo: safeReturnPath(ctx.query.return),
      });
      const url = new URL('/auth', issuer);
      url.search = new URLSearchParams({
        client_id: CONSOLE_CLIENT_ID,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: 'openid',
        // Every console sign-in asks for the password, even with a provider session: the
        // console's own sign-out may have left that session open ("stay signed in").
        prompt: 'login',
        state,
        code_challenge: s256(verifier),
        code_challenge_method: 'S256',
        ...(pageLanguage(ctx) === 'en' ? { ui_locales: 'en' } : {}),
      }).toString();
      ctx.status = 303;
      ctx.redirect(url.href);
    });

    router.get('/console/callback', async (ctx) => {
      const t = translator(pageLanguage(ctx));
      const login = this.#pending.take(ctx, ctx.query.state);
      const code = typeof ctx.query.code === 'string' ? ctx.query.code : undefined;
      if (!login || !code) {
        const key =
          ctx.query.error === 'access_denied' ? 'console.access_denied' : 'console.state_unknown';
        ctx.status = 400;
        return views.render(ctx, 'console/signed-out', {
          title: t('console.sign_in_failed'),
          message: t(key),
        });
      }

      const signedIn = await this.#redeem(code, login.verifier, redirectUri);
      if (!signedIn) {
        ctx.status = 400;
        return views.render(ctx, 'console/signed-out', {
          title: t('console.sign_in_failed'),
          message: t('console.state_unknown'),
        });
      }
      const token = await sessions.open(signedIn);
      renewCsrfSecret(ctx);
      ctx.cookies.set(SESSION_COOKIE, token, {
        httpOnly: true,
        sameSite: 'lax',
        signed: true,
        secure: ctx.secure,
        path: '/',
      });
      ctx.status = 303;
      ctx.redirect(login.returnTo ?? '/account');
    });

    router.post('/console/logout', async (ctx) => {
      verifyCsrf(ctx, (ctx.request.body as Record<string, unknown> | undefined)?.csrf);
      const token = ctx.cookies.get(SESSION_COOKIE, { signed: true });
      await sessions.close(token);
      ctx.cookies.set(SESSION_COOKIE, null, {
        httpOnly: true,
        sameSite: 'lax',
        signed: true,
        secure: ctx.secure,
        path: '/',
      });
      // Ends the provider's session too (RP-initiated logout), after its confirmation page.
      const url = new URL('/session/end', issuer);
      url.search = new URLSearchParams({
        client_id: CONSOLE_CLIENT_ID,
        post_logout_redirect_uri: postLogoutRedirectUri,
      }).toString();
      ctx.status = 303;
      ctx.redirect(url.href);
    });

    router.get('/console/signed-out', (ctx) => {
      const t = translator(pageLanguage(ctx));
      views.render(ctx, 'console/signed-out', {
        title: t('logged_out.title'),
        message: t('console.signed_out'),
      });
    });

    return router;
  }

  /**
   * Redeems an authorization code of the console as the token endpoint would: issued to the
   * console for this redirect URI, unexpired, PKCE verifier matching, used once (a second
   * use revokes the grant, RFC 6749 §4.1.2), and its grant still there.
   */
  async #redeem(value: string, verifier: string, redirectUri: string) {
    const { provider, db } = this.#deps;
    const code = await provider.AuthorizationCode.find(value);
    if (!code || code.clientId !== CONSOLE_CLIENT_ID || code.redirectUri !== redirectUri)
      return undefined;
    // The adapter returns the consumption time with a used code; the types leave it out.
    if ((code as { consumed?: number }).consumed) {
      if (code.grantId) await revokeGrantRecords(db, code.grantId);
      return undefined;
    }
    if (
      code.isExpired ||
      code.codeChallengeMethod !== 'S256' ||
      code.codeChallenge !== s256(verifier)
    )
      return undefined;
    try {
      await code.consume();
    } catch {
      return undefined;
    }

    const grant = code.grantId ? await provider.Grant.find(code.grantId) : undefined;
    if (!grant || grant.accountId !== code.accountId || grant.clientId !== CONSOLE_CLIENT_ID)
      return undefined;
    return {
      accountId: String(code.accountId),
      grantId: String(code.grantId),
      sessionUid: code.sessionUid ?? null,
    };
  }
}

/** The console user of a request that passed `required()`. */
export function consoleUser(ctx: Context): ConsoleUser {
  const user = ctx.state.console as ConsoleUser | undefined;
  if (!user) throw conflict('console.not_signed_in');
  return user;
}
