/**
 * The provider's secrets: token signing keys (a private JWKS), the cookie signing keys and
 * the key of the wrong-password fingerprints. Kept in one JSON file with mode 0600; the
 * embedded default generates it under the data directory at first start.
 */
import { generateKeyPairSync, randomBytes, randomUUID, type JsonWebKey } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { z } from 'zod';

export interface KeyMaterial {
  /** Private JWKs, the signing key of each type first. */
  jwks: { keys: JsonWebKey[] };
  /** Keygrip keys for cookie signatures, the newest first. */
  cookieKeys: string[];
  fingerprintKey: string;
}

const keyMaterialSchema = z.object({
  jwks: z.object({
    keys: z
      .array(
        z.looseObject({
          kty: z.enum(['EC', 'RSA', 'OKP']),
          kid: z.string().min(1),
          d: z.string().min(1),
        }),
      )
      .min(1),
  }),
  cookieKeys: z.array(z.string().min(32)).min(1),
  fingerprintKey: z.string().min(32),
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
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (!create) throw new KeyFileError(`KEYS_FILE ${file} does not exist`);
    return (await createKeyMaterial(file)) ?? loadKeyMaterial(file, false);
  }

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyFileError(`key file ${file} is not valid JSON`);
  }
  const parsed = keyMaterialSchema.safeParse(json);
  if (!parsed.success)
    throw new KeyFileError(`key file ${file} is invalid: ${parsed.error.issues[0]?.message}`);
  const kids = parsed.data.jwks.keys.map((key) => key.kid);
  if (new Set(kids).size !== kids.length) throw new KeyFileError(`key file ${file} repeats a kid`);
  return parsed.data as KeyMaterial;
}

/**
 * Creates the key file unless another process got there first, in which case it returns
 * undefined and the caller reads that process's keys. Servers that share a data directory
 * and start together must all end up with the same keys: a server with keys of its own
 * would reject the cookies and tokens of the others. `link` fails when the name exists,
 * where `rename` would silently replace the other process's file.
 */
async function createKeyMaterial(file: string): Promise<KeyMaterial | undefined> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const material = newKeyMaterial();
  const temporary = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  await writeFile(temporary, `${JSON.stringify(material, null, 2)}\n`, { mode: 0o600 });
  try {
    await link(temporary, file);
    return material;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return undefined;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

/** Writes the file atomically with owner-only permissions. */
export async function saveKeyMaterial(file: string, material: KeyMaterial): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(material, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

export function newKeyMaterial(): KeyMaterial {
  return {
    jwks: { keys: newSigningKeys() },
    cookieKeys: [randomBytes(32).toString('base64url')],
    fingerprintKey: randomBytes(32).toString('base64url'),
  };
}

/** An EC P-256 key (ES256, the default) and an RSA-3072 key (PS256, and RS256 on request). */
export function newSigningKeys(): JsonWebKey[] {
  const stamp = new Date().toISOString().slice(0, 10);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    format: 'jwk',
  });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey.export({
    format: 'jwk',
  });
  return [
    { ...ec, kid: `ec-${stamp}-${randomUUID().slice(0, 8)}`, use: 'sig' },
    { ...rsa, kid: `rsa-${stamp}-${randomUUID().slice(0, 8)}`, use: 'sig' },
  ];
}

/**
 * Puts new signing keys in front, so they sign from the next start on, and keeps the old
 * ones for verification of tokens they signed. Adds a new cookie key the same way.
 */
export function rotate(material: KeyMaterial): KeyMaterial {
  return {
    jwks: { keys: [...newSigningKeys(), ...material.jwks.keys] },
    cookieKeys: [randomBytes(32).toString('base64url'), ...material.cookieKeys].slice(0, 5),
    fingerprintKey: material.fingerprintKey,
  };
}
