/**
 * Builds the one validated configuration object from the environment. Every invalid value
 * is reported in one line that names the variable, so a wrong deployment stops at start.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { z } from 'zod';

import { environmentSchema, fileVariables } from '../config/schema.ts';

export interface Config {
  port: number;
  host: string;
  issuer: string;
  /** Unset means: run the embedded FerretDB under `dataDir`. */
  mongodbUri: string | undefined;
  dataDir: string;
  keysFile: string;
  /** The user explicitly named the keys file, so it must exist rather than be generated. */
  keysFileRequired: boolean;
  keys: {
    /** How often a server reads the key file for a change; 0 = only at start. */
    reloadSeconds: number;
    /** How long staged keys are published before `keys activate` lets them sign. */
    publishSeconds: number;
  };
  logLevel: string;
  /** Koa `proxy` and `maxIpsCount`: how many reverse-proxy hops to trust, 0 = none. */
  trustedProxyHops: number;
  seedDemo: boolean;
  reportingApiResource: string;
  support: { email: string; phone: string };
  password: {
    minLength: number;
    maxLength: number;
    maxAgeDays: number;
    history: number;
    initialValidDays: number;
  };
  lockout: { maxFailures: number; autoUnlockMinutes: number };
  throttle: {
    windowMinutes: number;
    baseDelayMs: number;
    maxDelayMs: number;
    nameFreeFailures: number;
    addressFreeFailures: number;
    addressConcurrentAttempts: number;
  };
  hashQueue: { concurrency: number; queueLimit: number };
  /** Failed sign-ins are answered no sooner than this (ms), to hide timing differences. */
  failureFloorMs: number;
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  ttl: {
    accessToken: number;
    idToken: number;
    refreshToken: number;
    session: number;
    /** A sign-in session and a console session end after this long without a request. */
    sessionIdle: number;
    interaction: number;
  };
  auditRetentionDays: number;
  /** The Prometheus listener; `port` undefined = no listener. */
  metrics: { port: number | undefined; host: string; token: string | undefined };
}

/** Where the product is installed: the folder of package.json. */
const installationDirectory = path.resolve(import.meta.dirname, '..');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * The error of a listener that cannot start, as one line naming the variables to change
 * (`names`: HOST and PORT, or METRICS_HOST and METRICS_PORT); other errors as they are.
 */
export function listenFailure(
  error: NodeJS.ErrnoException,
  names: { host: string; port: string },
  host: string,
  port: number,
): Error {
  const problem =
    error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' || error.code === 'EAI_NONAME'
      ? `${names.host}: ${host} is no address and no host name that resolves (${error.code})`
      : error.code === 'EADDRNOTAVAIL'
        ? `${names.host}: ${host} is not an address of this machine`
        : error.code === 'EADDRINUSE'
          ? `${names.port}: port ${port} is already in use on ${host}; set ${names.port} to a free port`
          : error.code === 'EACCES'
            ? `${names.port}: port ${port} needs privileges this process lacks; choose a port above 1023`
            : undefined;
  return problem === undefined ? error : new ConfigError(`invalid configuration: ${problem}`);
}

