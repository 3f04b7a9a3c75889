/**
 * How long a failed sign-in waits before it is answered, so that the cases (unknown tenant,
 * unknown name, wrong password, locked account) take the same time (ASVS 5.0 6.3.8).
 *
 * Every failure costs one argon2 verification (the dummy hash where no account exists), but
 * the cases still do different database work, which shows as soon as the database is busy.
 * A fixed floor hides that only while the work stays below it. So the floor follows the
 * failures themselves: a failure is answered no sooner than the configured floor and no
 * sooner than the 95th percentile of the recent failures' own durations, up to a cap. Under
 * load every failure then waits as long as a slow one; beyond the percentile, the slowest
 * few still stand out.
 */
export interface FailureFloorSettings {
  /** The least time a failure takes, in ms; 0 turns the floor off. */
  baseMs: number;
  /** How many recent failures the percentile is taken over. */
  window?: number;
  /** The longest a failure is held, in ms. */
  capMs?: number;
}

const PERCENTILE = 0.95;

export class FailureFloor {
  readonly #baseMs: number;
  readonly #window: number;
  readonly #capMs: number;
  readonly #recent: number[] = [];
  #next = 0;

  constructor({ baseMs, window = 200, capMs = 10_000 }: FailureFloorSettings) {
    this.#baseMs = baseMs;
    this.#window = window;
    this.#capMs = Math.max(capMs, baseMs);
  }

  /** Notes how long the work of a failure took, before any waiting. */
  record(durationMs: number): void {
    if (this.#baseMs === 0) return;
    if (this.#recent.length < this.#window) this.#recent.push(durationMs);
    else this.#recent[this.#next] = durationMs;
    this.#next = (this.#next + 1) % this.#window;
  }

  /** The time a failure is answered after at the earliest, in ms after it arrived. */
  target(): number {
    if (this.#baseMs === 0 || this.#recent.length === 0) return this.#baseMs;
    const sorted = [...this.#recent].sort((a, b) => a - b);
    const percentile = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * PERCENTILE))]!;
    return Math.min(Math.max(this.#baseMs, percentile), this.#capMs);
  }
}
