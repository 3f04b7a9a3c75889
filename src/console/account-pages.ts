/**
 * Self-service at `/account` (design 3.4): a signed-in person sees their name, authority,
 * permissions and when the password expires (warned in its last 14 days), changes the
 * password (current one required, full policy, other sessions ended) and signs out.
 */
import Router from '@koa/router';
import type { Context } from 'koa';

import type { SignIn } from '../accounts/sign-in.ts';
import type { AccountService } from '../accounts/service.ts';
import { mayAdminister } from '../admin/service.ts';
import { ValidationError } from '../errors.ts';
import { formField, passwordFormMessages, requestContext } from '../http/forms.ts';
import { csrfToken, verifyCsrf } from '../http/security.ts';
import { dateFormatter, pageLanguage, translator, type Views } from '../http/views.ts';
import { consoleUser } from './sign-in.ts';

export interface AccountPageDeps {
  accounts: AccountService;
  signIn: SignIn;
  views: Views;
  now: () => Date;
}

const DAY = 86_400_000;
const EXPIRY_WARNING_DAYS = 14;
const PASSWORD_LIMIT = 1024;

const passwordFields = ['current_password', 'new_password', 'new_password_confirm'] as const;

/** The console navigation as the self-service pages show it. */
function navigation(ctx: Context) {
  const { account } = consoleUser(ctx);
  return {
    isAdmin: mayAdminister(account),
    operator: account.roles.includes('operator'),
    current: 'account',
    tenantQuery: '',
    username: account.username,
  };
}

export function accountPages(deps: AccountPageDeps): Router {
  const { accounts, signIn, views, now } = deps;
  const router = new Router();

  function overview(ctx: Context) {
    const { account, tenant } = consoleUser(ctx);
    const language = pageLanguage(ctx);
    const t = translator(language);
    const expiresAt = accounts.passwordExpiresAt(account);
    const daysLeft = Math.ceil((expiresAt.getTime() - now().getTime()) / DAY);

    views.render(ctx, 'console/account', {
      title: t('account_page.title'),
      csrf: csrfToken(ctx),
      nav: navigation(ctx),
      account,
      tenant,
      isAdmin: mayAdminister(account),
      expiresAt: dateFormatter(language).dateTime(expiresAt),
      daysLeft,
      expiresSoon: daysLeft <= EXPIRY_WARNING_DAYS,
      notice: ctx.query.done === 'password_changed' ? t('account_page.password_changed') : null,
    });
  }

  function passwordForm(ctx: Context, problems: Record<string, string[]> = {}, status = 200) {
    const t = translator(pageLanguage(ctx));
    const policy = accounts.passwordSettings;
    const { fieldErrors, errors } = passwordFormMessages(problems, t, policy);
    ctx.status = status;
    views.render(ctx, 'console/password', {
      title: t('account_page.password_title'),
      csrf: csrfToken(ctx),
      nav: navigation(ctx),
      username: consoleUser(ctx).account.username,
      policy,
      fieldErrors,
      errors,
      errorsHeading: t('password_change.failed'),
    });
  }

  router.get('/account', overview);
  router.get('/account/password', (ctx) => passwordForm(ctx));

  router.post('/account/password', async (ctx) => {
    const body = ctx.request.body as Record<string, unknown> | undefined;
    verifyCsrf(ctx, body?.csrf);
    const { account, session } = consoleUser(ctx);

    const fields = Object.fromEntries(
      passwordFields.map((name) => [name, formField(body, name, PASSWORD_LIMIT)]),
    ) as Record<(typeof passwordFields)[number], ReturnType<typeof formField>>;
    const invalid = Object.entries(fields).flatMap(([name, field]) =>
      field.error ? [[name, [field.error]]] : [],
    );
    if (invalid.length > 0) return passwordForm(ctx, Object.fromEntries(invalid), 400);

    const context = requestContext(ctx, account._id, account.tenantId);
    const check = await signIn.reauthenticate(account, fields.current_password.value, context);
    if (check === 'throttled')
      return passwordForm(ctx, { current_password: ['login.throttled'] }, 429);
    if (check !== 'success') {
      const key = check === 'locked' ? 'account.locked' : 'password.current_wrong';
      return passwordForm(ctx, { current_password: [key] }, 401);
    }
    try {
      await accounts.changePassword(
        account._id,
        {
          newPassword: fields.new_password.value,
          confirmation: fields.new_password_confirm.value,
        },
        context,
        {
          exceptGrantId: session.grantId,
          ...(session.sessionUid ? { exceptSessionUid: session.sessionUid } : {}),
        },
      );
    } catch (error) {
      if (error instanceof ValidationError) return passwordForm(ctx, error.fields, 400);
      throw error;
    }
    ctx.status = 303;
    ctx.redirect('/account?done=password_changed');
  });

  return router;
}
