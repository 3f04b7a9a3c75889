/**
 * The provider's secrets: token signing keys (private JWKs), the cookie signing keys and
 * the key of the wrong-password fingerprints. Kept in one JSON file with mode 0600; the
 * embedded default generates it under the data directory at first start.
 *
 * Every signing and cookie key records its state and when it entered it (see
 * key-rotation.ts for the moves between them):
 * - `staged`: published for verification only, so that every server and every relying
 *   party knows it before it signs;
 * - `signing`: signs new tokens (one key per key type) or new cookies (one cookie key);
 * - `retired`: signs nothing, still verifies what it signed until that has expired.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { z } from 'zod';

import { describeFileError, makeDirectory } from '../files.ts';

export const keyStates = ['staged', 'signing', 'retired'] as const;
export type KeyState = (typeof keyStates)[number];

/**
 * When a key entered each of its states (ISO 8601). `null` where it has not, or where a key
 * file written before the states were recorded does not say.
 */
export interface KeyHistory {
  state: KeyState;
  stagedAt: string | null;
  activatedAt: string | null;
  retiredAt: string | null;
}

/** A private JWK as the provider takes it. */
export type PrivateJwk = { kty: 'EC' | 'RSA' | 'OKP'; kid: string; d: string } & Record<
  string,
  unknown
>;

export interface SigningKey extends KeyHistory {
  jwk: PrivateJwk;
}

export interface CookieKey extends KeyHistory {
  /** A Keygrip key (HMAC); never printed. */
  secret: string;
}

export interface KeyMaterial {
  signingKeys: SigningKey[];
  cookieKeys: CookieKey[];
  fingerprintKey: string;
}

const KEY_FILE_VERSION = 2;

const timestamp = z.iso.datetime().nullable();
const history = {
  state: z.enum(keyStates),
  stagedAt: timestamp,
  activatedAt: timestamp,
  retiredAt: timestamp,
};
const privateJwk = z.looseObject({
  kty: z.enum(['EC', 'RSA', 'OKP']),
  kid: z.string().min(1),
  d: z.string().min(1),
});
const secret = z.string().min(32);

const keyFileSchema = z.object({
  version: z.literal(KEY_FILE_VERSION),
  signingKeys: z.array(z.object({ ...history, jwk: privateJwk })).min(1),
  cookieKeys: z.array(z.object({ ...history, secret })).min(1),
  fingerprintKey: secret,
});

/**
 * The layout before key states: `jwks.keys` with the signing key of each type first (the
 * provider signs with the first key that fits), the newest cookie key first.
 */
const legacyKeyFileSchema = z.object({
  jwks: z.object({ keys: z.array(privateJwk).min(1) }),
  cookieKeys: z.array(secret).min(1),
  fingerprintKey: secret,
});

export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

/** Reads the key file, or creates it when it is missing and `create` is allowed. */
export async function loadKeyMaterial(file: string, create: boolean): Promise<KeyMaterial> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new KeyFileError(
        `cannot read the key file ${file}: ${describeFileError(error, 'read')}`,
      );
    if (!create) throw new KeyFileError(`KEYS_FILE ${file} does not exist`);
    // Read back as every later reader (the key file watch) reads it, also after creating it.
    await createKeyMaterial(file);
    return loadKeyMaterial(file, false);
  }
  return parseKeyMaterial(text, file);
}

/** Validates the text of a key file, in the current layout or the one before key states. */
export function parseKeyMaterial(text: string, file: string): KeyMaterial {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyFileError(`key file ${file} is not valid JSON`);
  }
  const isLegacy = typeof json === 'object' && json !== null && !('version' in json);
  const parsed = isLegacy ? legacyKeyFileSchema.safeParse(json) : keyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KeyFileError(
      `key file ${file} is invalid: ${issue?.path.join('.') || 'file'}: ${issue?.message}`,
    );
  }
  let material: KeyMaterial;
  if ('jwks' in parsed.data) {
    material = fromLegacy(parsed.data);
  } else {
    const { signingKeys, cookieKeys, fingerprintKey } = parsed.data;
    material = { signingKeys: signingKeys as SigningKey[], cookieKeys, fingerprintKey };
  }
  const problem = consistencyProblem(material);
  if (problem) throw new KeyFileError(`key file ${file} is invalid: ${problem}`);
  return material;
}

