/**
 * Growing delays between sign-in attempts, per name from one client address and per client
 * address, decided before
 * any argon2 work (ASVS 5.0 6.3.1, BSI ORP.4.A13): an attempt that comes too early is
 * answered at once, without touching a password hash, so guessing costs the attacker time
 * and the server nothing.
 *
 * The state lives in the database, because several instances serve behind one load
 * balancer. Every attempt inserts a ticket into `login_attempts` and then looks at the
 * earlier tickets of its keys; inserts are atomic on FerretDB and MongoDB alike, so
 * parallel attempts see each other without a read-modify-write update (see db/leases.ts for
 * why FerretDB 1.x has none that is isolated). A right password removes the attempt's
 * tickets, as does a refusal or a failure for another reason than a wrong password; a wrong
 * password settles them as failures.
 *
 * The name's delay is kept per client address (`addressKey`): failures from one address delay
 * only that address's further attempts on the name, so nobody can deny a name to everyone
 * else by failing on it. Guessing one name from many addresses is bounded by the account's
 * lock (lockout.ts), not by these delays. A name counts its unsettled tickets as failures:
 * one person does not sign in twice at the same moment, but parallel guesses on one name do.
 * An address counts only settled failures for its delay, because the staff of a town hall
 * share one address and sign in at the same time; its attempts in progress have a limit of
 * their own (`addressConcurrentAttempts`), so a burst of parallel guesses from one address
 * is bounded before any hashing too.
 *
 * An attempt refused because a delay still runs counts as a failure of its address (its
 * address ticket is settled, its name ticket removed): people wait the delay the page
 * states, automation that keeps sending during it only lengthens its own address's delay.
 * An attempt refused only because its address has too many attempts in progress does not
 * count: that is a town hall signing in at the same moment.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

import { ObjectId, type Collection, type Db } from 'mongodb';

export interface ThrottleSettings {
  /** How long a failure counts. */
  windowMinutes: number;
  /** Delay after the first counted failure beyond the free ones, doubled after each further one; 0 = off. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures of one name answered without delay. */
  nameFreeFailures: number;
  /** Failures from one address answered without delay (a town hall shares one address). */
  addressFreeFailures: number;
  /** Attempts from one address checked at once; one more waits a second. */
  addressConcurrentAttempts: number;
}

/** How long an attempt waits when its address has `addressConcurrentAttempts` in progress. */
export const BUSY_ADDRESS_WAIT_MS = 1000;

export interface Ticket {
  _id: ObjectId;
  key: string;
  /** On the tickets of a name: the name's key alone, for every address (see `forgetName`). */
  name?: string;
  at: Date;
  /** False while the attempt is checked; true once it ended with a wrong password. */
  settled: boolean;
  /** For housekeeping, which deletes what has expired. */
  expiresAt: Date;
}

export type Admission =
  | { admitted: true; tickets: Ticket[]; nameKey: string }
  | { admitted: false; retryAfterMs: number };

/** The delay after `count` earlier failures of which `free` go without one. */
export function delayAfter(count: number, free: number, settings: ThrottleSettings): number {
  if (settings.baseDelayMs === 0 || count < free) return 0;
  return Math.min(settings.baseDelayMs * 2 ** Math.min(count - free, 30), settings.maxDelayMs);
}

/**
 * The part of a client address one attacker controls as a whole: an IPv4 address, or the
 * /64 prefix of an IPv6 address (one subscriber line gets at least a /64).
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * The key of a typed name in a tenant; the same whether or not an account has that name.
 * The throttle keeps its delay per client address under `${nameKey}@${addressKey}`.
 */
export function nameKey(tenantScope: string, usernameKey: string): string {
  return `name:${createHash('sha256').update(tenantScope).update('\0').update(usernameKey).digest('base64url')}`;
}

export class SignInThrottle {
  readonly #collection: Collection<Ticket>;
  readonly #settings: ThrottleSettings;
  readonly #now: () => Date;

  constructor(db: Db, settings: ThrottleSettings, now: () => Date) {
    this.#collection = db.collection<Ticket>('login_attempts');
    this.#settings = settings;
    this.#now = now;
  }

  async createIndexes(): Promise<void> {
    await this.#collection.createIndex({ key: 1, at: -1 });
    await this.#collection.createIndex({ name: 1 });
  }

