/** Reading submitted form fields safely: strings only, bounded, NUL-free. */
import type { Context } from 'koa';

import type { PasswordSettings } from '../accounts/service.ts';
import type { RequestContext } from '../audit/trail.ts';
import { AppError } from '../errors.ts';
import type { Translate } from './views.ts';

export type FieldResult = { value: string; error?: undefined } | { value: string; error: string };

/**
 * One field of an urlencoded body. A missing, blank (white space only), repeated or
 * over-long field is an error with a text key; NUL bytes are refused outright (they never
 * belong in a form). No field of ours can be blank: names are trimmed, and a password needs
 * a letter and a digit, so a blank one is a slip, not an attempt worth counting.
 */
export function formField(
  body: unknown,
  name: string,
  maxLength: number,
  required = true,
): FieldResult {
  const raw = (body as Record<string, unknown> | undefined)?.[name];
  if (raw === undefined) return required ? { value: '', error: 'field.required' } : { value: '' };
  if (typeof raw !== 'string') return { value: '', error: 'field.invalid' };
  if (raw.trim() === '') return required ? { value: '', error: 'field.required' } : { value: '' };
  if (raw.length > maxLength) return { value: '', error: 'field.too_long' };
  if (raw.includes('\0')) return { value: '', error: 'field.invalid_characters' };
  return { value: raw };
}

/** Who is asking, for audit events and log lines. */
export function requestContext(
  ctx: Context,
  accountId: string | null = null,
  tenantId: string | null = null,
): RequestContext {
  return {
    requestId: ctx.state.requestId as string | undefined,
    ip: ctx.ip,
    actor: accountId ? { kind: 'account', accountId, tenantId } : { kind: 'anonymous' },
  };
}

/**
 * Browsers send forms without Content-Encoding; a compressed body is refused before the
 * parser would inflate it (a corrupt one would otherwise surface as a zlib error).
 */
export async function plainBodiesOnly(ctx: Context, next: () => Promise<unknown>) {
  const encoding = ctx.get('content-encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity')
    throw new AppError(415, 'error.generic', { detail: `content-encoding ${encoding}` });
  await next();
}

const passwordFieldLabels: Record<string, string> = {
  current_password: 'password_change.current',
  new_password: 'password_change.new',
  new_password_confirm: 'password_change.confirm',
};

/**
 * The problems of a password form in words, with the policy's figures filled in: one message
 * per field and the error summary's entries. `params` serve the page's other texts.
 */
export function passwordFormMessages(
  problems: Record<string, string[]>,
  t: Translate,
  policy: PasswordSettings,
) {
  const params = {
    min: policy.minLength,
    max: policy.maxLength,
    count: policy.history,
    days: policy.maxAgeDays,
  };
  return {
    params,
    fieldErrors: Object.fromEntries(
      Object.entries(problems).map(([field, keys]) => [
        field,
        keys.map((key) => t(key, params)).join(' '),
      ]),
    ),
    errors: Object.entries(problems).flatMap(([field, keys]) =>
      keys.map((key) => ({
        field,
        label: t(passwordFieldLabels[field] ?? field),
        text: t(key, params),
      })),
    ),
  };
}
