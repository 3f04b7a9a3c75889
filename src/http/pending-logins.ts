/**
 * Sign-ins a relying party of this server has started and not yet finished: state and PKCE
 * verifier per tab, in an HttpOnly cookie signed with the provider's cookie keys, so that a
 * page can neither read the verifiers nor plant its own. Two tabs that start in the same
 * instant may still lose one entry (the later write wins); that tab is asked to start again.
 */
import type { Context } from 'koa';

export interface PendingLogin {
  state: string;
  verifier: string;
  startedAt: number;
  /** Where to go once signed in (a path of this server). */
  returnTo?: string;
}

/** Sign-ins that may be under way at once (tabs); the oldest beyond this is forgotten. */
const MAX_PENDING = 5;

export class PendingLogins {
  readonly #cookie: string;
  readonly #path: string;
  readonly #maxAgeMs: number;

  constructor(options: { cookie: string; path: string; maxAgeMs: number }) {
    this.#cookie = options.cookie;
    this.#path = options.path;
    this.#maxAgeMs = options.maxAgeMs;
  }

  /** Remembers a new sign-in, forgetting the oldest beyond the limit. */
  add(ctx: Context, login: PendingLogin): void {
    this.#write(ctx, [...this.#read(ctx).slice(-(MAX_PENDING - 1)), login]);
  }

  /** Removes the sign-in that `state` names and returns it, if this browser holds it. */
  take(ctx: Context, state: unknown): PendingLogin | undefined {
    const pending = this.#read(ctx);
    const login = pending.find((entry) => entry.state === state);
    if (login)
      this.#write(
        ctx,
        pending.filter((entry) => entry !== login),
      );
    return login;
  }

  #read(ctx: Context): PendingLogin[] {
    const saved = ctx.cookies.get(this.#cookie, { signed: true });
    if (!saved) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(saved);
    } catch {
      return [];
    }
    if (!Array.isArray(parsed)) return [];
    const now = Date.now();
    return parsed.filter(
      (entry: Partial<PendingLogin> | null): entry is PendingLogin =>
        typeof entry?.state === 'string' &&
        typeof entry.verifier === 'string' &&
        typeof entry.startedAt === 'number' &&
        (entry.returnTo === undefined || typeof entry.returnTo === 'string') &&
        now - entry.startedAt < this.#maxAgeMs,
    );
  }

  #write(ctx: Context, pending: PendingLogin[]): void {
    const options = {
      httpOnly: true,
      sameSite: 'lax' as const,
      signed: true,
      secure: ctx.secure,
      path: this.#path,
    };
    if (pending.length === 0) {
      ctx.cookies.set(this.#cookie, null, options);
      return;
    }
    ctx.cookies.set(this.#cookie, JSON.stringify(pending), { ...options, maxAge: this.#maxAgeMs });
  }
}
