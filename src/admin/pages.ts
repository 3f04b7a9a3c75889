/**
 * The account admin pages at `/admin` (design 3.5): server-rendered, working without
 * JavaScript. Every state-changing form posts with a CSRF token and answers with a redirect
 * to the account's page (post/redirect/get), except where a one-time password must be shown
 * once: that page is the answer to the post itself and is never cached.
 */
import Router from '@koa/router';
import type { Context } from 'koa';

import type { AccountState, Permission } from '../accounts/model.ts';
import { permissions as allPermissions } from '../accounts/model.ts';
import { AuditQuery, tenantActions, type AuditFilter } from '../audit/query.ts';
import { consoleUser } from '../console/sign-in.ts';
import { AppError, ValidationError } from '../errors.ts';
import { csrfToken, verifyCsrf } from '../http/security.ts';
import {
  dateFormatter,
  pageLanguage,
  translator,
  type Translate,
  type Views,
} from '../http/views.ts';
import { auditWording } from './audit-wording.ts';
import { auditCsv } from './csv.ts';
import {
  visibleStates,
  type AccountDetail,
  type AccountQuery,
  type AdminService,
  type Administrator,
  type RequestOrigin,
} from './service.ts';

export interface AdminPageDeps {
  admin: AdminService;
  auditQuery: AuditQuery;
  views: Views;
}

/** Notices after a successful action, by the `done` query parameter of the redirect. */
const notices = new Set([
  'renamed',
  'permissions_saved',
  'role_granted',
  'role_withdrawn',
  'deactivated',
  'reactivated',
  'retired',
  'unlocked',
  'not_locked',
  'sessions_ended',
]);

const body = (ctx: Context) => (ctx.request.body ?? {}) as Record<string, unknown>;
const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
const origin = (ctx: Context): RequestOrigin => ({
  requestId: ctx.state.requestId as string | undefined,
  ip: ctx.ip,
});

/** The ticked permission checkboxes of a form; unknown values are refused. */
function checkedPermissions(value: unknown): Permission[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  if (values.some((entry) => !allPermissions.includes(entry as Permission)))
    throw new ValidationError({ permissions: ['permission.unknown'] });
  return values as Permission[];
}

