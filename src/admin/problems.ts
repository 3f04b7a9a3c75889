/**
 * Errors of the admin JSON API as RFC 9457 problem documents: `type` names the problem by
 * its stable code, `title` says what kind of refusal it is, `detail` gives the German (or
 * English) sentence of the code, and a refused input lists every field with its codes and
 * messages. An unreachable database is a 503 `service.unavailable` with `Retry-After`.
 * Internals (stack traces, private details) only reach the log.
 */
import type { Context } from 'koa';

import { asUnavailable } from '../db/connection.ts';
import { AppError, ValidationError } from '../errors.ts';
import { hasText, pageLanguage, translator } from '../http/views.ts';
import type { Logger } from '../log.ts';
import { AuthenticationError } from './api-auth.ts';

export const PROBLEM_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: Record<string, Array<{ code: string; message: string }>>;
}

/** The problem type URI of a code: stable, and the same for every installation. */
export const problemType = (code: string) => `urn:flueag-idp:problem:${code}`;

/** Errors of the JSON body parser (co-body / raw-body), by their `type`. */
const bodyErrors: Record<string, [number, string]> = {
  'entity.parse.failed': [400, 'json.invalid'],
  'entity.verify.failed': [400, 'json.invalid'],
  'entity.too.large': [413, 'error.too_large'],
  'request.size.invalid': [400, 'error.generic'],
  'request.aborted': [400, 'error.generic'],
  'charset.unsupported': [415, 'content_type.unsupported'],
  'encoding.unsupported': [415, 'content_encoding.unsupported'],
};

/** Writes `error` to the response as a problem document. */
export function respondWithProblem(ctx: Context, caught: unknown): void {
  const error = asUnavailable(caught);
  const log = ctx.state.log as Logger | undefined;
  const t = translator(pageLanguage(ctx));
  let status = 500;
  let code = 'error.server_error';

  // The JSON parser throws a SyntaxError with status 400 for malformed JSON, and for
  // `__proto__` keys (prototype poisoning, refused by co-body's bourne).
  const bodyError =
    error instanceof SyntaxError && (error as { status?: unknown }).status === 400
      ? bodyErrors['entity.parse.failed']
      : bodyErrors[String((error as { type?: unknown })?.type)];
  if (error instanceof AppError) {
    [status, code] = [error.status, hasText(error.code) ? error.code : 'error.generic'];
    log?.[status >= 500 ? 'warn' : 'info'](
      { error_code: error.code, detail: error.detail },
      'API request refused',
    );
    if (error.retryAfterSeconds !== undefined)
      ctx.set('Retry-After', String(error.retryAfterSeconds));
  } else if (bodyError) {
    [status, code] = bodyError;
    log?.info({ error_code: code, detail: (error as Error).message }, 'API request refused');
  } else {
    log?.error({ err: error }, 'unhandled error in the admin API');
  }

  const problem: Problem = {
    type: problemType(code),
    title: t(hasText(`problem.${status}`) ? `problem.${status}` : 'error.title'),
    status,
    detail: t(code),
    code,
  };
  if (error instanceof ValidationError) {
    problem.errors = Object.fromEntries(
      Object.entries(error.fields).map(([field, codes]) => [
        field,
        codes.map((fieldCode) => ({ code: fieldCode, message: t(fieldCode) })),
      ]),
    );
  }
  if (error instanceof AuthenticationError) ctx.set('WWW-Authenticate', error.challenge);

  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Language', pageLanguage(ctx));
  ctx.type = PROBLEM_TYPE;
  ctx.body = JSON.stringify(problem);
}
