/**
 * Input validation shared by the pages, the CLI and imports: zod schemas whose messages are
 * our stable codes, and one function that turns zod's issues into a ValidationError.
 */
import { z } from 'zod';

import { usernameDisplay, usernameProblem } from './accounts/normalize.ts';
import { permissions, roles } from './accounts/model.ts';
import { tenantKinds, type TenantKind } from './tenants/model.ts';
import { ValidationError } from './errors.ts';

/**
 * Characters no name may hold: controls, invisible format characters (zero-width space and
 * joiners, bidirectional overrides, soft hyphen), surrogates, private use and unassigned
 * code points. They would make two names that look alike compare different.
 */
const invisible = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}]/u;
const personNameChars = /^[\p{L}\p{M}' .,-]+$/u;

/** Trims, composes (NFC) and folds runs of white space of a free-text value. */
const cleanText = (value: string) => value.normalize('NFC').trim().replace(/\s+/g, ' ');

/**
 * Free text that people read (names of tenants, accounts and clients): visible characters
 * only, cleaned, 1 to `max` characters. Codes: `<field>.required`, `.invalid_characters`,
 * `.too_long`.
 */
export const visibleText = (field: string, max: number) =>
  z
    .string({ error: `${field}.required` })
    .refine((value) => !invisible.test(value), `${field}.invalid_characters`)
    .transform(cleanText)
    .pipe(z.string().min(1, `${field}.required`).max(max, `${field}.too_long`));

/** Three or more combining marks on one letter after composition: no name needs them. */
const markPile = /\p{M}{3,}/u;

export const personName = (field: string) =>
  visibleText(field, 100).pipe(
    z
      .string()
      .regex(personNameChars, `${field}.invalid_characters`)
      .refine((value) => !markPile.test(value), `${field}.invalid_characters`),
  );

export const username = z
  .string({ error: 'username.required' })
  .max(256, 'username.too_long')
  .superRefine((value, context) => {
    const problem = usernameProblem(value);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  })
  .transform(usernameDisplay);

export const email = z
  .string({ error: 'email.invalid' })
  .transform((value) => value.trim())
  .pipe(z.email('email.invalid').max(254, 'email.invalid'));

export const tenantId = z
  .string({ error: 'tenant.required' })
  .transform((value) => value.trim())
  .pipe(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'tenant.invalid_id'));

export const newAccountSchema = z.object({
  tenantId,
  username,
  givenName: personName('given_name'),
  familyName: personName('family_name'),
  email: email.nullable().default(null),
  permissions: z.array(z.enum(permissions, 'permission.unknown')).default([]),
  roles: z.array(z.enum(roles, 'role.unknown')).default([]),
});

/** A change of the person's name (design section 2: history kept). */
export const nameChangeSchema = z.object({
  givenName: personName('given_name'),
  familyName: personName('family_name'),
});

export type NewAccountInput = z.output<typeof newAccountSchema>;

/** The official key of each kind of authority (design section 2). */
const officialKeys: Partial<Record<TenantKind, RegExp>> = {
  gemeinde: /^\d{8}$/, // Amtlicher Gemeindeschlüssel
  kreis: /^\d{5}$/,
  bezirksregierung: /^\d{3}$/, // Regierungsbezirk
};

/**
 * The kinds of authority each kind may report to: a Gemeinde to its Kreis (or, for a
 * kreisfreie Stadt, to its Bezirksregierung), a Kreis to its Bezirksregierung, a
 * Bezirksregierung to the ministry. The ministry and the operator stand alone.
 */
export const parentKinds: Record<TenantKind, readonly TenantKind[]> = {
  gemeinde: ['kreis', 'bezirksregierung'],
  kreis: ['bezirksregierung'],
  bezirksregierung: ['ministerium'],
  ministerium: [],
  betrieb: [],
};

export const newTenantSchema = z
  .object({
    id: tenantId,
    name: visibleText('tenant_name', 200).refine(
      (name) => /\p{L}/u.test(name),
      'tenant_name.needs_letter',
    ),
    kind: z.enum(tenantKinds, 'tenant_kind.unknown'),
    parent: tenantId.nullable().default(null),
  })
  .superRefine((tenant, context) => {
    const official = officialKeys[tenant.kind];
    if (official ? !official.test(tenant.id) : !/^[a-z]/.test(tenant.id)) {
      context.addIssue({
        code: 'custom',
        path: ['id'],
        message: official ? `tenant.invalid_key_${tenant.kind}` : 'tenant.invalid_key_named',
      });
    }
    if (tenant.parent === null) return;
    if (tenant.parent === tenant.id) {
      context.addIssue({ code: 'custom', path: ['parent'], message: 'tenant_parent.self' });
    } else if (parentKinds[tenant.kind].length === 0) {
      context.addIssue({ code: 'custom', path: ['parent'], message: 'tenant_parent.not_allowed' });
    }
  });

export type NewTenantInput = z.output<typeof newTenantSchema>;

/** Parses `input`, or throws a ValidationError that maps each field to its codes. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;

  const fields: Record<string, string[]> = {};
  for (const issue of result.error.issues) {
    // A strict object names the properties it does not know; each is an error of its own.
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) fields[key] = ['property.unknown'];
      continue;
    }
    const field = String(issue.path[0] ?? 'input');
    const code = /^[a-z_]+\.[a-z_]+$/.test(issue.message) ? issue.message : `${field}.invalid`;
    const codes = (fields[field] ??= []);
    if (!codes.includes(code)) codes.push(code);
  }
  throw new ValidationError(fields);
}