/** Validates `env` (by default the process environment) and returns the configuration. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable is refused rather than taken for unset: `PORT=` in a unit file or an
  // env file is a mistake more often than a wish for the default.
  const empty = Object.entries(env)
    .filter(([name, value]) => value === '' && knownVariables.has(name))
    .map(([name]) => `${name}: is empty; give it a value, or unset it to use the default`);
  const present = withFileVariables(
    Object.fromEntries(
      Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
    ) as Record<string, string>,
  );
  const parsed = environmentSchema.safeParse(present, { error: plainMessage });
  const problems = [
    ...empty,
    ...(parsed.error?.issues ?? [])
      .filter((issue) => !empty.some((line) => line.startsWith(`${String(issue.path[0])}:`)))
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`),
  ];
  if (problems.length > 0 || !parsed.success) {
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }

  const e = parsed.data;
  // The default is tied to the installation, not to the working directory: a CLI command
  // run from elsewhere must find the server's database rather than start an empty one.
  const dataDir =
    e.DATA_DIR === undefined ? path.join(installationDirectory, 'var') : path.resolve(e.DATA_DIR);
  // The origin as URL parsing spells it (lower-case scheme and host, no default port, no
  // trailing slash): relying parties compare `iss` and the endpoints character by character.
  const issuer = e.ISSUER === undefined ? `http://localhost:${e.PORT}` : new URL(e.ISSUER).origin;
  const trustedProxyHops =
    e.TRUST_PROXY === 'false' ? 0 : e.TRUST_PROXY === 'true' ? 1 : Number(e.TRUST_PROXY);
  if (issuer.startsWith('https:') && trustedProxyHops === 0) {
    // The server itself speaks plain HTTP; without trusted X-Forwarded-Proto its cookies
    // would lack `Secure` and its endpoints would not know they are reached over TLS.
    throw new ConfigError(
      'invalid configuration: ISSUER is https but TRUST_PROXY is false; run behind the TLS proxy and set TRUST_PROXY to its number of hops',
    );
  }

  if (e.SESSION_IDLE_SECONDS > e.SESSION_TTL_SECONDS) {
    throw new ConfigError(
      'invalid configuration: SESSION_IDLE_SECONDS must not exceed SESSION_TTL_SECONDS, the absolute lifetime of a session',
    );
  }

  if (e.SIGNIN_DELAY_BASE_MS > e.SIGNIN_DELAY_MAX_SECONDS * 1000) {
    throw new ConfigError(
      'invalid configuration: SIGNIN_DELAY_BASE_MS must not exceed SIGNIN_DELAY_MAX_SECONDS, the longest delay',
    );
  }

  if (e.METRICS_PORT !== 'off' && Number(e.METRICS_PORT) === e.PORT) {
    throw new ConfigError(
      'invalid configuration: METRICS_PORT: must differ from PORT; /metrics has a listener of its own',
    );
  }

  if (e.KEYS_RELOAD_SECONDS > 0 && e.KEYS_PUBLISH_SECONDS < 2 * e.KEYS_RELOAD_SECONDS) {
    // Staged keys must reach every server before they sign, or one server would sign with
    // a key that another does not publish yet.
    throw new ConfigError(
      'invalid configuration: KEYS_PUBLISH_SECONDS must be at least twice KEYS_RELOAD_SECONDS, so that every server publishes staged keys before they sign',
    );
  }

  return {
    port: e.PORT,
    host: e.HOST,
    issuer,
    mongodbUri: e.MONGODB_URI,
    dataDir,
    keysFile: path.resolve(e.KEYS_FILE ?? path.join(dataDir, 'keys.json')),
    keysFileRequired: e.KEYS_FILE !== undefined,
    keys: { reloadSeconds: e.KEYS_RELOAD_SECONDS, publishSeconds: e.KEYS_PUBLISH_SECONDS },
    logLevel: e.LOG_LEVEL,
    trustedProxyHops,
    seedDemo: e.DEMO_SEED ?? e.MONGODB_URI === undefined,
    reportingApiResource: e.REPORTING_API_RESOURCE,
    support: { email: e.SUPPORT_EMAIL, phone: e.SUPPORT_PHONE },
    password: {
      minLength: e.PASSWORD_MIN_LENGTH,
      maxLength: 256,
      maxAgeDays: e.PASSWORD_MAX_AGE_DAYS,
      history: e.PASSWORD_HISTORY,
      initialValidDays: e.INITIAL_PASSWORD_VALID_DAYS,
    },
    lockout: {
      maxFailures: e.LOCKOUT_MAX_FAILURES,
      autoUnlockMinutes: e.LOCKOUT_AUTO_UNLOCK_MINUTES,
    },
    throttle: {
      windowMinutes: e.SIGNIN_DELAY_WINDOW_MINUTES,
      baseDelayMs: e.SIGNIN_DELAY_BASE_MS,
      maxDelayMs: e.SIGNIN_DELAY_MAX_SECONDS * 1000,
      // One failure of a name goes without delay: a typo is retyped at once.
      nameFreeFailures: 1,
      addressFreeFailures: e.SIGNIN_FREE_FAILURES_PER_ADDRESS,
      addressConcurrentAttempts: e.SIGNIN_CONCURRENT_PER_ADDRESS,
    },
    // libuv runs argon2 on its pool of 4 threads; more at once would only queue there.
    failureFloorMs: e.SIGNIN_FAILURE_FLOOR_MS,
    hashQueue: {
      concurrency: e.HASH_CONCURRENCY ?? Math.min(4, os.availableParallelism()),
      queueLimit: e.HASH_QUEUE_LIMIT,
    },
    argon2: {
      memoryCost: e.ARGON2_MEMORY_KIB,
      timeCost: e.ARGON2_TIME_COST,
      parallelism: e.ARGON2_PARALLELISM,
    },
    ttl: {
      accessToken: e.ACCESS_TOKEN_TTL_SECONDS,
      idToken: e.ID_TOKEN_TTL_SECONDS,
      refreshToken: e.REFRESH_TOKEN_TTL_SECONDS,
      session: e.SESSION_TTL_SECONDS,
      sessionIdle: e.SESSION_IDLE_SECONDS,
      interaction: e.INTERACTION_TTL_SECONDS,
    },
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    metrics: {
      port: e.METRICS_PORT === 'off' ? undefined : Number(e.METRICS_PORT),
      host: e.METRICS_HOST,
      token: e.METRICS_TOKEN,
    },
  };
}

const knownVariables = new Set([
  ...Object.keys(environmentSchema.shape),
  ...fileVariables.map((name) => `${name}_FILE`),
]);

/**
 * The wording of zod's own messages for the checks the schema uses, in the words of the
 * configuration table; messages the schema spells out itself are kept.
 */
