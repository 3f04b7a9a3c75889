/**
 * Virtual users for a load test of the sign-in. Each signs in as a browser and a relying
 * party do (authorization request, sign-in form, credentials, code, token exchange) from an
 * address of its own behind the reverse proxy. A model of the lockout and of the sign-in
 * delays says what the server must answer to every attempt, so that the answers and
 * afterwards the stored counters can be compared with what the attempts imply.
 *
 * The users keep the published delays (src/accounts/throttle.ts) as a person reading the
 * page would, and one account is never used by two of them at once, so no answer depends on
 * how the attempts happen to interleave.
 */
import { delayAfter, type ThrottleSettings } from '../../src/accounts/throttle.ts';
import { latencyOf, type Latency } from '../../bench/stats.ts';
import { Browser, exchange, text, type Page, type Site } from './browser.ts';
import { credentials, messages, openSignIn } from './flows.ts';
import type { TestClient } from './server.ts';

export interface Person {
  accountId: string;
  tenantId: string;
  username: string;
  password: string;
}

/**
 * What the server answered: signed in, refused with the one credential message, refused as
 * locked, the hashing queue's 503, a sign-in delay's 429, or anything else.
 */
export type Outcome = 'success' | 'refused' | 'locked' | 'busy' | 'throttled' | 'unexpected';

export interface Attempt {
  phase: 'warm-up' | 'run';
  /** A full sign-in, or one more password typed into the form of a lock sequence. */
  kind: 'sign-in' | 'retype';
  accountId: string;
  password: 'right' | 'wrong';
  /** What the model says the server answers once it checks the attempt. */
  expected: Exclude<Outcome, 'busy' | 'throttled' | 'unexpected'>;
  outcome: Outcome;
  detail?: string;
  /** Milliseconds of the requests, without the time the user waited for a delay. */
  ms: number;
}

/** A 5xx answer to a request of a browser. */
export interface ServerError {
  method: string;
  path: string;
  status: number;
  retryAfter: string | null;
}

/** Throttle tickets of a name from one address, or of an address, that stay counted (see throttle.ts). */
interface Tickets {
  count: number;
  /** When the answer of the attempt with the latest ticket arrived, so after its ticket. */
  latestAt: number;
}

/** What the server stores about one account, as the attempts so far imply it. */
export interface AccountState {
  person: Person;
  /** Consecutive distinct wrong passwords: the account's `lockout.count`. */
  failures: number;
  locked: boolean;
  /** The name's tickets per user: each user has an address of its own. */
  tickets: Map<number, Tickets>;
}

export interface LoadSettings {
  throttle: ThrottleSettings;
  maxFailures: number;
}

type Result = { outcome: Outcome; detail?: string };

/** Room for the clocks of the request and of the ticket to differ. */
const MARGIN_MS = 50;
/** The hashing queue's Retry-After (passwords.ts). */
const BUSY_RETRY_MS = 5000;

/**
 * A browser at an office behind the reverse proxy, which names the office's address in
 * `X-Forwarded-For`; it notes every 5xx answer.
 */
class OfficeBrowser extends Browser {
  readonly #address: string;
  readonly #errors: ServerError[];

  constructor(address: string, errors: ServerError[]) {
    super();
    this.#address = address;
    this.#errors = errors;
  }

  override async request(url: string, init: RequestInit = {}, site: Site = 'same-site') {
    const headers = new Headers(init.headers);
    headers.set('x-forwarded-for', this.#address);
    const response = await super.request(url, { ...init, headers }, site);
    if (response.status >= 500) {
      this.#errors.push({
        method: init.method ?? 'GET',
        path: new URL(url).pathname,
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
      });
    }
    return response;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The answer of the sign-in form's POST, as a person reads it. */
function classify(page: Page): Result {
  const shown = text(page);
  if (page.status === 401 && shown.includes(messages.loginFailed)) return { outcome: 'refused' };
  if (page.status === 401 && shown.includes(messages.locked)) return { outcome: 'locked' };
  if (page.status === 503) return { outcome: 'busy' };
  if (page.status === 429) return { outcome: 'throttled' };
  return { outcome: 'unexpected', detail: `${page.status} ${shown.slice(0, 200)}` };
}

export class SignInLoad {
  readonly attempts: Attempt[] = [];
  readonly errors: ServerError[] = [];
  readonly accounts = new Map<string, AccountState>();
  readonly #client: TestClient;
  readonly #settings: LoadSettings;
  /** Accounts of the ordinary traffic not in use, the longest unused first. */
  readonly #idle: AccountState[];
  readonly #addresses: Tickets[];
  #ordinary = 0;
  #wrong = 0;

