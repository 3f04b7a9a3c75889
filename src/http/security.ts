/**
 * Security headers (helmet) and CSRF protection of our own forms.
 */
import Tokens from 'csrf';
import type { Context, Middleware } from 'koa';
import helmet from 'koa-helmet';

import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';

/**
 * Headers for every response, provider endpoints included. No inline script is allowed;
 * the provider adds the hash of its own auto-submit script itself. `form-action` is left
 * out on purpose: browsers apply it to the redirects that follow a form post, and the
 * sign-in form's post ends in a redirect to the relying party. HSTS only over TLS (behind
 * the proxy, as TRUST_PROXY and X-Forwarded-Proto say): RFC 6797 §7.2 lets a host send it
 * only on a secure transport.
 */
export function securityHeaders(): Middleware {
  const headers = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    strictTransportSecurity: false,
    // For browsers without CSP level 2, the same as frame-ancestors 'none'.
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
  const hsts = helmet.strictTransportSecurity({ maxAge: 31_536_000, includeSubDomains: true });
  return (ctx, next) => (ctx.secure ? hsts(ctx, () => headers(ctx, next)) : headers(ctx, next));
}

/** Paths a probe may reach under any host name (a load balancer asks by address). */
const hostIndependent = new Set(['/healthz', '/readyz']);

/**
 * Serves only requests addressed to the issuer's host. The provider builds every endpoint
 * URL of its discovery document and every redirect from the request's Host (or, behind a
 * trusted proxy, X-Forwarded-Host); a request with a foreign host would otherwise get a
 * discovery document pointing at that host's `jwks_uri` and token endpoint, which a cache
 * that ignores Host could hand to relying parties (Host header poisoning). A page asked
 * for under another name of this server is redirected to the issuer's; anything else is
 * refused with 421 Misdirected Request (RFC 9110 §15.5.20).
 */
export function canonicalHost(issuer: string): Middleware {
  const canonical = new URL(issuer);
  return async (ctx, next) => {
    if (ctx.host.toLowerCase() === canonical.host || hostIndependent.has(ctx.path)) {
      ctx.state.issuerOrigin = canonical.origin;
      await next();
      return;
    }
    (ctx.state.log as Logger).warn(
      { event: 'request.wrong_host', host: ctx.host, method: ctx.method },
      'request for a host other than the issuer',
    );
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      ctx.status = 308;
      ctx.redirect(new URL(ctx.originalUrl, canonical.origin).href);
      return;
    }
    if (ctx.accepts('html', 'json') === 'html') {
      throw new AppError(421, 'error.wrong_host', { detail: `host ${ctx.host}` });
    }
    ctx.status = 421;
    ctx.body = {
      error: 'invalid_request',
      error_description: 'the request is addressed to a host other than the issuer',
    };
  };
}

const tokens = new Tokens();
const CSRF_COOKIE = 'flueag.csrf';

/**
 * Synchronizer tokens bound to a per-browser secret in an HttpOnly, SameSite=Lax cookie
 * (OWASP CSRF cheat sheet, "signed double submit"). The cookie is signed with the provider's
 * cookie keys, so a sibling domain cannot plant a secret of its own. Lax, not Strict: a
 * sign-in page is reached by a cross-site navigation from the relying party, and a Strict
 * cookie would be missing there, so a second tab would replace the secret of the first and
 * make its form fail. The token in the form is what protects; SameSite only adds depth.
 */
export function csrfToken(ctx: Context): string {
  const secret = ctx.cookies.get(CSRF_COOKIE, { signed: true }) ?? renewCsrfSecret(ctx);
  return tokens.create(secret);
}

/**
 * Gives the browser a new CSRF secret: at every sign-in to the console, so that a token seen
 * before it (on a shared computer, or planted with a cookie) is worthless for the admin
 * forms afterwards. The provider's own sign-in keeps the secret, so that sign-in forms open
 * in other tabs still work.
 */
export function renewCsrfSecret(ctx: Context): string {
  const secret = tokens.secretSync();
  ctx.cookies.set(CSRF_COOKIE, secret, {
    httpOnly: true,
    sameSite: 'lax',
    signed: true,
    secure: ctx.secure,
    path: '/',
  });
  return secret;
}

/**
 * Throws `csrf.invalid` (403) unless `submitted` belongs to this browser's secret and the
 * browser does not say the form came from another site (Origin, Sec-Fetch-Site: OWASP's
 * "verifying origin with standard headers", as a second line behind the token).
 */
export function verifyCsrf(ctx: Context, submitted: unknown): void {
  const secret = ctx.cookies.get(CSRF_COOKIE, { signed: true });
  const origin = ctx.get('origin');
  const site = ctx.get('sec-fetch-site');
  // The issuer's origin, as `canonicalHost` found it; behind a TLS proxy it is the https one.
  const own = (ctx.state.issuerOrigin as string | undefined) ?? ctx.origin;
  // Our pages send no referrer, so browsers send `Origin: null` with their own forms: only
  // a named other origin is foreign.
  const foreign =
    (origin !== '' && origin !== 'null' && origin !== own) ||
    (site !== '' && site !== 'same-origin' && site !== 'none');
  if (foreign || !secret || typeof submitted !== 'string' || !tokens.verify(secret, submitted)) {
    throw new AppError(403, 'csrf.invalid', foreign ? { detail: `origin ${origin || site}` } : {});
  }
}
