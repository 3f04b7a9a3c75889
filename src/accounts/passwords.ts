/**
 * Password hashing with argon2id, and the keyed fingerprint that lets the lockout counter
 * recognise a retyped wrong password without storing it.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';

import argon2 from 'argon2';

import { AppError } from '../errors.ts';
import { preparePassword } from './normalize.ts';

export interface Argon2Settings {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface HashQueueSettings {
  /** Hash operations running at once (argon2 runs on libuv's thread pool). */
  concurrency: number;
  /** Operations waiting for a free slot; one more is refused with 503. */
  queueLimit: number;
}

/** How long a refused caller should wait before it tries again. */
const BUSY_RETRY_SECONDS = 5;

/**
 * Runs at most `concurrency` operations at once and lets at most `queueLimit` wait; beyond
 * that it refuses at once, so a flood of attempts meets a 503 with `Retry-After` instead of
 * latency that grows without limit. The queue is per process: it guards this CPU. Without
 * it, libuv's thread pool (shared with file and DNS work) would be the queue, invisible; with
 * it, the waiting operations are a number an operator can watch
 * (`flueag_password_hashing_queue_depth`).
 */
/** The answer when the queue is full: 503 with `Retry-After`, like any busy service. */
export class HashQueueFull extends AppError {
  constructor() {
    super(503, 'service.busy', {
      detail: 'password hashing queue is full',
      retryAfterSeconds: BUSY_RETRY_SECONDS,
    });
  }
}

export class HashQueue {
  readonly #settings: HashQueueSettings;
  readonly #waiting: Array<() => void> = [];
  #active = 0;
  /** The largest number of waiting operations seen, for tests and load checks. */
  peakWaiting = 0;
  peakActive = 0;

  readonly #onQueueDepth: (depth: number) => void;

  /** `onQueueDepth` hears how many operations wait for a slot, at every change. */
  constructor(settings: HashQueueSettings, onQueueDepth: (depth: number) => void = () => {}) {
    this.#settings = settings;
    this.#onQueueDepth = onQueueDepth;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#settings.concurrency) {
      if (this.#waiting.length >= this.#settings.queueLimit) {
        throw new HashQueueFull();
      }
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
        this.peakWaiting = Math.max(this.peakWaiting, this.#waiting.length);
        this.#onQueueDepth(this.#waiting.length);
      });
    } else {
      this.#active += 1;
    }
    this.peakActive = Math.max(this.peakActive, this.#active);
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, or give it back.
      const next = this.#waiting.shift();
      if (next) {
        this.#onQueueDepth(this.#waiting.length);
        next();
      } else {
        this.#active -= 1;
      }
    }
  }
}

export class PasswordHasher {
  readonly #options: Argon2Settings & { type: typeof argon2.argon2id };
  readonly #fingerprintKey: Buffer;
  readonly queue: HashQueue;
  /** Made outside the queue, so a refusal by a full queue is never remembered. */
  readonly #dummyHash: Promise<string>;

  constructor(
    settings: Argon2Settings,
    fingerprintKey: Buffer,
    queue: HashQueueSettings = { concurrency: 4, queueLimit: 32 },
    onQueueDepth: (depth: number) => void = () => {},
  ) {
    this.#options = { ...settings, type: argon2.argon2id };
    this.#fingerprintKey = fingerprintKey;
    this.queue = new HashQueue(queue, onQueueDepth);
    // Made at start, so that the first unknown name costs no extra hash (a timing signal).
    this.#dummyHash = argon2.hash(randomBytes(18).toString('base64'), this.#options);
    this.#dummyHash.catch(() => {});
  }

  hash(password: string): Promise<string> {
    return this.queue.run(() => argon2.hash(preparePassword(password), this.#options));
  }

  /** True when `password` matches `hash`; a malformed hash counts as no match. */
  verify(hash: string, password: string): Promise<boolean> {
    return this.queue.run(async () => {
      try {
        return await argon2.verify(hash, preparePassword(password));
      } catch {
        return false;
      }
    });
  }

  /**
   * Spends the time of one verification where there is no hash to check (unknown account,
   * locked account), so the answer's timing does not tell these cases apart.
   */
  async verifyNothing(password: string): Promise<false> {
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
