/**
 * A minimal relying party at `/demo`, mounted only for the embedded demo: it lets a person
 * who just ran `npm start` sign in through the real code flow with PKCE and see the claims
 * and scopes the provider issued. It is an ordinary openid-client relying party that talks
 * to this server over HTTP, as the reporting application would.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';

import type { Config } from '../config.ts';
import type { Views } from '../http/views.ts';
import { pageLanguage, translator } from '../http/views.ts';

export const DEMO_CLIENT_ID = 'demo-rp';
const STATE_COOKIE = 'flueag.demo';
const SCOPE = 'openid profile email meldeverfahren zahlungsmitteilungen offline_access';

export const demoRedirectUris = (issuer: string) => ({
  redirectUri: `${issuer}/demo/callback`,
  postLogoutRedirectUri: `${issuer}/demo`,
});

export function demoRelyingParty(config: Config, views: Views): Router {
  const router = new Router();
  const { redirectUri, postLogoutRedirectUri } = demoRedirectUris(config.issuer);
  const t = (ctx: Context) => translator(pageLanguage(ctx));
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

  router.get('/demo', (ctx) => {
    views.render(ctx, 'demo', {
      title: t(ctx)('demo.title'),
      claims: null,
      scope: null,
      logoutUrl: null,
    });
  });

  router.get('/demo/login', async (ctx) => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    ctx.cookies.set(STATE_COOKIE, JSON.stringify({ verifier, state }), {
      httpOnly: true,
      sameSite: 'lax',
      signed: true,
      secure: ctx.secure,
      path: '/demo',
    });
    const url = oidc.buildAuthorizationUrl(await relyingParty(), {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    ctx.redirect(url.href);
  });

  router.get('/demo/callback', async (ctx) => {
    const saved = ctx.cookies.get(STATE_COOKIE, { signed: true });
    if (!saved) return ctx.redirect('/demo');
    const { verifier, state } = JSON.parse(saved) as { verifier: string; state: string };
    ctx.cookies.set(STATE_COOKIE, null, { path: '/demo', signed: true });

    const configuration = await relyingParty();
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(configuration, new URL(ctx.url, config.issuer), {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
    } catch (error) {
      const code = (error as { error?: string }).error ?? 'server_error';
      ctx.status = 400;
      return views.render(ctx, 'demo', {
        title: t(ctx)('demo.title'),
        claims: null,
        scope: null,
        logoutUrl: null,
        error:
          code === 'access_denied'
            ? t(ctx)('demo.access_denied')
            : `${t(ctx)('demo.failed_generic')} ${code}`,
      });
    }
    const logoutUrl = oidc.buildEndSessionUrl(configuration, {
      id_token_hint: tokens.id_token ?? '',
      post_logout_redirect_uri: postLogoutRedirectUri,
    });
    views.render(ctx, 'demo', {
      title: t(ctx)('demo.title'),
      claims: tokens.claims() ?? {},
      scope: tokens.scope ?? '',
      refresh: tokens.refresh_token !== undefined,
      logoutUrl: logoutUrl.href,
    });
  });

  return router;
}