/** What the provider needs that a schema cannot say: one signer per key type, unique ids. */
function consistencyProblem(material: KeyMaterial): string | undefined {
  const kids = material.signingKeys.map((key) => key.jwk.kid);
  if (new Set(kids).size !== kids.length) return 'it repeats a kid';
  const types = new Set(material.signingKeys.map((key) => key.jwk.kty));
  for (const type of types) {
    const signing = material.signingKeys.filter(
      (key) => key.jwk.kty === type && key.state === 'signing',
    );
    if (signing.length !== 1)
      return `it needs exactly one signing ${type} key, not ${signing.length}`;
  }
  const es256 = material.signingKeys.some(
    (key) => key.state === 'signing' && key.jwk.kty === 'EC' && key.jwk.crv === 'P-256',
  );
  if (!es256) return 'it has no signing EC P-256 key (ES256, the default algorithm)';
  const cookieSigners = material.cookieKeys.filter((key) => key.state === 'signing');
  if (cookieSigners.length !== 1)
    return `it needs exactly one signing cookie key, not ${cookieSigners.length}`;
  return undefined;
}

/**
 * A key file from before key states: the first key of each type and the first cookie key
 * sign; the others are retired at a time the file does not record.
 */
function fromLegacy(legacy: z.infer<typeof legacyKeyFileSchema>): KeyMaterial {
  const seen = new Set<string>();
  const unknown = { stagedAt: null, activatedAt: null, retiredAt: null };
  return {
    signingKeys: legacy.jwks.keys.map((jwk) => {
      const first = !seen.has(jwk.kty);
      seen.add(jwk.kty);
      return { jwk: jwk as PrivateJwk, state: first ? 'signing' : 'retired', ...unknown };
    }),
    cookieKeys: legacy.cookieKeys.map((value, index) => ({
      secret: value,
      state: index === 0 ? 'signing' : 'retired',
      ...unknown,
    })),
    fingerprintKey: legacy.fingerprintKey,
  };
}

/**
 * Creates the key file unless another process got there first, whose keys the caller then
 * reads. Servers that share a data directory and start together must all end up with the
 * same keys: a server with keys of its own would reject the cookies and tokens of the
 * others. `link` fails when the name exists, where `rename` would silently replace the
 * other process's file.
 */
async function createKeyMaterial(file: string): Promise<void> {
  await makeDirectory(path.dirname(file), 0o700);
  const temporary = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  await writeFile(temporary, serialise(newKeyMaterial()), { mode: 0o600 });
  try {
    await link(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

/**
 * Writes the file atomically with owner-only permissions: a server that reads it meanwhile
 * sees the old file or the new one, never half of one.
 */
export async function saveKeyMaterial(file: string, material: KeyMaterial): Promise<void> {
  await makeDirectory(path.dirname(file), 0o700);
  const temporary = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  await writeFile(temporary, serialise(material), { mode: 0o600 });
  await rename(temporary, file);
}

function serialise(material: KeyMaterial): string {
  return `${JSON.stringify({ version: KEY_FILE_VERSION, ...material }, null, 2)}\n`;
}

/** Keys for a new installation: they sign at once, since nobody knows older ones. */
export function newKeyMaterial(now = new Date()): KeyMaterial {
  const at = now.toISOString();
  const signing = { state: 'signing' as const, stagedAt: at, activatedAt: at, retiredAt: null };
  return {
    signingKeys: newSigningKeys(now).map((jwk) => ({ jwk, ...signing })),
    cookieKeys: [{ secret: newCookieSecret(), ...signing }],
    fingerprintKey: randomBytes(32).toString('base64url'),
  };
}

/** An EC P-256 key (ES256, the default) and an RSA-3072 key (PS256, and RS256 on request). */
export function newSigningKeys(now = new Date()): PrivateJwk[] {
  const stamp = now.toISOString().slice(0, 10);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    format: 'jwk',
  });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey.export({
    format: 'jwk',
  });
  return [
    { ...ec, kid: `ec-${stamp}-${randomUUID().slice(0, 8)}`, use: 'sig' } as PrivateJwk,
    { ...rsa, kid: `rsa-${stamp}-${randomUUID().slice(0, 8)}`, use: 'sig' } as PrivateJwk,
  ];
}

export const newCookieSecret = () => randomBytes(32).toString('base64url');

/** A name for a cookie key that tells it apart without showing it. */
export const cookieKeyId = (key: CookieKey) =>
  `cookie-${createHash('sha256').update(key.secret).digest('base64url').slice(0, 10)}`;

/** Signing keys first, then staged ones, then retired ones. */
function providerOrder<T extends KeyHistory>(keys: T[]): T[] {
  return (['signing', 'staged', 'retired'] as const).flatMap((state) =>
    keys.filter((key) => key.state === state),
  );
}

/**
 * The private JWKS for the provider. It signs with the first key that fits the algorithm
 * and verifies with any (DOC#jwks: a key appended at the end only verifies), so the signing
 * keys come first. Its public JWKS endpoint strips the private members.
 */
export function providerJwks(material: KeyMaterial): { keys: PrivateJwk[] } {
  return { keys: providerOrder(material.signingKeys).map((key) => key.jwk) };
}

/** Keygrip keys for the cookies: the first signs, every one verifies. */
export function providerCookieKeys(material: KeyMaterial): string[] {
  return providerOrder(material.cookieKeys).map((key) => key.secret);
}
