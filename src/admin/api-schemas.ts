/**
 * The shapes of the admin JSON API: request bodies and query strings (validated, with our
 * stable codes as messages) and responses (for the OpenAPI document). Request objects are
 * strict: an unknown property is an error, not something silently dropped.
 */
import { z } from 'zod';

import { permissions } from '../accounts/model.ts';
import { tenantActions } from '../audit/query.ts';
import { tenantKinds } from '../tenants/model.ts';
import { email, personName, username } from '../validation.ts';
import { visibleStates } from './service.ts';

const notObject = 'input.not_object';
const permission = z.enum(permissions, 'permission.unknown');
const permissionList = z
  .array(permission, 'permission.unknown')
  .max(permissions.length * 2, 'permission.unknown');
/** A paging cursor as the previous page returned it. */
const cursor = z.string('cursor.invalid').max(300, 'cursor.invalid');
const pageLimit = (max: number) =>
  z.coerce
    .number('limit.invalid')
    .int('limit.invalid')
    .min(1, 'limit.invalid')
    .max(max, 'limit.invalid')
    .meta({ description: `Entries per page, 1 to ${max}.` });

export const emptyBody = z.strictObject({}, notObject);
export const noQuery = z.strictObject({});

export const createAccountBody = z.strictObject(
  {
    username: username.meta({
      description: 'Unique within the tenant (compared case-insensitively, RFC 8265).',
      maxLength: 256,
    }),
    givenName: personName('given_name').meta({ maxLength: 100 }),
    familyName: personName('family_name').meta({ maxLength: 100 }),
    email: email.nullable().optional(),
    permissions: permissionList.optional(),
    localAdmin: z.boolean('local_admin.invalid').optional(),
  },
  notObject,
);

export const renameBody = z.strictObject(
  {
    givenName: personName('given_name').meta({ maxLength: 100 }),
    familyName: personName('family_name').meta({ maxLength: 100 }),
  },
  notObject,
);

export const permissionsBody = z.strictObject({ permissions: permissionList }, notObject);

export const stateBody = z
  .strictObject(
    {
      state: z.enum(['active', 'deactivated', 'retired'], 'state.unknown'),
      confirm: z.boolean('admin.retire_unconfirmed').optional().meta({
        description: 'Must be true to retire: retiring is permanent.',
      }),
    },
    notObject,
  )
  .superRefine((body, context) => {
    if (body.state === 'retired' && body.confirm !== true)
      context.addIssue({ code: 'custom', path: ['confirm'], message: 'admin.retire_unconfirmed' });
  });

export const accountListQuery = z.strictObject({
  search: z
    .string('search.invalid')
    .max(100, 'search.invalid')
    .optional()
    .meta({ description: 'Part of the username, given or family name.' }),
  state: z.enum(visibleStates, 'state.unknown').optional(),
  permission: permission.optional(),
  localAdmin: z
    .enum(['true', 'false'], 'local_admin.invalid')
    .optional()
    .meta({ description: '`true`: local admins only.' }),
  after: cursor.optional().meta({ description: 'The `next` of the previous page.' }),
  limit: pageLimit(200).optional(),
});

export const auditQuery = z.strictObject({
  account: z
    .string('account_filter.invalid')
    .max(256, 'account_filter.invalid')
    .optional()
    .meta({ description: 'An account id, or a username (also as typed at failed sign-ins).' }),
  action: z.enum(tenantActions, 'action.unknown').optional(),
  outcome: z.enum(['success', 'failure'], 'outcome.unknown').optional(),
  before: z
    .string('cursor.invalid')
    .regex(/^[0-9a-f]{24}$/, 'cursor.invalid')
    .optional()
    .meta({ description: 'The `next` of the previous page.' }),
  limit: pageLimit(500).optional(),
});

const dateTime = z.iso.datetime();

export const tenantSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(tenantKinds),
  parent: z.string().nullable(),
  active: z.boolean(),
});

export const tenantDetailSchema = tenantSchema.extend({
  activeLocalAdmins: z.number().int(),
  needsMoreAdmins: z
    .boolean()
    .meta({ description: 'True while fewer than two local admins can act.' }),
});

export const tenantListSchema = z.object({ tenants: z.array(tenantSchema) });

export const accountSummarySchema = z.object({
  id: z.string().meta({ description: 'The `sub` of the account.' }),
  username: z.string(),
  givenName: z.string(),
  familyName: z.string(),
  email: z.string().nullable(),
  state: z.enum(visibleStates),
  permissions: z.array(permission),
  localAdmin: z.boolean(),
  lastLoginAt: dateTime.nullable(),
});

export const accountDetailSchema = accountSummarySchema.extend({
  tenantId: z.string(),
  operator: z.boolean(),
  lockedAt: dateTime.nullable(),
  failedAttempts: z.number().int(),
  passwordChangedAt: dateTime,
  passwordExpiresAt: dateTime,
  initialPassword: z.boolean(),
  initialPasswordExpiresAt: dateTime.nullable(),
  nameHistory: z.array(
    z.object({
      givenName: z.string(),
      familyName: z.string(),
      changedAt: dateTime,
      changedBy: z.string().nullable(),
    }),
  ),
  createdAt: dateTime,
});

export const accountPageSchema = z.object({
  accounts: z.array(accountSummarySchema),
  next: z.string().nullable().meta({ description: 'The `after` of the next page.' }),
  total: z.number().int(),
});

export const issuedPasswordSchema = z.object({
  account: accountDetailSchema,
  initialPassword: z
    .string()
    .meta({ description: 'The one-time password; shown in this response only.' }),
});

export const unlockSchema = z.object({
  unlocked: z.boolean().meta({ description: 'False when the account was not locked.' }),
  account: accountDetailSchema,
});

export const auditPageSchema = z.object({
  entries: z.array(
    z.object({
      id: z.string(),
      at: dateTime,
      action: z.string(),
      outcome: z.enum(['success', 'failure']),
      reason: z.string().nullable(),
      actor: z.object({
        kind: z.string(),
        accountId: z.string().nullable(),
        username: z.string().nullable(),
        operator: z.boolean(),
      }),
      target: z.object({
        accountId: z.string().nullable(),
        username: z.string().nullable(),
        clientId: z.string().nullable(),
      }),
      details: z.record(z.string(), z.unknown()).nullable(),
      ip: z.string().nullable(),
      requestId: z.string().nullable(),
    }),
  ),
  next: z.string().nullable().meta({ description: 'The `before` of the next page.' }),
});

export const problemSchema = z.object({
  type: z.string().meta({ description: 'urn:flueag-idp:problem:<code>' }),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string().meta({ description: 'Stable code; switch on this, not on the text.' }),
  errors: z
    .record(z.string(), z.array(z.object({ code: z.string(), message: z.string() })))
    .optional()
    .meta({ description: 'Refused input: property → its codes and messages.' }),
});
