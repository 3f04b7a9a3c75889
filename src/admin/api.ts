/**
 * The admin JSON API under `/admin/api` (design 3.5): every action of the admin pages, with
 * the same rules, for automation. Each operation is declared once in `operations` — path,
 * input schemas, responses — and both the router and the OpenAPI document are built from
 * that table, so the two cannot drift apart.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { z } from 'zod';

import type { AccountState } from '../accounts/model.ts';
import type { AuditFilter, AuditQuery } from '../audit/query.ts';
import { AppError } from '../errors.ts';
import type { Tenant } from '../tenants/model.ts';
import { parseInput } from '../validation.ts';
import { apiAdministrator, type ApiAuthDeps } from './api-auth.ts';
import * as schemas from './api-schemas.ts';
import { openApiDocument } from './openapi.ts';
import { respondWithProblem } from './problems.ts';
import type { AdminService, Administrator, RequestOrigin } from './service.ts';

export interface AdminApiDeps extends ApiAuthDeps {
  admin: AdminService;
  auditQuery: AuditQuery;
}

export const API_PREFIX = '/admin/api';

type Method = 'get' | 'post' | 'put' | 'delete';

/** What a handler gets: the checked caller and the validated input. */
interface Input<Q, B> {
  ctx: Context;
  who: Administrator;
  params: Record<string, string>;
  query: Q;
  body: B;
  origin: RequestOrigin;
}

/** One operation of the API, as the router serves it and the OpenAPI document shows it. */
export interface Operation {
  method: Method;
  /** Koa path, `:name` for parameters. */
  path: string;
  operationId: string;
  summary: string;
  /** Served without credentials (the OpenAPI document). */
  public?: boolean;
  query?: z.ZodType;
  body?: { name: string; schema: z.ZodType };
  success: { status: 200 | 201 | 204; description: string; name?: string; schema?: z.ZodType };
  /** The problem statuses besides 401/403 (and 400 for bodies and queries). */
  problems: number[];
  run(input: Input<unknown, unknown>): Promise<unknown>;
}

function operation<Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType>(
  definition: Omit<Operation, 'query' | 'body' | 'run'> & {
    query?: Q;
    body?: { name: string; schema: B };
    run(input: Input<z.output<Q>, z.output<B>>): Promise<unknown>;
  },
): Operation {
  return definition as unknown as Operation;
}

const tenantView = (tenant: Tenant) => ({
  id: tenant._id,
  name: tenant.name,
  kind: tenant.kind,
  parent: tenant.parent,
  active: tenant.active,
});

