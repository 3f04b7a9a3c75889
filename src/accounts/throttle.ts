/**
 * Growing delays between sign-in attempts, per name and per client address, decided before
 * any argon2 work (ASVS 5.0 6.3.1, BSI ORP.4.A13): an attempt that comes too early is
 * answered at once, without touching a password hash, so guessing costs the attacker time
 * and the server nothing.
 *
 * The state lives in the database, because several instances serve behind one load
 * balancer. Every attempt inserts a ticket into `login_attempts` and then looks at the
 * earlier tickets of its keys; inserts are atomic on FerretDB and MongoDB alike, so
 * parallel attempts see each other without a read-modify-write update (see db/leases.ts for
 * why FerretDB 1.x has none that is isolated). A ticket is a failure until the attempt
 * proves the password right; an attempt that is refused, or fails for another reason than a
 * wrong password, removes its tickets again.
 *
 * Known shortcoming: because a ticket counts while its attempt is still being checked, more
 * than `addressFreeFailures` sign-ins from one address checked at the same moment delay each
 * other although their passwords are right (README, known limits). Counting the attempts in
 * progress apart from finished failures, with a limit of their own, would fix it.
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
}

export interface Ticket {
  _id: ObjectId;
  key: string;
  at: Date;
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

/** The key of a typed name in a tenant; the same whether or not an account has that name. */
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
  }

  /** Admits an attempt on `name` from `ip`, or says how long to wait, before any hashing. */
  async admit(name: string, ip: string | undefined): Promise<Admission> {
    const { nameFreeFailures, addressFreeFailures, baseDelayMs } = this.#settings;
    if (baseDelayMs === 0) return { admitted: true, tickets: [], nameKey: name };

    const at = this.#now();
    const expiresAt = new Date(at.getTime() + this.#settings.windowMinutes * 60_000);
    const keys: Array<[string, number]> = [[name, nameFreeFailures]];
    if (ip) keys.push([`address:${addressKey(ip)}`, addressFreeFailures]);
    const tickets = keys.map(([key]) => ({ _id: new ObjectId(), key, at, expiresAt }));
    await this.#collection.insertMany(tickets);

    const waits = await Promise.all(
      keys.map(([key, free], index) => this.#wait(key, free, tickets[index]!, at)),
    );
    const retryAfterMs = Math.max(...waits);
    if (retryAfterMs <= 0) return { admitted: true, tickets, nameKey: name };
    await this.release(tickets);
    return { admitted: false, retryAfterMs };
  }

  /** Forgets the tickets of an attempt that did not end with a wrong password. */
  async release(tickets: Ticket[]): Promise<void> {
    if (tickets.length === 0) return;
    await this.#collection.deleteMany({ _id: { $in: tickets.map((ticket) => ticket._id) } });
  }

  /** The password was right: the name starts afresh; the address keeps its other failures. */
  async succeeded(admission: Admission & { admitted: true }): Promise<void> {
    if (admission.tickets.length === 0) return;
    await this.#collection.deleteMany({ key: admission.nameKey });
    await this.release(admission.tickets);
  }

  /** Milliseconds until the attempt holding `own` may go on, given the earlier failures. */
  async #wait(key: string, free: number, own: Ticket, at: Date): Promise<number> {
    const since = new Date(at.getTime() - this.#settings.windowMinutes * 60_000);
    // More than free + 31 failures all give the maximum delay; reading more is useless.
    const earlier = await this.#collection
      .find({ key, at: { $gt: since }, _id: { $ne: own._id } })
      .sort({ at: -1 })
      .limit(free + 32)
      .project<{ at: Date }>({ at: 1 })
      .toArray();
    const latest = earlier[0]?.at;
    if (!latest) return 0;
    const delay = delayAfter(earlier.length, free, this.#settings);
    return latest.getTime() + delay - at.getTime();
  }
}
