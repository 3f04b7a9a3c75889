/**
 * Password hashing with argon2id, and the keyed fingerprint that lets the lockout counter
 * recognise a retyped wrong password without storing it.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';

import argon2 from 'argon2';

import { preparePassword } from './normalize.ts';

export interface Argon2Settings {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export class PasswordHasher {
  readonly #options: Argon2Settings & { type: typeof argon2.argon2id };
  readonly #fingerprintKey: Buffer;
  #dummyHash: Promise<string> | undefined;

  constructor(settings: Argon2Settings, fingerprintKey: Buffer) {
    this.#options = { ...settings, type: argon2.argon2id };
    this.#fingerprintKey = fingerprintKey;
  }

  hash(password: string): Promise<string> {
    return argon2.hash(preparePassword(password), this.#options);
  }

  /** True when `password` matches `hash`; a malformed hash counts as no match. */
  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2.verify(hash, preparePassword(password));
    } catch {
      return false;
    }
  }

  /**
   * Spends the time of one verification where there is no hash to check (unknown account,
   * locked account), so the answer's timing does not tell these cases apart.
   */
  async verifyNothing(password: string): Promise<false> {
    this.#dummyHash ??= this.hash(randomBytes(18).toString('base64'));
    await this.verify(await this.#dummyHash, password);
    return false;
  }

  /** True when `hash` was made with other parameters than the configured ones. */
  needsRehash(hash: string): boolean {
    try {
      return argon2.needsRehash(hash, this.#options);
    } catch {
      return true;
    }
  }

  /** A keyed, truncated digest of a wrong password, unique per account key. */
  fingerprint(scope: string, password: string): string {
    return createHmac('sha256', this.#fingerprintKey)
      .update(scope)
      .update('\0')
      .update(preparePassword(password))
      .digest('base64url')
      .slice(0, 22);
  }
}

const alphabets = {
  lower: 'abcdefghijkmnpqrstuvwxyz',
  upper: 'ABCDEFGHJKLMNPQRSTUVWXYZ',
  digit: '23456789',
  special: '!#$%+-=?@_',
};

/**
 * A random one-time password of 16 characters that satisfies the policy, without the
 * characters people confuse when they read it off a page (0/O, 1/l/I).
 */
export function generateInitialPassword(): string {
  const all = Object.values(alphabets).join('');
  const pick = (alphabet: string) => alphabet[randomInt(alphabet.length)]!;
  const chars = [
    pick(alphabets.lower),
    pick(alphabets.upper),
    pick(alphabets.digit),
    pick(alphabets.special),
  ];
  while (chars.length < 16) chars.push(pick(all));
  for (let i = chars.length - 1; i > 0; i -= 1) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join('');
}
