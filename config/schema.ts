/**
 * The configuration schema: every setting, its environment variable, its default and its
 * bounds. `src/config.ts` builds the validated object from this at start; nothing else reads
 * `process.env`.
 */
import { isIPv4 } from 'node:net';

import { z } from 'zod';

/**
 * A whole number from `min` to `max`, written in decimal digits only: `0x10`, `1e3` and
 * ` 3000 ` are refused rather than read as 16, 1000 and 3000.
 */
const whole = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min).max(max));

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => ['true', '1', 'yes'].includes(value));

/**
 * An address or host name to listen on. A value of digits and dots is taken for an IPv4
 * address and must be one: `999.1.1.1` would otherwise be looked up as a host name. Whether
 * a name resolves is known only when the server listens (`src/failures.ts` names the
 * variable then).
 */
const listenHost = z
  .string()
  .min(1)
  .refine(
    (value) => !/^[0-9.]+$/.test(value) || isIPv4(value),
    'must be a valid IP address or a host name',
  );

/** True for a host name or address that means this machine. */
const isLoopbackHost = (hostname: string) =>
  hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);

/** Environment variables and the schema of their values. Absent means "use the default". */
export const environmentSchema = z.object({
  PORT: whole(1, 65535).default(3000),
  HOST: listenHost.default('0.0.0.0'),
  ISSUER: z
    .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
    .refine(
      (value) => !/[?#@]/.test(value),
      'must not carry a query, a fragment or user credentials (OpenID Connect Discovery, section 3)',
    )
    .refine(
      (value) => /^\/*$/.test(new URL(value).pathname),
      'must be scheme, host and port only: the provider serves at the root of its host',
    )
    .refine(
      (value) => new URL(value).protocol === 'https:' || isLoopbackHost(new URL(value).hostname),
      'must be https (behind the TLS proxy) unless its host is this machine: localhost, 127.x.x.x or [::1]',
    )
    .optional(),
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .optional(),
  // Unset: `var/` in the installation directory, wherever the command runs from.
  DATA_DIR: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  TRUST_PROXY: z
    .string()
    .regex(
      /^(false|true|[0-9]|10)$/,
      'must be false, true or the number of trusted proxy hops (0 to 10)',
    )
    .default('false'),
  KEYS_FILE: z.string().min(1).optional(),
  KEYS_RELOAD_SECONDS: whole(0, 3600).default(10),
  KEYS_PUBLISH_SECONDS: whole(1, 7 * 86400).default(600),
  DEMO_SEED: flag.optional(),

  // RFC 8707, section 2: an absolute URI without a fragment.
  REPORTING_API_RESOURCE: z
    .url({ protocol: /^(https?|urn)$/, error: 'must be an absolute https, http or urn URI' })
    .refine((value) => !value.includes('#'), 'must not carry a fragment (RFC 8707, section 2)')
    .refine((value) => new URL(value).username === '', 'must not carry user credentials')
    .default('urn:flueag:meldeverfahren-api'),
  SUPPORT_EMAIL: z.email().default('servicedesk@flueag.nrw.example'),
  SUPPORT_PHONE: z
    .string()
    .trim()
    .max(60)
    .regex(/^[^\p{Cc}\p{Cf}]*[0-9][^\p{Cc}\p{Cf}]*$/u, 'must be a telephone number, with digits')
    .default('0211 000000-0'),

  PASSWORD_MIN_LENGTH: whole(8, 128).default(8),
  PASSWORD_MAX_AGE_DAYS: whole(1, 3650).default(180),
  PASSWORD_HISTORY: whole(0, 24).default(5),
  INITIAL_PASSWORD_VALID_DAYS: whole(1, 365).default(14),
  LOCKOUT_MAX_FAILURES: whole(1, 100).default(5),
  LOCKOUT_AUTO_UNLOCK_MINUTES: whole(0, 525_600).default(0),
  SIGNIN_FAILURE_FLOOR_MS: whole(0, 5000).default(300),
  SIGNIN_DELAY_BASE_MS: whole(0, 10_000).default(1000),
  SIGNIN_DELAY_MAX_SECONDS: whole(1, 3600).default(60),
  SIGNIN_DELAY_WINDOW_MINUTES: whole(1, 1440).default(15),
  SIGNIN_FREE_FAILURES_PER_ADDRESS: whole(0, 10_000).default(10),
  SIGNIN_CONCURRENT_PER_ADDRESS: whole(1, 10_000).default(20),
  HASH_CONCURRENCY: whole(1, 64).optional(),
  HASH_QUEUE_LIMIT: whole(0, 10_000).default(32),

  ARGON2_MEMORY_KIB: whole(19456, 4194304).default(19456),
  ARGON2_TIME_COST: whole(2, 20).default(2),
  ARGON2_PARALLELISM: whole(1, 16).default(1),

  ACCESS_TOKEN_TTL_SECONDS: whole(1, 3600).default(600),
  ID_TOKEN_TTL_SECONDS: whole(1, 86400).default(3600),
  REFRESH_TOKEN_TTL_SECONDS: whole(1, 30 * 86400).default(8 * 3600),
  SESSION_TTL_SECONDS: whole(1, 30 * 86400).default(8 * 3600),
  SESSION_IDLE_SECONDS: whole(1, 30 * 86400).default(30 * 60),
  INTERACTION_TTL_SECONDS: whole(1, 86400).default(15 * 60),
  AUDIT_RETENTION_DAYS: whole(1, 36_500).default(400),

  // The Prometheus listener is separate from the public one, on loopback unless told
  // otherwise, so that /metrics never reaches the internet through the proxy by accident.
  METRICS_PORT: z
    .string()
    .refine(
      (value) => value === 'off' || (/^[0-9]{1,5}$/.test(value) && Number(value) <= 65535),
      'must be a port number from 0 (any free port) to 65535, or off',
    )
    .default('9464'),
  METRICS_HOST: listenHost.default('127.0.0.1'),
  METRICS_TOKEN: z
    .string()
    .regex(/^\S*$/, 'must not contain spaces or line breaks')
    .min(32, 'must be at least 32 characters')
    .optional(),
});

/**
 * Variables that may instead be read from a file named by `<NAME>_FILE` (Docker and
 * Kubernetes secrets), because their values are credentials.
 */
export const fileVariables = ['MONGODB_URI', 'METRICS_TOKEN'] as const;

export type Environment = z.input<typeof environmentSchema>;
