/**
 * Rotation of the signing and cookie keys in three steps, the procedure of the library's
 * documentation (DOC#jwks) made safe for several servers behind one load balancer:
 *
 * 1. stage: new keys are appended; every server publishes them in the JWKS and accepts
 *    cookies signed with them, but signs with the old ones. A relying party that caches the
 *    JWKS has time to fetch it again.
 * 2. activate: once the staged keys have been published for `publishSeconds`, they sign;
 *    the keys they replace are retired and keep verifying.
 * 3. retire: a retired key is removed once nothing it signed can still be presented: ID
 *    tokens (also later, as `id_token_hint` at logout, which the library accepts expired),
 *    JWT access tokens and session cookies, plus the servers' reload interval and a margin
 *    for clocks that differ.
 *
 * Each step refuses to run early and says from when it may. `force` skips the waiting, for
 * a compromised key, accepting that relying parties fail to verify until they refetch.
 */
import type { Config } from '../config.ts';
import {
  cookieKeyId,
  KeyFileError,
  newCookieSecret,
  newSigningKeys,
  type CookieKey,
  type KeyHistory,
  type KeyMaterial,
  type KeyState,
  type SigningKey,
} from './keys.ts';

/** Clocks of servers and relying parties may differ by this much. */
export const CLOCK_SKEW_SECONDS = 300;

export interface RotationTimes {
  /** Staged keys are published at least this long before they may sign. */
  publishSeconds: number;
  /** A retired key stays at least this long. */
  retainSeconds: number;
}

export function rotationTimes(config: Config): RotationTimes {
  const longest = Math.max(config.ttl.idToken, config.ttl.accessToken, config.ttl.session);
  return {
    publishSeconds: config.keys.publishSeconds,
    retainSeconds: longest + config.keys.reloadSeconds + CLOCK_SKEW_SECONDS,
  };
}

/** One key as the operator sees it; never its secret. */
export interface KeyView {
  /** The `kid` of a signing key, a name derived from a cookie key. */
  id: string;
  use: 'tokens' | 'cookies';
  alg: string;
  state: KeyState;
  /** When it entered its state; null for a key retired before states were recorded. */
  since: string | null;
  /** Staged: from when `keys activate` may let it sign. Retired: from when it may go. */
  nextStepAt: string | null;
}

/** A refused step, with the time from which it would succeed where there is one. */
export class KeyRotationRefused extends KeyFileError {
  override name = 'KeyRotationRefused';
  readonly code: string;
  readonly possibleAt: string | undefined;

  constructor(code: string, message: string, possibleAt?: Date) {
    super(message);
    this.code = code;
    this.possibleAt = possibleAt?.toISOString();
  }
}

type AnyKey = SigningKey | CookieKey;

const isSigningKey = (key: AnyKey): key is SigningKey => 'jwk' in key;

/** Keys of one kind replace each other: one signer per key type, one for cookies. */
const kindOf = (key: AnyKey) => (isSigningKey(key) ? key.jwk.kty : 'cookie');

const addSeconds = (at: string, seconds: number) =>
  new Date(new Date(at).getTime() + seconds * 1000);

const sinceOf = (key: KeyHistory) =>
  key.state === 'staged' ? key.stagedAt : key.state === 'signing' ? key.activatedAt : key.retiredAt;

function algorithmsOf(key: AnyKey): string {
  if (!isSigningKey(key)) return 'HMAC';
  if (key.jwk.kty === 'RSA') return 'PS256 RS256';
  if (key.jwk.kty === 'OKP') return 'EdDSA';
  return key.jwk.crv === 'P-384' ? 'ES384' : key.jwk.crv === 'P-521' ? 'ES512' : 'ES256';
}

function nextStepOf(key: AnyKey, times: RotationTimes): Date | null {
  if (key.state === 'staged' && key.stagedAt) return addSeconds(key.stagedAt, times.publishSeconds);
  if (key.state === 'retired' && key.retiredAt)
    return addSeconds(key.retiredAt, times.retainSeconds);
  return null;
}

export function viewOf(key: AnyKey, times: RotationTimes): KeyView {
  return {
    id: isSigningKey(key) ? key.jwk.kid : cookieKeyId(key),
    use: isSigningKey(key) ? 'tokens' : 'cookies',
    alg: algorithmsOf(key),
    state: key.state,
    since: sinceOf(key),
    nextStepAt: nextStepOf(key, times)?.toISOString() ?? null,
  };
}

/** Every key, signing keys first, then cookie keys. */
export function describeKeys(material: KeyMaterial, times: RotationTimes): KeyView[] {
  return [...material.signingKeys, ...material.cookieKeys].map((key) => viewOf(key, times));
}

const allKeys = (material: KeyMaterial): AnyKey[] => [
  ...material.signingKeys,
  ...material.cookieKeys,
];

/**
 * Starts the clock for keys retired before states were recorded: nothing says when they
 * stopped signing, so they count as retired from the first `keys` command that rewrites
 * the file. Returns whether a key was changed.
 */
