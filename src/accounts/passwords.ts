/**
 * Password hashing with argon2id, and the keyed fingerprint that lets the lockout counter
 * recognise a retyped wrong password without storing it.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';

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
  readonly #slots: HashingSlots;
  #dummyHash: Promise<string> | undefined;

  /** `onQueueDepth` hears how many hashing operations wait for a slot, at every change. */
  constructor(
    settings: Argon2Settings,
    fingerprintKey: Buffer,
    onQueueDepth: (depth: number) => void = () => {},
  ) {
    this.#options = { ...settings, type: argon2.argon2id };
    this.#fingerprintKey = fingerprintKey;
    this.#slots = new HashingSlots(availableParallelism(), onQueueDepth);
  }

  hash(password: string): Promise<string> {
    return this.#slots.run(() => argon2.hash(preparePassword(password), this.#options));
  }

  /** True when `password` matches `hash`; a malformed hash counts as no match. */
  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await this.#slots.run(() => argon2.verify(hash, preparePassword(password)));
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

/**
 * At most one argon2 operation per core at a time; the rest wait in order. Without the
 * limit, libuv's thread pool (4 threads, shared with file and DNS work) would be the queue,
 * invisible and oversubscribing a smaller machine; with it, the waiting operations are a
 * number an operator can watch (`flueag_password_hashing_queue_depth`).
 */
class HashingSlots {
  readonly #waiting: (() => void)[] = [];
  readonly #onQueueDepth: (depth: number) => void;
  #free: number;

  constructor(size: number, onQueueDepth: (depth: number) => void) {
    this.#free = size;
    this.#onQueueDepth = onQueueDepth;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) {
      this.#free -= 1;
    } else {
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
        this.#onQueueDepth(this.#waiting.length);
      });
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) {
        this.#onQueueDepth(this.#waiting.length);
        next();
      } else {
        this.#free += 1;
      }
    }
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