export function adminPages(deps: AdminPageDeps): Router {
  const { admin, auditQuery, views } = deps;
  const router = new Router();

  /** The administrator of the request; without the role, or while locked, 403. */
  const administrator = (ctx: Context): Administrator =>
    admin.actingAdministrator(consoleUser(ctx).account);

  /** The tenant a page is about: the admin's own, or for an operator the one named. */
  const tenantOf = async (ctx: Context, who: Administrator, named: unknown) =>
    admin.tenant(
      who,
      who.operator && typeof named === 'string' && named ? named : who.account.tenantId,
    );

  async function render(
    ctx: Context,
    template: string,
    who: Administrator,
    data: Record<string, unknown>,
  ) {
    const language = pageLanguage(ctx);
    const t = translator(language);
    const tenant = data.tenant as { _id: string } | undefined;
    const fieldErrors = (data.fieldErrors ?? {}) as Record<string, string>;
    views.render(ctx, template, {
      csrf: csrfToken(ctx),
      admin: who,
      nav: {
        isAdmin: true,
        operator: who.operator,
        current:
          template === 'admin/tenants'
            ? 'tenants'
            : template === 'admin/audit'
              ? 'audit'
              : 'accounts',
        tenantQuery: who.operator && tenant ? `?tenant=${encodeURIComponent(tenant._id)}` : '',
        username: who.account.username,
      },
      wide: true,
      fewAdmins: tenant ? await admin.needsMoreAdmins(tenant._id) : false,
      format: dateFormatter(language),
      errors: Object.entries(fieldErrors).map(([field, message]) => ({
        field: fieldIds[field] ?? field,
        label: t(fieldLabels[field] ?? field),
        text: message,
      })),
      errorsHeading: t('form.errors_heading'),
      ...data,
      title: t(String(data.title)),
    });
  }

  router.get('/admin', async (ctx) => {
    const who = administrator(ctx);
    ctx.status = 303;
    ctx.redirect(who.operator ? '/admin/tenants' : '/admin/accounts');
  });

  router.get('/admin/tenants', async (ctx) => {
    const who = administrator(ctx);
    if (!who.operator) throw new AppError(404, 'error.not_found');
    await render(ctx, 'admin/tenants', who, {
      title: 'admin.tenants_title',
      tenants: await admin.tenantsOf(who),
    });
  });

  router.get('/admin/accounts', async (ctx) => {
    const who = administrator(ctx);
    const tenant = await tenantOf(ctx, who, ctx.query.tenant);
    const query = listQuery(ctx.query);
    const page = await admin.list(who, tenant._id, query);
    await render(ctx, 'admin/accounts', who, {
      title: 'admin.accounts_title',
      tenant,
      query,
      page,
      nextQuery: queryString({
        tenant: who.operator ? tenant._id : undefined,
        q: query.q || undefined,
        state: query.state,
        permission: query.permission,
        admin: query.localAdmin ? 'yes' : undefined,
        after: page.next ?? undefined,
      }),
      states: visibleStates,
      permissions: allPermissions,
    });
  });

  router.get('/admin/accounts/new', async (ctx) => {
    const who = administrator(ctx);
    const tenant = await tenantOf(ctx, who, ctx.query.tenant);
    await render(ctx, 'admin/account-new', who, {
      title: 'admin.new_title',
      tenant,
      values: {},
      fieldErrors: {},
      permissions: allPermissions,
    });
  });

  router.post('/admin/accounts', async (ctx) => {
    const who = administrator(ctx);
    verifyCsrf(ctx, body(ctx).csrf);
    const tenant = await tenantOf(ctx, who, body(ctx).tenant);
    const form = body(ctx);
    const values = {
      username: text(form.username) ?? '',
      givenName: text(form.given_name) ?? '',
      familyName: text(form.family_name) ?? '',
      email: text(form.email) ?? '',
      permissions: Array.isArray(form.permissions)
        ? form.permissions
        : [form.permissions].filter(Boolean),
      localAdmin: form.local_admin === 'yes',
    };
    try {
      const created = await admin.create(
        who,
        tenant._id,
        { ...values, permissions: checkedPermissions(form.permissions) },
        origin(ctx),
      );
      return await render(ctx, 'admin/password-issued', who, {
        title: 'admin.created_title',
        tenant,
        account: created.account,
        initialPassword: created.initialPassword,
        created: true,
      });
    } catch (error) {
      const fieldErrors = formErrors(error, translator(pageLanguage(ctx)));
      if (!fieldErrors) throw error;
      ctx.status = error instanceof AppError ? error.status : 400;
      return render(ctx, 'admin/account-new', who, {
        title: 'admin.new_title',
        tenant,
        values,
        fieldErrors,
        permissions: allPermissions,
      });
    }
  });

  async function showAccount(
    ctx: Context,
    who: Administrator,
    account: AccountDetail,
    extra: Record<string, unknown> = {},
  ) {
    const tenant = await admin.tenant(who, account.tenantId);
    const done = text(ctx.query.done);
    await render(ctx, 'admin/account', who, {
      title: 'admin.account_title',
      tenant,
      account,
      permissions: allPermissions,
      notice: done && notices.has(done) ? `admin.done_${done}` : null,
      error: null,
      fieldErrors: {},
      ...extra,
    });
  }

  router.get('/admin/accounts/:id', async (ctx) => {
    const who = administrator(ctx);
    await showAccount(ctx, who, await admin.account(who, String(ctx.params.id)));
  });

  /**
   * A post that changes the account and goes back to its page with a notice; a refusal
   * (the last admin, a retired account, bad input) shows the page with the reason.
   */
  function action(
    path: string,
    run: (who: Administrator, id: string, ctx: Context) => Promise<string>,
  ) {
    router.post(`/admin/accounts/:id/${path}`, async (ctx) => {
      const who = administrator(ctx);
      const id = String(ctx.params.id);
      verifyCsrf(ctx, body(ctx).csrf);
      try {
        const done = await run(who, id, ctx);
        ctx.status = 303;
        ctx.redirect(`/admin/accounts/${encodeURIComponent(id)}?done=${done}`);
      } catch (error) {
        if (!(error instanceof AppError) || error.status === 404 || error.status >= 500)
          throw error;
        const t = translator(pageLanguage(ctx));
        const account = await admin.account(who, id);
        ctx.status = error.status;
        if (path === 'retire' && error instanceof ValidationError) {
          return render(ctx, 'admin/retire', who, {
            title: 'admin.retire_title',
            tenant: await admin.tenant(who, account.tenantId),
            account,
            fieldErrors: formErrors(error, t) ?? {},
          });
        }
        await showAccount(ctx, who, account, {
          error: error instanceof ValidationError ? null : t(error.code),
          fieldErrors: formErrors(error, t) ?? {},
          values: {
            givenName: text(body(ctx).given_name),
            familyName: text(body(ctx).family_name),
          },
        });
      }
    });
  }

  action('name', async (who, id, ctx) => {
    await admin.rename(
      who,
      id,
      { givenName: body(ctx).given_name, familyName: body(ctx).family_name },
      origin(ctx),
    );
    return 'renamed';
  });
  action('permissions', async (who, id, ctx) => {
    await admin.setPermissions(who, id, checkedPermissions(body(ctx).permissions), origin(ctx));
    return 'permissions_saved';
  });
  action('local-admin', async (who, id, ctx) => {
    const grant = body(ctx).grant;
    if (grant === 'yes') {
      await admin.grantLocalAdmin(who, id, origin(ctx));
      return 'role_granted';
    }
    if (grant !== 'no')
      throw new AppError(400, 'input.invalid', { detail: 'grant is not yes or no' });
    await admin.withdrawLocalAdmin(who, id, origin(ctx));
    return 'role_withdrawn';
  });
  const stateAction = (path: string, state: AccountState, done: string) =>
    action(path, async (who, id, ctx) => {
      await admin.setState(who, id, state, origin(ctx));
      return done;
    });
  stateAction('deactivate', 'deactivated', 'deactivated');
  stateAction('reactivate', 'active', 'reactivated');
  action('retire', async (who, id, ctx) => {
    if (body(ctx).confirm !== 'yes')
      throw new ValidationError({ confirm: ['admin.retire_unconfirmed'] });
    await admin.setState(who, id, 'retired', origin(ctx));
    return 'retired';
  });
  action('unlock', async (who, id, ctx) =>
    (await admin.unlock(who, id, origin(ctx))) ? 'unlocked' : 'not_locked',
  );
  action('sessions', async (who, id, ctx) => {
    await admin.endSessions(who, id, origin(ctx));
    return 'sessions_ended';
  });

  router.get('/admin/accounts/:id/retire', async (ctx) => {
    const who = administrator(ctx);
    const account = await admin.account(who, String(ctx.params.id));
    await render(ctx, 'admin/retire', who, {
      title: 'admin.retire_title',
      tenant: await admin.tenant(who, account.tenantId),
      account,
      fieldErrors: {},
    });
  });

  router.post('/admin/accounts/:id/password', async (ctx) => {
    const who = administrator(ctx);
    const id = String(ctx.params.id);
    verifyCsrf(ctx, body(ctx).csrf);
    try {
      const issued = await admin.resetPassword(who, id, origin(ctx));
      await render(ctx, 'admin/password-issued', who, {
        title: 'admin.reset_title',
        tenant: await admin.tenant(who, issued.account.tenantId),
        account: issued.account,
        initialPassword: issued.initialPassword,
        created: false,
      });
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 409) throw error;
      ctx.status = 409;
      await showAccount(ctx, who, await admin.account(who, id), {
        error: translator(pageLanguage(ctx))(error.code),
      });
    }
  });

  router.get('/admin/audit', async (ctx) => {
    const who = administrator(ctx);
    const tenant = await tenantOf(ctx, who, ctx.query.tenant);
    const filter = await auditFilter(who, tenant._id, ctx.query);
    const page = await auditQuery.page(tenant._id, filter);
    const shown = {
      tenant: who.operator ? tenant._id : undefined,
      account: text(ctx.query.account)?.trim() || undefined,
      action: filter.action,
      outcome: filter.outcome,
    };
    await render(ctx, 'admin/audit', who, {
      title: 'admin.audit_title',
      tenant,
      filter: { ...filter, account: shown.account ?? '' },
      actions: tenantActions,
      page,
      csvQuery: queryString(shown),
      nextQuery: queryString({ ...shown, before: page.next ?? undefined }),
      wording: auditWording(translator(pageLanguage(ctx))),
    });
  });

  router.get('/admin/audit.csv', async (ctx) => {
    const who = administrator(ctx);
    const tenant = await tenantOf(ctx, who, ctx.query.tenant);
    const filter = await auditFilter(who, tenant._id, ctx.query);
    ctx.set('Cache-Control', 'no-store');
    ctx.attachment(`audit-${tenant._id}.csv`);
    ctx.type = 'text/csv; charset=utf-8';
    ctx.body = auditCsv(auditQuery.all(tenant._id, filter), translator(pageLanguage(ctx)));
  });

  /** The filter of the audit page: an account by id or username, an action, an outcome. */
  async function auditFilter(
    who: Administrator,
    tenantId: string,
    query: Record<string, unknown>,
  ): Promise<AuditFilter> {
    const account = text(query.account)?.trim().slice(0, 256);
    const action = text(query.action);
    const outcome = text(query.outcome);
    let accountId: string | undefined;
    if (account) {
      const byId = await admin.account(who, account).catch(() => undefined);
      accountId = byId?.tenantId === tenantId ? byId.id : undefined;
      const byName = accountId ? undefined : await admin.accountByUsername(who, tenantId, account);
      accountId ??= byName?.id;
    }
    return {
      ...(account ? { accountId: accountId ?? '-', username: account } : {}),
      ...(action && (tenantActions as readonly string[]).includes(action) ? { action } : {}),
      ...(outcome === 'success' || outcome === 'failure' ? { outcome } : {}),
      ...(text(query.before) ? { before: text(query.before) } : {}),
    };
  }

  return router;
}

