/**
 * One base error for the whole product: an HTTP status, a stable code that doubles as the
 * text key of the German message, and a private detail that only the log sees.
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  readonly code: string;
  readonly detail: string | undefined;
  /** For 429 and 503: the `Retry-After` the answer carries. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    status: number,
    code: string,
    options: { detail?: string; cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(code, { cause: options.cause });
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Input that fails validation; `fields` maps each field to the codes of its problems. */
export class ValidationError extends AppError {
  override name = 'ValidationError';
  readonly fields: Record<string, string[]>;

  constructor(fields: Record<string, string[]>, detail?: string) {
    super(400, 'input.invalid', detail === undefined ? {} : { detail });
    this.fields = fields;
  }
}

export const notFound = (code = 'not_found', detail?: string) =>
  new AppError(404, code, detail === undefined ? {} : { detail });

export const conflict = (code: string, detail?: string) =>
  new AppError(409, code, detail === undefined ? {} : { detail });
