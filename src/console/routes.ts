/**
 * The console's routes on one router: sign-in and sign-out, the self-service pages, the
 * admin pages and the admin JSON API. Forms are parsed here only; the provider reads its
 * own bodies.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';

import { adminPages, type AdminPageDeps } from '../admin/pages.ts';
import { plainBodiesOnly } from '../http/forms.ts';
import { accountPages, type AccountPageDeps } from './account-pages.ts';
import type { ConsoleSignIn } from './sign-in.ts';

export interface ConsoleRouteDeps extends AdminPageDeps, AccountPageDeps {
  consoleSignIn: ConsoleSignIn;
  /** The JSON API under `/admin/api`, which authorises each request itself. */
  api?: Router;
}

export function consoleRoutes(deps: ConsoleRouteDeps): Router {
  const router = new Router();
  const pages = new Router();
  pages.use(plainBodiesOnly);
  pages.use(bodyParser({ enableTypes: ['form'], formLimit: '64kb', encoding: 'utf-8' }));
  pages.use(deps.consoleSignIn.routes().routes());

  const signedIn = deps.consoleSignIn.required();
  const admin = adminPages(deps);
  const account = accountPages(deps);
  pages.use(async (ctx, next) => {
    const [, section, sub] = ctx.path.split('/');
    const guarded = (section === 'admin' && sub !== 'api') || section === 'account';
    return guarded ? signedIn(ctx, next) : next();
  });
  pages.use(admin.routes(), admin.allowedMethods());
  pages.use(account.routes(), account.allowedMethods());

  if (deps.api) router.use(deps.api.routes(), deps.api.allowedMethods());
  router.use(pages.routes());
  return router;
}