export function stampUnknownRetirements(material: KeyMaterial, now: Date): boolean {
  let changed = false;
  for (const key of allKeys(material)) {
    if (key.state !== 'retired' || key.retiredAt !== null) continue;
    key.retiredAt = now.toISOString();
    changed = true;
  }
  return changed;
}

/** Step 1: appends a new EC and RSA signing key and a new cookie key, for verification only. */
export function stageKeys(
  current: KeyMaterial,
  now: Date,
  times: RotationTimes,
): { material: KeyMaterial; staged: KeyView[] } {
  const material = structuredClone(current);
  const pending = allKeys(material).filter((key) => key.state === 'staged');
  if (pending.length > 0) {
    const from = latest(pending.map((key) => nextStepOf(key, times)));
    throw new KeyRotationRefused(
      'keys.already_staged',
      `new keys are staged already (${pending.map((key) => viewOf(key, times).id).join(', ')}): make them sign with "keys activate"${from ? `, possible from ${from.toISOString()}` : ''}`,
      from ?? undefined,
    );
  }
  stampUnknownRetirements(material, now);

  const at = now.toISOString();
  const staged = { state: 'staged' as const, stagedAt: at, activatedAt: null, retiredAt: null };
  const signingKeys = newSigningKeys(now).map((jwk) => ({ jwk, ...staged }));
  const cookieKey = { secret: newCookieSecret(), ...staged };
  material.signingKeys.push(...signingKeys);
  material.cookieKeys.push(cookieKey);
  return {
    material,
    staged: [...signingKeys, cookieKey].map((key) => viewOf(key, times)),
  };
}

/**
 * Step 2: the staged keys sign from now on; the keys of the same kind that signed until now
 * are retired. Refused until the staged keys have been published for `publishSeconds`.
 */
export function activateKeys(
  current: KeyMaterial,
  now: Date,
  times: RotationTimes,
  options: { force?: boolean } = {},
): { material: KeyMaterial; activated: KeyView[]; retired: KeyView[] } {
  const material = structuredClone(current);
  const staged = allKeys(material).filter((key) => key.state === 'staged');
  if (staged.length === 0)
    throw new KeyRotationRefused(
      'keys.nothing_staged',
      'no keys are staged: stage new ones with "keys rotate" first',
    );
  const from = latest(staged.map((key) => nextStepOf(key, times)));
  if (!options.force && from && now < from)
    throw new KeyRotationRefused(
      'keys.not_yet_published',
      `the staged keys have not been published for ${times.publishSeconds} s yet (KEYS_PUBLISH_SECONDS): servers and relying parties might not know them; "keys activate" is possible from ${from.toISOString()}`,
      from,
    );
  stampUnknownRetirements(material, now);

  const at = now.toISOString();
  const retired: AnyKey[] = [];
  for (const key of staged) {
    for (const previous of allKeys(material)) {
      if (previous.state !== 'signing' || kindOf(previous) !== kindOf(key)) continue;
      Object.assign(previous, { state: 'retired', retiredAt: at });
      retired.push(previous);
    }
    Object.assign(key, { state: 'signing', activatedAt: at });
  }
  return {
    material,
    activated: staged.map((key) => viewOf(key, times)),
    retired: retired.map((key) => viewOf(key, times)),
  };
}

/**
 * Step 3: removes the retired keys that nothing valid can depend on any more. Refused when
 * every retired key is still needed; keys that are still needed stay either way.
 */
export function retireKeys(
  current: KeyMaterial,
  now: Date,
  times: RotationTimes,
  options: { force?: boolean } = {},
): { material: KeyMaterial; removed: KeyView[]; kept: KeyView[] } {
  const material = structuredClone(current);
  stampUnknownRetirements(material, now);
  const retired = allKeys(material).filter((key) => key.state === 'retired');
  const removable = (key: AnyKey) => options.force || (nextStepOf(key, times) ?? now) <= now;
  const removed = retired.filter(removable);
  const kept = retired.filter((key) => !removable(key));
  if (retired.length > 0 && removed.length === 0) {
    const from = earliest(kept.map((key) => nextStepOf(key, times)))!;
    throw new KeyRotationRefused(
      'keys.still_verifying',
      `the retired keys may still verify valid ID tokens, access tokens or session cookies: "keys retire" is possible from ${from.toISOString()}`,
      from,
    );
  }

  const gone = new Set<AnyKey>(removed);
  material.signingKeys = material.signingKeys.filter((key) => !gone.has(key));
  material.cookieKeys = material.cookieKeys.filter((key) => !gone.has(key));
  return {
    material,
    removed: removed.map((key) => viewOf(key, times)),
    kept: kept.map((key) => viewOf(key, times)),
  };
}

function latest(dates: (Date | null)[]): Date | null {
  const known = dates.filter((date): date is Date => date !== null);
  return known.length === 0 ? null : new Date(Math.max(...known.map(Number)));
}

function earliest(dates: (Date | null)[]): Date | null {
  const known = dates.filter((date): date is Date => date !== null);
  return known.length === 0 ? null : new Date(Math.min(...known.map(Number)));
}