  /** Admits an attempt on `name` from `ip`, or says how long to wait, before any hashing. */
  async admit(name: string, ip: string | undefined): Promise<Admission> {
    const { nameFreeFailures, addressFreeFailures, baseDelayMs } = this.#settings;
    if (baseDelayMs === 0) return { admitted: true, tickets: [], nameKey: name };

    const at = this.#now();
    const expiresAt = new Date(at.getTime() + this.#settings.windowMinutes * 60_000);
    const address = ip ? addressKey(ip) : undefined;
    const pairKey = `${name}@${address ?? 'unknown'}`;
    const keys: Array<{ key: string; free: number; concurrent?: number }> = [
      { key: pairKey, free: nameFreeFailures },
    ];
    if (address)
      keys.push({
        key: `address:${address}`,
        free: addressFreeFailures,
        concurrent: this.#settings.addressConcurrentAttempts,
      });
    const tickets: Ticket[] = keys.map(({ key }, index) => ({
      _id: new ObjectId(),
      key,
      ...(index === 0 ? { name } : {}),
      at,
      settled: false,
      expiresAt,
    }));
    await this.#collection.insertMany(tickets);

    const waits = await Promise.all(keys.map((key, index) => this.#wait(key, tickets[index]!, at)));
    const retryAfterMs = Math.max(...waits.map((wait) => wait.ms));
    if (retryAfterMs <= 0) return { admitted: true, tickets, nameKey: pairKey };
    const [nameTicket, addressTicket] = tickets;
    if (addressTicket && waits.some((wait) => wait.ms > 0 && !wait.busy)) {
      await this.release([nameTicket!]);
      await this.#collection.updateOne({ _id: addressTicket._id }, { $set: { settled: true } });
    } else {
      await this.release(tickets);
    }
    return { admitted: false, retryAfterMs };
  }

  /** Forgets the tickets of an attempt that did not end with a wrong password. */
  async release(tickets: Ticket[]): Promise<void> {
    if (tickets.length === 0) return;
    await this.#collection.deleteMany({ _id: { $in: tickets.map((ticket) => ticket._id) } });
  }

  /** The password was wrong: the attempt's tickets count as failures from now on. */
  async failed(admission: Admission & { admitted: true }): Promise<void> {
    if (admission.tickets.length === 0) return;
    await this.#collection.updateMany(
      { _id: { $in: admission.tickets.map((ticket) => ticket._id) } },
      { $set: { settled: true } },
    );
  }

  /**
   * The password was right: the name starts afresh from this address; the address keeps its
   * other failures, and other addresses keep their failures on the name.
   */
  async succeeded(admission: Admission & { admitted: true }): Promise<void> {
    if (admission.tickets.length === 0) return;
    await this.#collection.deleteMany({ key: admission.nameKey });
    await this.release(admission.tickets);
  }

  /** Forgets the failures of `name` from every address, when an admin lifts its lock. */
  async forgetName(name: string): Promise<number> {
    const { deletedCount } = await this.#collection.deleteMany({ name, settled: { $ne: false } });
    return deletedCount;
  }

  /**
   * Milliseconds until the attempt holding `own` may go on, and whether only the limit of
   * attempts in progress holds it back (`busy`), given the earlier tickets of its
   * key: settled failures, and unsettled ones either as failures (a name) or against the
   * limit of attempts in progress (an address, with `concurrent`).
   */
  async #wait(
    { key, free, concurrent }: { key: string; free: number; concurrent?: number },
    own: Ticket,
    at: Date,
  ): Promise<{ ms: number; busy: boolean }> {
    const since = new Date(at.getTime() - this.#settings.windowMinutes * 60_000);
    // More than free + 31 failures all give the maximum delay; reading more is useless.
    const earlier = await this.#collection
      .find({ key, at: { $gt: since }, _id: { $ne: own._id } })
      .sort({ at: -1 })
      .limit(free + 32 + (concurrent ?? 0))
      .project<{ at: Date; settled?: boolean }>({ at: 1, settled: 1 })
      .toArray();
    // Tickets stored before attempts were settled have no flag and count as failures.
    const failures =
      concurrent === undefined ? earlier : earlier.filter((ticket) => ticket.settled !== false);
    const inProgress = earlier.length - failures.length;
    const latest = failures[0]?.at;
    const delay = delayAfter(failures.length, free, this.#settings);
    const ms = latest ? latest.getTime() + delay - at.getTime() : 0;
    if (concurrent !== undefined && inProgress >= concurrent && ms <= 0)
      return { ms: BUSY_ADDRESS_WAIT_MS, busy: true };
    return { ms, busy: false };
  }
}
