/**
 * A minimal relying party at `/demo`, mounted only for the embedded demo: it lets a person
 * who just ran `npm start` sign in through the real code flow with PKCE and see the claims
 * and scopes the provider issued. It is an ordinary openid-client relying party that talks
 * to this server over HTTP, as the reporting application would. It runs on loopback only:
 * it answers only requests from this machine and only while the issuer is a loopback URL.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import * as oidc from 'openid-client';

import type { Config } from '../config.ts';
import type { Views } from '../http/views.ts';
import { pageLanguage, translator, type Language, type Translate } from '../http/views.ts';
import type { Logger } from '../log.ts';
import { PendingLogins } from '../http/pending-logins.ts';
import { isLoopbackHost } from '../oidc/clients.ts';

export const DEMO_CLIENT_ID = 'demo-rp';
const SCOPE = 'openid profile email meldeverfahren zahlungsmitteilungen offline_access';
/** Claims that count seconds since the epoch (OIDC Core §2, §5.1), shown also as a date. */
const TIME_CLAIMS = new Set(['exp', 'iat', 'auth_time', 'nbf', 'updated_at']);

export const demoRedirectUris = (issuer: string) => ({
  redirectUri: `${issuer}/demo/callback`,
  postLogoutRedirectUri: `${issuer}/demo`,
});

/** True when `issuer` names this machine, the only place the demo is offered. */
export function isLoopbackIssuer(issuer: string): boolean {
  try {
    return isLoopbackHost(new URL(issuer).hostname);
  } catch {
    return false;
  }
}

const t = (ctx: Context) => translator(pageLanguage(ctx));

/** The routes of the demo relying party. */
export function demoRelyingParty(config: Config, views: Views): Router {
  const router = new Router();
  const { redirectUri, postLogoutRedirectUri } = demoRedirectUris(config.issuer);
  const pending = new PendingLogins({
    cookie: 'flueag.demo',
    path: '/demo',
    maxAgeMs: config.ttl.interaction * 1000,
  });
  let discovered: Promise<oidc.Configuration> | undefined;
  const relyingParty = () => {
    discovered ??= oidc
      .discovery(new URL(config.issuer), DEMO_CLIENT_ID, undefined, oidc.None(), {
        ...(config.issuer.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw error;
      });
    return discovered;
  };
  const render = (ctx: Context, data: Record<string, unknown> = {}) =>
    views.render(ctx, 'demo', {
      title: t(ctx)('demo.title'),
      claims: null,
      scope: null,
      logoutUrl: null,
      ...data,
    });
  const showError = (ctx: Context, status: number, error: string) => {
    ctx.status = status;
    render(ctx, { error });
  };

  router.use(onlyLoopback(config.issuer, showError));

  router.get('/demo', (ctx) => render(ctx));

  router.get('/demo/login', async (ctx) => {
    let configuration: oidc.Configuration;
    try {
      configuration = await relyingParty();
    } catch (error) {
      return showError(ctx, 502, failureText(t(ctx), error, ctx.state.log as Logger));
    }

    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    pending.add(ctx, { state, verifier, startedAt: Date.now() });
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    ctx.redirect(url.href);
  });

  router.get('/demo/callback', async (ctx) => {
    const login = pending.take(ctx, ctx.query.state);
    if (!login) return showError(ctx, 400, unknownLoginText(t(ctx), ctx.query.error));

    let configuration: oidc.Configuration;
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      configuration = await relyingParty();
      tokens = await oidc.authorizationCodeGrant(configuration, new URL(ctx.url, config.issuer), {
        pkceCodeVerifier: login.verifier,
        expectedState: login.state,
      });
    } catch (failure) {
      return showError(ctx, 400, failureText(t(ctx), failure, ctx.state.log as Logger));
    }

    const logoutUrl = oidc.buildEndSessionUrl(configuration, {
      id_token_hint: tokens.id_token ?? '',
      post_logout_redirect_uri: postLogoutRedirectUri,
    });
    render(ctx, {
      claims: readableClaims(tokens.claims() ?? {}, pageLanguage(ctx)),
      scope: tokens.scope ?? '',
      refresh: tokens.refresh_token !== undefined,
      logoutUrl: logoutUrl.href,
    });
  });

  return router;
}

/**
 * The demo's client is public and its pages show tokens' contents, so it serves only this
 * machine: a request from elsewhere (the server listens on 0.0.0.0 by default, and a Host
 * header is easily set) or an issuer that is not loopback gets a refusal, not the demo.
 */
function onlyLoopback(
  issuer: string,
  showError: (ctx: Context, status: number, error: string) => void,
) {
  const loopbackIssuer = isLoopbackIssuer(issuer);
  return async (ctx: Context, next: Next) => {
    if (loopbackIssuer && isLoopbackAddress(ctx.req.socket.remoteAddress)) return next();
    (ctx.state.log as Logger).warn(
      { event: 'demo.refused', loopback_issuer: loopbackIssuer },
      'demo request refused: not from this machine',
    );
    showError(ctx, 403, t(ctx)('demo.loopback_only'));
  };
}

const isLoopbackAddress = (address: string | undefined) =>
  address !== undefined && (address === '::1' || /^(::ffff:)?127\./.test(address));

/** An error code as RFC 6749 §4.1.2.1 allows it; anything else is not shown to the reader. */
const safeCode = (code: string) => (/^[\w.-]{1,64}$/.test(code) ? code : 'invalid_response');

/** The German sentence for an error the authorization endpoint sent to the callback. */
function authorizationErrorText(t: Translate, code: string): string {
  return code === 'access_denied'
    ? t('demo.access_denied')
    : t('demo.authorization_failed', { code: safeCode(code) });
}

/**
 * A callback whose state this browser does not hold: reloaded, opened in another browser,
 * older than the interaction lifetime or pushed out by newer tabs. There is nothing to
 * finish, but an error the provider sent is still worth showing.
 */
function unknownLoginText(t: Translate, error: unknown): string {
  return typeof error === 'string' ? authorizationErrorText(t, error) : t('demo.state_unknown');
}

/** The sentence for a callback that could not be completed; unexpected causes are logged. */
function failureText(t: Translate, error: unknown, log: Logger): string {
  if (error instanceof oidc.AuthorizationResponseError) {
    return authorizationErrorText(t, error.error);
  }
  if (error instanceof oidc.ResponseBodyError) {
    return t('demo.exchange_failed', { code: safeCode(error.error) });
  }
  // Name, code and message only: the causes of openid-client errors may hold the response.
  const { name, code, message } = error as { name?: string; code?: string; message?: string };
  log.warn({ event: 'demo.failed', name, code, message }, 'demo sign-in could not be completed');
  return t(error instanceof oidc.ClientError ? 'demo.invalid_response' : 'demo.unreachable');
}

/** The ID token claims, with times also as a date in the page language, German time zone. */
function readableClaims(
  claims: Record<string, unknown>,
  language: Language,
): Record<string, unknown> {
  const format = new Intl.DateTimeFormat(language === 'en' ? 'en-GB' : 'de-DE', {
    dateStyle: 'medium',
    timeStyle: 'long',
    timeZone: 'Europe/Berlin',
  });
  return Object.fromEntries(
    Object.entries(claims).map(([name, value]) => [
      name,
      TIME_CLAIMS.has(name) && typeof value === 'number'
        ? `${value} (${format.format(value * 1000)})`
        : value,
    ]),
  );
}
