/**
 * The hosted interaction pages under `/interaction/:uid` (design 3.1–3.3): sign-in, the
 * forced password change, and the consent step that first-party clients pass through.
 * Every route lives under the interaction's path, where its cookie is sent.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';

import type { SignIn } from '../accounts/sign-in.ts';
import type { Account } from '../accounts/model.ts';
import type { AccountService } from '../accounts/service.ts';
import { AppError, ValidationError } from '../errors.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import { formField, passwordFormMessages, plainBodiesOnly, requestContext } from './forms.ts';
import { csrfToken, verifyCsrf } from './security.ts';
import { pageLanguage, translator, type Views } from './views.ts';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface InteractionDeps {
  provider: Provider;
  signIn: SignIn;
  accounts: AccountService;
  tenants: TenantDirectory;
  views: Views;
}

const TENANT_COOKIE = 'flueag.tenant';
/** Which password a sign-in checked (when it was set), kept with the interaction's result. */
const signedInWith = 'password_set_at';
const LIMITS = { tenant: 300, username: 256, password: 1024 };

/** Outcomes of a sign-in attempt that end in the form again: text key and HTTP status. */
const refusals = {
  invalid: ['login.failed', 401],
  locked: ['account.locked', 401],
  initial_expired: ['account.initial_expired', 403],
  throttled: ['login.throttled', 429],
} as const;

/**
 * True when the password was checked in this very authorization request (the interaction
 * before this one was the sign-in) and is still the account's password. A session from
 * earlier has to confirm the current password before it may set a new one: a session
 * cookie alone must not buy a permanent password. Nor may a sign-in with a password that
 * was replaced meanwhile (in another tab, by an admin's reset): it proves the old one only.
 */
function signedInJustNow(details: Details, account: Account): boolean {
  const last = details.lastSubmission as
    { login?: { accountId?: string }; [signedInWith]?: number } | undefined;
  return (
    last?.login?.accountId !== undefined &&
    last.login.accountId === details.session?.accountId &&
    last[signedInWith] === account.password.changedAt.getTime()
  );
}

/** True when this interaction's password change was already made (a resubmitted form). */
function passwordChangeDone(details: Details): boolean {
  return (
    (details.result as { password_change?: unknown } | undefined)?.password_change !== undefined
  );
}

