/**
 * The configuration schema: every setting, its environment variable, its default and its
 * bounds. `src/config.ts` builds the validated object from this at start; nothing else reads
 * `process.env`.
 */
import { isIPv4 } from 'node:net';

import { z } from 'zod';

const positiveInt = z.coerce.number().int().positive();
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

/** Environment variables and the schema of their values. Absent means "use the default". */
export const environmentSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: listenHost.default('0.0.0.0'),
  ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .optional(),
  DATA_DIR: z.string().min(1).default('var'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  TRUST_PROXY: z
    .string()
    .regex(/^(false|true|[0-9]+)$/, 'must be false, true or the number of trusted proxy hops')
    .default('false'),
  KEYS_FILE: z.string().min(1).optional(),
  KEYS_RELOAD_SECONDS: z.coerce.number().int().min(0).max(3600).default(10),
  KEYS_PUBLISH_SECONDS: positiveInt.max(7 * 86400).default(600),
  DEMO_SEED: flag.optional(),

  REPORTING_API_RESOURCE: z.url().default('urn:flueag:meldeverfahren-api'),
  SUPPORT_EMAIL: z.email().default('servicedesk@flueag.nrw.example'),
  SUPPORT_PHONE: z.string().min(3).max(40).default('0211 000000-0'),

  PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).max(128).default(8),
  PASSWORD_MAX_AGE_DAYS: positiveInt.max(3650).default(180),
  PASSWORD_HISTORY: z.coerce.number().int().min(0).max(24).default(5),
  INITIAL_PASSWORD_VALID_DAYS: positiveInt.max(365).default(14),
  LOCKOUT_MAX_FAILURES: positiveInt.max(100).default(5),
  LOCKOUT_AUTO_UNLOCK_MINUTES: z.coerce.number().int().min(0).default(0),
  SIGNIN_FAILURE_FLOOR_MS: z.coerce.number().int().min(0).max(5000).default(300),
  SIGNIN_DELAY_BASE_MS: z.coerce.number().int().min(0).max(10_000).default(1000),
  SIGNIN_DELAY_MAX_SECONDS: positiveInt.max(3600).default(60),
  SIGNIN_DELAY_WINDOW_MINUTES: positiveInt.max(1440).default(15),
  SIGNIN_FREE_FAILURES_PER_ADDRESS: z.coerce.number().int().min(0).max(10_000).default(10),
  SIGNIN_CONCURRENT_PER_ADDRESS: positiveInt.max(10_000).default(20),
  HASH_CONCURRENCY: positiveInt.max(64).optional(),
  HASH_QUEUE_LIMIT: z.coerce.number().int().min(0).max(10_000).default(32),

  ARGON2_MEMORY_KIB: z.coerce.number().int().min(19456).max(4194304).default(19456),
  ARGON2_TIME_COST: z.coerce.number().int().min(2).max(20).default(2),
  ARGON2_PARALLELISM: z.coerce.number().int().min(1).max(16).default(1),

  ACCESS_TOKEN_TTL_SECONDS: positiveInt.max(3600).default(600),
  ID_TOKEN_TTL_SECONDS: positiveInt.max(86400).default(3600),
  REFRESH_TOKEN_TTL_SECONDS: positiveInt.max(30 * 86400).default(8 * 3600),
  SESSION_TTL_SECONDS: positiveInt.max(30 * 86400).default(8 * 3600),
  SESSION_IDLE_SECONDS: positiveInt.max(30 * 86400).default(30 * 60),
  INTERACTION_TTL_SECONDS: positiveInt.max(86400).default(15 * 60),
  AUDIT_RETENTION_DAYS: positiveInt.default(400),

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
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
});

/**
 * Variables that may instead be read from a file named by `<NAME>_FILE` (Docker and
 * Kubernetes secrets), because their values are credentials.
 */
export const fileVariables = ['MONGODB_URI', 'METRICS_TOKEN'] as const;

export type Environment = z.input<typeof environmentSchema>;