/** The operations of the API, in the order of the OpenAPI document. */
export function adminApiOperations(deps: AdminApiDeps): Operation[] {
  const { admin, auditQuery } = deps;

  const stateChange = (state: AccountState, who: Administrator, id: string, o: RequestOrigin) =>
    admin.setState(who, id, state, o);

  const operations: Operation[] = [
    operation({
      method: 'get',
      path: `${API_PREFIX}/openapi.json`,
      operationId: 'getOpenApiDocument',
      summary: 'This document',
      public: true,
      success: { status: 200, description: 'The OpenAPI 3.1 document of the admin API.' },
      problems: [],
      run: async () => openApiDocument(operations),
    }),
    operation({
      method: 'get',
      path: `${API_PREFIX}/tenants`,
      operationId: 'listTenants',
      summary: 'Tenants the caller manages: all for an operator, else the own one',
      success: {
        status: 200,
        description: 'The tenants, by name.',
        name: 'TenantList',
        schema: schemas.tenantListSchema,
      },
      problems: [],
      run: async ({ who }) => ({ tenants: (await admin.tenantsOf(who)).map(tenantView) }),
    }),
    operation({
      method: 'get',
      path: `${API_PREFIX}/tenants/:tenantId`,
      operationId: 'getTenant',
      summary: 'One tenant and how many of its local admins can act (the two-admin rule)',
      success: {
        status: 200,
        description: 'The tenant.',
        name: 'TenantDetail',
        schema: schemas.tenantDetailSchema,
      },
      problems: [404],
      run: async ({ who, params }) => {
        const tenant = await admin.tenant(who, params.tenantId!);
        const activeLocalAdmins = await admin.activeLocalAdmins(tenant._id);
        return { ...tenantView(tenant), activeLocalAdmins, needsMoreAdmins: activeLocalAdmins < 2 };
      },
    }),
    operation({
      method: 'get',
      path: `${API_PREFIX}/tenants/:tenantId/accounts`,
      operationId: 'listAccounts',
      summary: 'Search, filter and page the accounts of a tenant, by username',
      query: schemas.accountListQuery,
      success: {
        status: 200,
        description: 'One page of accounts.',
        name: 'AccountPage',
        schema: schemas.accountPageSchema,
      },
      problems: [404],
      run: async ({ who, params, query }) =>
        admin.list(who, params.tenantId!, {
          ...query,
          localAdmin: query.localAdmin === 'true',
        }),
    }),
    operation({
      method: 'post',
      path: `${API_PREFIX}/tenants/:tenantId/accounts`,
      operationId: 'createAccount',
      summary: 'Create an account with a one-time password',
      body: { name: 'NewAccount', schema: schemas.createAccountBody },
      success: {
        status: 201,
        description:
          'The account and its one-time password, which no other response ever shows again.',
        name: 'IssuedPassword',
        schema: schemas.issuedPasswordSchema,
      },
      problems: [404, 409],
      run: async ({ ctx, who, params, body, origin }) => {
        const created = await admin.create(who, params.tenantId!, body, origin);
        ctx.set('Location', `${API_PREFIX}/accounts/${encodeURIComponent(created.account.id)}`);
        return created;
      },
    }),
    operation({
      method: 'get',
      path: `${API_PREFIX}/tenants/:tenantId/audit`,
      operationId: 'listAuditEvents',
      summary: "Page the tenant's audit trail, newest first",
      query: schemas.auditQuery,
      success: {
        status: 200,
        description: 'One page of audit events.',
        name: 'AuditPage',
        schema: schemas.auditPageSchema,
      },
      problems: [404],
      run: async ({ who, params, query }) => {
        const tenant = await admin.tenant(who, params.tenantId!);
        return auditQuery.page(tenant._id, await auditFilter(admin, who, tenant._id, query));
      },
    }),
    operation({
      method: 'get',
      path: `${API_PREFIX}/accounts/:accountId`,
      operationId: 'getAccount',
      summary: 'One account',
      success: {
        status: 200,
        description: 'The account.',
        name: 'AccountDetail',
        schema: schemas.accountDetailSchema,
      },
      problems: [404],
      run: async ({ who, params }) => admin.account(who, params.accountId!),
    }),
    operation({
      method: 'put',
      path: `${API_PREFIX}/accounts/:accountId/name`,
      operationId: 'renameAccount',
      summary: "Record a change of the person's name (kept in the name history)",
      body: { name: 'NameChange', schema: schemas.renameBody },
      success: accountResult('The renamed account.'),
      problems: [404, 409],
      run: async ({ who, params, body, origin }) =>
        admin.rename(who, params.accountId!, body, origin),
    }),
    operation({
      method: 'put',
      path: `${API_PREFIX}/accounts/:accountId/permissions`,
      operationId: 'setPermissions',
      summary: 'Set the permissions; withdrawing one ends sessions and revokes grants at once',
      body: { name: 'Permissions', schema: schemas.permissionsBody },
      success: accountResult('The account with its new permissions.'),
      problems: [404, 409],
      run: async ({ who, params, body, origin }) =>
        admin.setPermissions(who, params.accountId!, body.permissions, origin),
    }),
    operation({
      method: 'put',
      path: `${API_PREFIX}/accounts/:accountId/local-admin`,
      operationId: 'grantLocalAdmin',
      summary: 'Grant the local-admin role',
      success: accountResult('The account with the role.'),
      problems: [404, 409],
      run: async ({ who, params, origin }) => admin.grantLocalAdmin(who, params.accountId!, origin),
    }),
    operation({
      method: 'delete',
      path: `${API_PREFIX}/accounts/:accountId/local-admin`,
      operationId: 'withdrawLocalAdmin',
      summary: 'Withdraw the local-admin role (refused for the last local admin who can act)',
      success: accountResult('The account without the role.'),
      problems: [404, 409],
      run: async ({ who, params, origin }) =>
        admin.withdrawLocalAdmin(who, params.accountId!, origin),
    }),
    operation({
      method: 'put',
      path: `${API_PREFIX}/accounts/:accountId/state`,
      operationId: 'setAccountState',
      summary:
        'Deactivate (`deactivated`), reactivate (`active`) or retire for good (`retired`, needs `confirm: true`)',
      body: { name: 'StateChange', schema: schemas.stateBody },
      success: accountResult('The account in its new state.'),
      problems: [404, 409],
      run: async ({ who, params, body, origin }) =>
        stateChange(body.state, who, params.accountId!, origin),
    }),
    operation({
      method: 'delete',
      path: `${API_PREFIX}/accounts/:accountId/lock`,
      operationId: 'unlockAccount',
      summary: 'Lift the lock after failed sign-ins',
      success: {
        status: 200,
        description: 'Whether there was a lock, and the account.',
        name: 'UnlockResult',
        schema: schemas.unlockSchema,
      },
      problems: [404, 409],
      run: async ({ who, params, origin }) => {
        const unlocked = await admin.unlock(who, params.accountId!, origin);
        return { unlocked, account: await admin.account(who, params.accountId!) };
      },
    }),
    operation({
      method: 'post',
      path: `${API_PREFIX}/accounts/:accountId/one-time-password`,
      operationId: 'issueOneTimePassword',
      summary: 'Issue a new one-time password for a person who forgot theirs',
      success: {
        status: 201,
        description: 'The one-time password, shown in this response only.',
        name: 'IssuedPassword',
        schema: schemas.issuedPasswordSchema,
      },
      problems: [404, 409],
      run: async ({ who, params, origin }) => admin.resetPassword(who, params.accountId!, origin),
    }),
    operation({
      method: 'delete',
      path: `${API_PREFIX}/accounts/:accountId/sessions`,
      operationId: 'endSessions',
      summary: 'End all sessions of the account and revoke its grants',
      success: { status: 204, description: 'The sessions are ended.' },
      problems: [404],
      run: async ({ who, params, origin }) => {
        await admin.endSessions(who, params.accountId!, origin);
        return undefined;
      },
    }),
  ];
  return operations;
}