export function interactionRoutes(deps: InteractionDeps): Router {
  const { provider, signIn, accounts, tenants, views } = deps;
  const router = new Router();
  // Only our routes parse bodies; the provider reads its own (an upstream parser is
  // discouraged by the library).
  router.use(plainBodiesOnly);
  router.use(bodyParser({ enableTypes: ['form'], formLimit: '64kb', encoding: 'utf-8' }));

  async function load(ctx: Context, expectedPrompt?: string): Promise<Details> {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid)
      throw new AppError(400, 'error.interaction_expired', { detail: 'uid mismatch' });
    if (expectedPrompt && details.prompt.name !== expectedPrompt) {
      throw new AppError(400, 'error.interaction_expired', {
        detail: `prompt is ${details.prompt.name}`,
      });
    }
    return details;
  }

  async function finish(ctx: Context, result: InteractionResults, merge: boolean) {
    const target = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: merge,
    });
    ctx.status = 303;
    ctx.redirect(target);
  }

  async function renderLogin(
    ctx: Context,
    details: Details,
    form: {
      values?: Record<string, string>;
      fieldErrors?: Record<string, string>;
      error?: string;
      status?: number;
    } = {},
  ) {
    const t = translator(pageLanguage(ctx, details.params.ui_locales));
    const client = await provider.Client.find(String(details.params.client_id));
    const loginHint =
      typeof details.params.login_hint === 'string'
        ? details.params.login_hint.slice(0, LIMITS.username)
        : '';
    const values = {
      tenant: form.values?.tenant ?? ctx.cookies.get(TENANT_COOKIE) ?? '',
      username: form.values?.username ?? loginHint,
    };
    const fieldErrors = Object.fromEntries(
      Object.entries(form.fieldErrors ?? {}).map(([field, key]) => [field, t(key)]),
    );
    const errors = form.error
      ? [{ text: t(form.error) }]
      : Object.entries(fieldErrors).map(([field, text]) => ({
          field,
          label: t(`login.${field}`),
          text,
        }));
    // The browser had a session that is gone now (expired, or ended because the account
    // was deactivated), the session's account can no longer sign in, or its sign-in is
    // older than the session lifetime.
    const sessionEnded =
      details.prompt.reasons.includes('account_unavailable') ||
      details.prompt.reasons.includes('session_too_old') ||
      (details.session === undefined && ctx.cookies.get('_session') !== undefined);

    ctx.status = form.status ?? 200;
    views.render(
      ctx,
      'login',
      {
        title: t('login.title'),
        uid: details.uid,
        csrf: csrfToken(ctx),
        clientName: client?.clientName ?? null,
        tenants: await tenants.suggestions(),
        values,
        fieldErrors,
        errors,
        notice: sessionEnded && !form.error ? t('login.session_ended') : null,
      },
      pageLanguage(ctx, details.params.ui_locales),
    );
  }

  async function renderPasswordChange(
    ctx: Context,
    details: Details,
    problems: Record<string, string[]> = {},
    status = 200,
  ) {
    const language = pageLanguage(ctx, details.params.ui_locales);
    const t = translator(language);
    const account = await accounts.find(String(details.session?.accountId));
    if (!account)
      throw new AppError(400, 'error.interaction_expired', {
        detail: 'account of the interaction is gone',
      });
    const policy = accounts.passwordSettings;
    const { params, fieldErrors, errors } = passwordFormMessages(problems, t, policy);

    ctx.status = status;
    views.render(
      ctx,
      'password-change',
      {
        title: t('password_change.title'),
        reason: account.password.mustChange
          ? t('password_change.reason_initial')
          : t('password_change.reason_expired', params),
        uid: details.uid,
        csrf: csrfToken(ctx),
        username: account.username,
        askCurrent: !signedInJustNow(details, account),
        policy,
        fieldErrors,
        errors,
        errorsHeading: t('password_change.failed'),
      },
      language,
    );
  }

  router.get('/interaction/:uid', async (ctx) => {
    const details = await load(ctx);
    switch (details.prompt.name) {
      case 'login':
        return renderLogin(ctx, details);
      case 'password_change':
        return renderPasswordChange(ctx, details);
      case 'consent':
        // First-party clients: the Grant was made by loadExistingGrant; nothing to ask.
        return finish(ctx, { consent: { grantId: details.grantId } }, true);
      default:
        return finish(
          ctx,
          { error: 'access_denied', error_description: 'unsupported interaction' },
          false,
        );
    }
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const details = await load(ctx, 'login');
    verifyCsrf(ctx, (ctx.request.body as Record<string, unknown> | undefined)?.csrf);

    const body = ctx.request.body;
    const fields = {
      tenant: formField(body, 'tenant', LIMITS.tenant),
      username: formField(body, 'username', LIMITS.username),
      password: formField(body, 'password', LIMITS.password),
    };
    const values = { tenant: fields.tenant.value, username: fields.username.value };
    const fieldErrors = Object.fromEntries(
      Object.entries(fields).flatMap(([name, field]) => (field.error ? [[name, field.error]] : [])),
    );
    if (Object.keys(fieldErrors).length > 0)
      return renderLogin(ctx, details, { values, fieldErrors, status: 400 });

    const result = await signIn.attempt(
      {
        tenant: fields.tenant.value,
        username: fields.username.value,
        password: fields.password.value,
      },
      requestContext(ctx),
    );
    if (result.kind === 'inactive') {
      return renderLogin(ctx, details, { values, error: `login.${result.state}`, status: 403 });
    }
    if (result.kind === 'throttled') ctx.set('Retry-After', String(result.retryAfterSeconds));
    if (result.kind !== 'success') {
      const [error, status] = refusals[result.kind];
      return renderLogin(ctx, details, { values, error, status });
    }

    ctx.cookies.set(TENANT_COOKIE, result.tenant._id, {
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.secure,
      maxAge: 365 * 86_400_000,
      signed: false,
    });
    // `remember: false`: a browser-session cookie, so closing the browser of a shared
    // office computer ends the session.
    return finish(
      ctx,
      {
        login: { accountId: result.account._id, amr: ['pwd'], remember: false },
        [signedInWith]: result.account.password.changedAt.getTime(),
      },
      false,
    );
  });

  router.post('/interaction/:uid/password', async (ctx) => {
    const details = await load(ctx, 'password_change');
    verifyCsrf(ctx, (ctx.request.body as Record<string, unknown> | undefined)?.csrf);
    // The first of two submissions of one form changed the password: the second one goes on
    // where the first went, instead of changing it again or calling it a reused password.
    if (passwordChangeDone(details)) {
      ctx.status = 303;
      return ctx.redirect(details.returnTo);
    }

    const accountId = String(details.session?.accountId);
    const account = await accounts.find(accountId);
    if (!account)
      throw new AppError(400, 'error.interaction_expired', { detail: 'account is gone' });

    const body = ctx.request.body;
    const askCurrent = !signedInJustNow(details, account);
    const fields = {
      ...(askCurrent
        ? { current_password: formField(body, 'current_password', LIMITS.password) }
        : {}),
      new_password: formField(body, 'new_password', LIMITS.password),
      new_password_confirm: formField(body, 'new_password_confirm', LIMITS.password),
    };
    const invalid = Object.entries(fields).flatMap(([name, field]) =>
      field.error ? [[name, [field.error]]] : [],
    );
    if (invalid.length > 0)
      return renderPasswordChange(ctx, details, Object.fromEntries(invalid), 400);

    const context = requestContext(ctx, accountId, account.tenantId);

    if (fields.current_password) {
      const check = await signIn.reauthenticate(account, fields.current_password.value, context);
      if (check === 'locked')
        return renderPasswordChange(ctx, details, { current_password: ['account.locked'] }, 401);
      if (check === 'initial_expired') throw new AppError(403, 'account.initial_expired');
      if (check === 'throttled')
        return renderPasswordChange(ctx, details, { current_password: ['login.throttled'] }, 429);
      if (check !== 'success') {
        return renderPasswordChange(
          ctx,
          details,
          { current_password: ['password.current_wrong'] },
          401,
        );
      }
    }
    try {
      await accounts.changePassword(
        accountId,
        { newPassword: fields.new_password.value, confirmation: fields.new_password_confirm.value },
        context,
        details.session?.uid === undefined ? {} : { exceptSessionUid: details.session.uid },
      );
    } catch (error) {
      if (error instanceof ValidationError)
        return renderPasswordChange(ctx, details, error.fields, 400);
      throw error;
    }
    return finish(ctx, { password_change: {} }, true);
  });

  // Reloading the address bar after a refused post asks for these paths: show the page again.
  for (const step of ['login', 'password']) {
    router.get(`/interaction/:uid/${step}`, (ctx) => {
      ctx.redirect(`/interaction/${encodeURIComponent(ctx.params.uid ?? '')}`);
    });
  }

  router.get('/interaction/:uid/abort', async (ctx) => {
    await load(ctx);
    return finish(
      ctx,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      false,
    );
  });

  return router;
}
