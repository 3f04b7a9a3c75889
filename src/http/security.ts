/**
 * Security headers (helmet) and CSRF protection of our own forms.
 */
import Tokens from 'csrf';
import type { Context, Middleware } from 'koa';
import helmet from 'koa-helmet';

import { AppError } from '../errors.ts';

/**
 * Headers for every response, provider endpoints included. No inline script is allowed;
 * the provider adds the hash of its own auto-submit script itself. `form-action` is left
 * out on purpose: browsers apply it to the redirects that follow a form post, and the
 * sign-in form's post ends in a redirect to the relying party.
 */
export function securityHeaders(): Middleware {
  return helmet({
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
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
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
  let secret = ctx.cookies.get(CSRF_COOKIE, { signed: true });
  if (!secret) {
    secret = tokens.secretSync();
    ctx.cookies.set(CSRF_COOKIE, secret, {
      httpOnly: true,
      sameSite: 'lax',
      signed: true,
      secure: ctx.secure,
      path: '/',
    });
  }
  return tokens.create(secret);
}

/** Throws `csrf.invalid` (403) unless `submitted` belongs to this browser's secret. */
export function verifyCsrf(ctx: Context, submitted: unknown): void {
  const secret = ctx.cookies.get(CSRF_COOKIE, { signed: true });
  if (!secret || typeof submitted !== 'string' || !tokens.verify(secret, submitted)) {
    throw new AppError(403, 'csrf.invalid');
  }
}