/** The form field of each validated property, for links from the error summary. */
const fieldIds: Record<string, string> = {
  givenName: 'given_name',
  familyName: 'family_name',
  localAdmin: 'local_admin',
};
const fieldLabels: Record<string, string> = {
  username: 'login.username',
  givenName: 'admin.given_name',
  familyName: 'admin.family_name',
  email: 'admin.email',
  permissions: 'admin.permissions',
  localAdmin: 'role.local_admin',
  confirm: 'admin.retire_title',
};

/** A query string of the defined values, for links that keep a page's filters. */
function queryString(values: Record<string, string | undefined>): string {
  const defined = Object.entries(values).filter(
    (entry): entry is [string, string] => entry[1] !== undefined,
  );
  return new URLSearchParams(defined).toString();
}

/** The list filters of the query string; unknown values are ignored, not errors. */
function listQuery(query: Record<string, unknown>): AccountQuery & { q: string } {
  const search = text(query.q)?.slice(0, 100) ?? '';
  const state = text(query.state);
  const permission = text(query.permission);
  const after = text(query.after);
  return {
    q: search,
    search,
    state: (visibleStates as readonly string[]).includes(state ?? '')
      ? (state as AccountQuery['state'])
      : undefined,
    permission: allPermissions.includes(permission as Permission)
      ? (permission as Permission)
      : undefined,
    localAdmin: query.admin === 'yes',
    after: after && after.length <= 300 ? after : undefined,
  };
}

/** Field → German message of a refused form, or undefined when `error` is not about input. */
function formErrors(error: unknown, t: Translate): Record<string, string> | undefined {
  if (error instanceof ValidationError) {
    return Object.fromEntries(
      Object.entries(error.fields).map(([field, codes]) => [
        field,
        codes.map((code) => t(code)).join(' '),
      ]),
    );
  }
  if (error instanceof AppError && error.code === 'username.taken')
    return { username: t(error.code) };
  return undefined;
}