function plainMessage(issue: z.core.$ZodRawIssue): string | undefined {
  const bound = (value: unknown, inclusive: boolean | undefined, step: number) =>
    inclusive === false ? Number(value) + step : Number(value);
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected === 'number' || issue.expected === 'int'
        ? 'must be a whole number'
        : undefined;
    case 'too_small':
      return issue.origin === 'number'
        ? `must be at least ${bound(issue.minimum, issue.inclusive, 1)}`
        : `must be at least ${Number(issue.minimum)} characters`;
    case 'too_big':
      return issue.origin === 'number'
        ? `must be at most ${bound(issue.maximum, issue.inclusive, -1)}`
        : `must be at most ${Number(issue.maximum)} characters`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'url'
        ? 'must be an absolute URL'
        : issue.format === 'email'
          ? 'must be an e-mail address'
          : undefined;
    default:
      return undefined;
  }
}

/**
 * Replaces `<NAME>_FILE` by the content of that file (without trailing white space), so a
 * credential can come from a mounted secret instead of the process environment, which
 * `docker inspect` and `/proc/<pid>/environ` show.
 */
function withFileVariables(env: Record<string, string>): Record<string, string> {
  const result = { ...env };
  for (const name of fileVariables) {
    const file = env[`${name}_FILE`];
    if (file === undefined) continue;
    if (env[name] !== undefined)
      throw new ConfigError(`invalid configuration: set either ${name} or ${name}_FILE, not both`);
    try {
      // Editors and `echo` add line breaks, some editors a byte order mark; no credential
      // begins with a BOM or ends in white space.
      result[name] = readFileSync(file, 'utf8')
        .replace(/^\uFEFF/, '')
        .replace(/\s+$/, '');
    } catch (error) {
      throw new ConfigError(
        `invalid configuration: ${name}_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    delete result[`${name}_FILE`];
  }
  return result;
}