function accountResult(description: string): Operation['success'] {
  return { status: 200, description, name: 'AccountDetail', schema: schemas.accountDetailSchema };
}

/** The audit filter of a query: an account by id or by username, an action, an outcome. */
async function auditFilter(
  admin: AdminService,
  who: Administrator,
  tenantId: string,
  query: z.output<typeof schemas.auditQuery>,
): Promise<AuditFilter> {
  const account = query.account?.trim();
  let accountId: string | undefined;
  if (account) {
    const byId = await admin.account(who, account).catch((error: unknown) => {
      if (error instanceof AppError && error.status === 404) return undefined;
      throw error;
    });
    accountId =
      byId?.tenantId === tenantId
        ? byId.id
        : (await admin.accountByUsername(who, tenantId, account))?.id;
  }
  return {
    ...(account ? { accountId: accountId ?? '-', username: account } : {}),
    action: query.action,
    outcome: query.outcome,
    before: query.before,
    limit: query.limit,
  };
}

const jsonBody = bodyParser({
  enableTypes: ['json'],
  jsonLimit: '32kb',
  encoding: 'utf-8',
  parsedMethods: ['POST', 'PUT', 'PATCH', 'DELETE'],
});

/**
 * The validated body of a request: JSON only, uncompressed, at most 32 kB. A request
 * without a body counts as `{}`, so a missing property is named like any other error.
 */
async function readBody(ctx: Context, schema: z.ZodType): Promise<unknown> {
  const present = ctx.get('transfer-encoding') !== '' || Number(ctx.get('content-length')) > 0;
  if (!present) return parseInput(schema, {});
  const encoding = ctx.get('content-encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity')
    throw new AppError(415, 'content_encoding.unsupported', { detail: `encoding ${encoding}` });
  if (ctx.is('application/json') === false)
    throw new AppError(415, 'content_type.unsupported', { detail: ctx.get('content-type') });
  await jsonBody(ctx, async () => {});
  return parseInput(schema, ctx.request.body);
}

/** The router of the API, with a problem document for every refusal under `/admin/api`. */
export function adminApi(deps: AdminApiDeps): Router {
  const router = new Router();
  const operations = adminApiOperations(deps);

  for (const op of operations) {
    router[op.method](op.path, async (ctx) => {
      try {
        ctx.set('Cache-Control', 'no-store');
        const who = op.public
          ? (undefined as unknown as Administrator)
          : await apiAdministrator(ctx, deps);
        const query = parseInput(op.query ?? schemas.noQuery, { ...ctx.query });
        const body = await readBody(ctx, op.body?.schema ?? schemas.emptyBody);
        const result = await op.run({
          ctx,
          who,
          params: ctx.params as Record<string, string>,
          query,
          body,
          origin: { requestId: ctx.state.requestId as string | undefined, ip: ctx.ip },
        });
        ctx.status = op.success.status;
        if (op.success.status !== 204) ctx.body = result;
      } catch (error) {
        respondWithProblem(ctx, error);
      }
    });
  }

  // Anything else under the prefix: 404, or 405 with the methods the path has (RFC 9110
  // §15.5.6), as a problem document too; OPTIONS lists the methods.
  router.all(FALLBACK_ROUTE, `${API_PREFIX}{/*rest}`, (ctx) => {
    const allowed = new Set<string>();
    for (const layer of router.stack) {
      if (layer.name !== FALLBACK_ROUTE && layer.match(ctx.path))
        for (const method of layer.methods) allowed.add(method);
    }
    if (allowed.size > 0) ctx.set('Allow', [...allowed, 'OPTIONS'].join(', '));
    if (allowed.size > 0 && ctx.method === 'OPTIONS') {
      ctx.status = 204;
      return;
    }
    respondWithProblem(
      ctx,
      allowed.size > 0
        ? new AppError(405, 'error.method_not_allowed', { detail: `${ctx.method} ${ctx.path}` })
        : new AppError(404, 'error.not_found', { detail: ctx.path }),
    );
  });
  return router;
}

/** The name of the catch-all route, which no operation of the document describes. */
export const FALLBACK_ROUTE = 'api.fallback';