  constructor(options: {
    client: TestClient;
    people: Person[];
    lockTargets: Person[];
    users: number;
    settings: LoadSettings;
  }) {
    this.#client = options.client;
    this.#settings = options.settings;
    for (const person of [...options.people, ...options.lockTargets]) {
      const state = { person, failures: 0, locked: false, tickets: new Map<number, Tickets>() };
      this.accounts.set(person.accountId, state);
    }
    this.#idle = options.people.map((person) => this.accounts.get(person.accountId)!);
    this.#addresses = Array.from({ length: options.users }, () => ({ count: 0, latestAt: 0 }));
  }

  /** The address of user `user` (RFC 2544's benchmarking range, one per office). */
  static address(user: number): string {
    return `198.18.${Math.floor(user / 250)}.${(user % 250) + 1}`;
  }

  /** Every user signs in once, so that the run starts on a warm server. */
  async warmUp(): Promise<void> {
    await Promise.all(this.#addresses.map((_, user) => this.#signIn(user, 'warm-up')));
  }

  /**
   * Every user signs in again and again for `seconds`; the first of them instead first take
   * one of `lockTargets` each through a lock sequence, which they finish even after the time.
   */
  async run(seconds: number, lockTargets: Person[]): Promise<number> {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      this.#addresses.map(async (_, user) => {
        const target = lockTargets[user];
        if (target) await this.#lockSequence(user, this.accounts.get(target.accountId)!);
        while (performance.now() < deadline) await this.#signIn(user, 'run');
      }),
    );
    return (performance.now() - started) / 1000;
  }

  /** Figures of the attempts of `phase`. */
  summary(phase: Attempt['phase'], seconds: number) {
    const attempts = this.attempts.filter((attempt) => attempt.phase === phase);
    const count = (outcome: Outcome) => attempts.filter((a) => a.outcome === outcome).length;
    const signIns = attempts.filter((attempt) => attempt.kind === 'sign-in');
    return {
      attempts: attempts.length,
      wrongPasswords: attempts.filter((attempt) => attempt.password === 'wrong').length,
      successes: count('success'),
      refused: count('refused'),
      locked: count('locked'),
      busy: count('busy'),
      throttled: count('throttled'),
      unexpected: count('unexpected'),
      perSecond: Math.round((attempts.length / seconds) * 10) / 10,
      signIns: latencyOf(signIns.map((attempt) => attempt.ms)) satisfies Latency,
    };
  }

  /**
   * One full sign-in of an idle account; every tenth of them with a wrong password, after
   * which the person gives up (the account's failure stays counted until its next sign-in).
   * The ordinary traffic never takes an account to its lock: only the lock sequences do.
   */
  async #signIn(user: number, phase: Attempt['phase']): Promise<void> {
    const password = this.#ordinary++ % 10 === 9 ? 'wrong' : 'right';
    const state = await this.#checkout(
      user,
      (candidate) => password === 'right' || candidate.failures + 1 < this.#settings.maxFailures,
    );
    // Nobody else uses the account meanwhile, so what the model expects now still holds.
    const expected = this.#expect(state, password);
    const timing = { started: performance.now(), waited: 0 };
    const browser = new OfficeBrowser(SignInLoad.address(user), this.errors);
    let result: Result;
    try {
      const { authorization, login } = await openSignIn(this.#client, {}, browser);
      if (login.status !== 200) throw new Error(`the sign-in page answered ${login.status}`);
      timing.waited = await this.#waitForDelays(user, state);
      const answer = await browser.submit(
        login,
        credentials(state.person, this.#password(state, password)),
        this.#client.redirectUri,
      );
      if (answer instanceof URL) {
        const sub = (await exchange(this.#client, authorization, answer)).claims()?.sub;
        result =
          sub === state.person.accountId
            ? { outcome: 'success' }
            : { outcome: 'unexpected', detail: `tokens for ${sub}` };
      } else {
        result = classify(answer);
      }
    } catch (error) {
      result = { outcome: 'unexpected', detail: String(error) };
    }
    this.#record(user, state, { phase, kind: 'sign-in', password, expected, ...timing }, result);
    this.#idle.push(state);
  }

  /**
   * Someone types distinct wrong passwords into one sign-in form until the account locks,
   * then one more, which must neither count nor be checked.
   */
  async #lockSequence(user: number, state: AccountState): Promise<void> {
    const browser = new OfficeBrowser(SignInLoad.address(user), this.errors);
    let form: Page | undefined;
    for (let typed = 0; typed < 3 * this.#settings.maxFailures; typed += 1) {
      const lockedBefore = state.locked;
      const expected = this.#expect(state, 'wrong');
      const timing = { started: performance.now(), waited: 0 };
      let answer: Page | URL | undefined;
      let result: Result;
      try {
        form ??= (await openSignIn(this.#client, {}, browser)).login;
        timing.waited = await this.#waitForDelays(user, state);
        answer = await browser.submit(
          form,
          credentials(state.person, this.#password(state, 'wrong')),
          this.#client.redirectUri,
        );
        result =
          answer instanceof URL
            ? { outcome: 'unexpected', detail: 'signed in with a wrong password' }
            : classify(answer);
      } catch (error) {
        result = { outcome: 'unexpected', detail: String(error) };
      }
      const attempt = { phase: 'run', kind: 'retype', password: 'wrong', expected } as const;
      this.#record(user, state, { ...attempt, ...timing }, result);
      if (result.outcome === 'unexpected' || (lockedBefore && result.outcome === 'locked')) return;
      // A refusal shows the form again; the busy page has none, so the next try starts over.
      if (result.outcome === 'busy') {
        form = undefined;
        await sleep(BUSY_RETRY_MS);
      } else {
        form = answer as Page;
      }
    }
  }

  /**
   * The longest unused idle account that `fits` and whose delay for `user` has passed
   * (waiting for one if none has).
   */
  async #checkout(user: number, fits: (state: AccountState) => boolean): Promise<AccountState> {
    for (;;) {
      const now = Date.now();
      const index = this.#idle.findIndex(
        (state) => fits(state) && this.#readyAt(state.tickets.get(user), 'name') <= now,
      );
      if (index >= 0) return this.#idle.splice(index, 1)[0]!;
      await sleep(100);
    }
  }

  /** When the next attempt with these tickets is admitted without delay. */
  #readyAt(tickets: Tickets | undefined, key: 'name' | 'address'): number {
    if (!tickets || tickets.count === 0) return 0;
    const { throttle } = this.#settings;
    const free = key === 'name' ? throttle.nameFreeFailures : throttle.addressFreeFailures;
    return tickets.latestAt + delayAfter(tickets.count, free, throttle) + MARGIN_MS;
  }

  /** Waits as long as the delays of the account's name from the user's address and of that address ask. */
  async #waitForDelays(user: number, state: AccountState): Promise<number> {
    const readyAt = Math.max(
      this.#readyAt(state.tickets.get(user), 'name'),
      this.#readyAt(this.#addresses[user]!, 'address'),
    );
    const wait = readyAt - Date.now();
    if (wait <= 0) return 0;
    await sleep(wait);
    return wait;
  }

  /** What the server answers to `password` once it checks it (lockout.ts, sign-in.ts). */
  #expect(state: AccountState, password: 'right' | 'wrong'): Attempt['expected'] {
    if (state.locked) return 'locked';
    if (password === 'right') return 'success';
    return state.failures + 1 >= this.#settings.maxFailures ? 'locked' : 'refused';
  }

  /** The account's password, or one never typed before: each wrong password counts. */
  #password(state: AccountState, password: 'right' | 'wrong'): string {
    return password === 'right' ? state.person.password : `Falsch-${(this.#wrong += 1)}-x!`;
  }

  /** Notes the attempt and, when the server checked it, what it changed. */
  #record(
    user: number,
    state: AccountState,
    attempt: Pick<Attempt, 'phase' | 'kind' | 'password' | 'expected'> & {
      started: number;
      waited: number;
    },
    result: Result,
  ): void {
    const at = Date.now();
    const { started, waited, ...rest } = attempt;
    this.attempts.push({
      ...rest,
      accountId: state.person.accountId,
      ...result,
      ms: performance.now() - started - waited,
    });
    const address = this.#addresses[user]!;
    // A 429 for a running delay counts against the address (each user has one attempt at a
    // time, so never one for too many attempts in progress); it fails the test anyway.
    if (result.outcome === 'throttled')
      this.#addresses[user] = { count: address.count + 1, latestAt: at };
    // A 503, a 429 or a failed request checked nothing; an unexpected answer fails the test.
    if (result.outcome !== attempt.expected) return;
    if (result.outcome === 'success') {
      // The lock's counter starts afresh; the name's tickets only from this address.
      state.failures = 0;
      state.tickets.delete(user);
      return;
    }
    if (!state.locked && attempt.password === 'wrong') {
      state.failures += 1;
      state.locked = state.failures >= this.#settings.maxFailures;
    }
    // Every refusal leaves the attempt's tickets of the name and the address counted.
    const name = state.tickets.get(user) ?? { count: 0, latestAt: 0 };
    state.tickets.set(user, { count: name.count + 1, latestAt: at });
    this.#addresses[user] = { count: address.count + 1, latestAt: at };
  }
}
