/**
 * Koa wiring. The provider is itself a Koa application; `provider.use` puts our middleware
 * in front of its router: request ids and logs, security headers, error pages, and our
 * routes (interaction pages, health, assets).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider';

import { asUnavailable, UNAVAILABLE_RETRY_AFTER_SECONDS } from '../db/connection.ts';
import { AppError } from '../errors.ts';
import { offlineAccessWithoutConsentPage } from '../oidc/grants.ts';
import { awaitProviderEventWrites } from '../oidc/provider.ts';
import type { Logger } from '../log.ts';
import { interactionRoutes, type InteractionDeps } from './interactions.ts';
import { canonicalHost, securityHeaders } from './security.ts';
import { hasText, pageLanguage, translator, type Views } from './views.ts';

export interface HttpDeps extends InteractionDeps {
  log: Logger;
  /** The issuer URL: requests for any other host are redirected or refused. */
  issuer: string;
  views: Views;
  /** Resolves when the database answers a ping. */
  databaseReady: () => Promise<boolean>;
  /** The console: sign-in, self-service and admin pages, the admin API. */
  console: Router;
  /** Routes mounted only in some setups (the demo relying party). */
  extraRoutes?: Router;
}

const asset = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../interactions/assets/${name}`, import.meta.url)));
const assets: Record<string, { type: string; body: Buffer }> = {
  '/assets/style.css': { type: 'text/css', body: asset('style.css') },
  '/assets/console.js': { type: 'application/javascript', body: asset('console.js') },
};

/** Adds our middleware and routes to the provider and returns it. */
export function mountHttp(provider: Provider, deps: HttpDeps): Provider {
  provider.use(requestLog(deps.log));
  provider.use(awaitProviderEventWrites);
  provider.use(securityHeaders());
  provider.use(errorPages(deps));
  provider.use(canonicalHost(deps.issuer));
  provider.use(offlineAccessWithoutConsentPage);

  const routes = interactionRoutes(deps);
  const site = new Router();
  site.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  site.get('/readyz', async (ctx) => {
    const ready = await deps.databaseReady();
    ctx.status = ready ? 200 : 503;
    if (!ready) ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    ctx.body = { status: ready ? 'ok' : 'database unavailable' };
  });
  // No icon: an empty answer instead of a 404 page for every browser's request.
  site.get('/favicon.ico', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.status = 204;
  });
  for (const [path, { type, body }] of Object.entries(assets)) {
    site.get(path, (ctx) => {
      ctx.type = type;
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.body = body;
    });
  }

  // OIDC Core §3.1.2.1 and RP-Initiated Logout §2 let a relying party use POST here. The
  // library serves POST only together with SameSite=None session cookies
  // (`enableHttpPostMethods`), which would give up the cookies' CSRF protection; so these
  // endpoints answer GET only, and a POST gets 405 instead of a misleading 404.
  for (const path of ['/auth', '/session/end']) {
    site.post(path, (ctx) => {
      ctx.set('Allow', 'GET, HEAD');
      throw new AppError(405, 'error.method_not_allowed', { detail: `POST ${path}` });
    });
  }

  provider.use(site.routes());
  provider.use(deps.console.routes());
  if (deps.extraRoutes) provider.use(deps.extraRoutes.routes());
  provider.use(routes.routes());
  provider.use(routes.allowedMethods());
  return provider;
}

/** A request id and a child logger per request; one line per finished request. */
function requestLog(log: Logger) {
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = log.child({ request_id: requestId });
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      (ctx.state.log as Logger).info(
        { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 10) / 10 },
        'request finished',
      );
    }
  };
}

/**
 * Errors on our own routes become German pages: an expired interaction, a CSRF failure,
 * an over-large form, and a database that cannot be reached (503 with `Retry-After`).
 * Anything unexpected is logged and shown as a generic error, never with internals. The
 * provider's own endpoints render errors through `renderError`.
 */
function errorPages(deps: HttpDeps) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if ((ctx.status === 404 || ctx.status === 405) && ctx.body == null) {
        const key = ctx.status === 404 ? 'error.not_found' : 'error.method_not_allowed';
        throw new AppError(ctx.status, key, { detail: `${ctx.method} ${ctx.path}` });
      }
      // RFC 9110 §10.2.3: a 503 says when to come back. The provider answers its own
      // endpoints' refusals (`temporarily_unavailable`, oidc/provider.ts) without it.
      if (ctx.status === 503 && !ctx.response.get('Retry-After')) {
        ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
        (ctx.state.log as Logger).warn({ error_code: 'service.unavailable' }, 'request refused');
      }
    } catch (caught) {
      const error = asUnavailable(caught);
      const t = translator(pageLanguage(ctx));
      const log = ctx.state.log as Logger;
      let status = 500;
      let key = 'error.server_error';
      if (error instanceof oidcErrors.SessionNotFound) {
        [status, key] = [400, 'error.interaction_expired'];
      } else if (error instanceof AppError) {
        [status, key] = [error.status, hasText(error.code) ? error.code : 'error.generic'];
        // A refusal for want of capacity or database is a degradation worth a warning.
        log[status >= 500 ? 'warn' : 'info'](
          { error_code: error.code, detail: error.detail },
          'request refused',
        );
        if (error.retryAfterSeconds !== undefined)
          ctx.set('Retry-After', String(error.retryAfterSeconds));
      } else if ((error as { status?: number }).status === 413) {
        [status, key] = [413, 'error.too_large'];
      } else if (isClientError(error)) {
        [status, key] = [(error as { status: number }).status, 'error.generic'];
      } else {
        log.error({ err: error }, 'unhandled error');
      }
      ctx.status = status;
      if (ctx.accepts('html', 'json') === 'json') {
        ctx.body = { error: key };
        return;
      }
      const section = ctx.path.split('/')[1];
      deps.views.render(ctx, 'error', {
        title: t('error.title'),
        message: t(key),
        code: status >= 500 ? key : null,
        // A refusal inside the console leads back into it, not to a dead end.
        back: section === 'admin' || section === 'account' ? '/account' : null,
      });
    }
  };
}

function isClientError(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  return (
    typeof status === 'number' &&
    status >= 400 &&
    status < 500 &&
    (error as { expose?: boolean }).expose === true
  );
}
