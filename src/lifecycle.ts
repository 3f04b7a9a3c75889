/**
 * Start-up and shutdown of a process that owns resources (the embedded FerretDB, the
 * database connection, the HTTP server): each opened resource is closed, newest first,
 * when the process fails, finishes or receives SIGINT or SIGTERM — also during start-up, so
 * that an interrupted start never leaves a FerretDB running.
 */
const signals = ['SIGINT', 'SIGTERM'] as const;

export class Lifecycle {
  readonly #closers: (() => Promise<unknown>)[] = [];
  readonly #signalExitCode: number;
  readonly #onSignal: (signal: NodeJS.Signals) => void;
  #interrupted: NodeJS.Signals | undefined;
  #ready = false;
  #exiting = false;

  /** `signalExitCode`: the exit status after a signal has stopped the process. */
  constructor(options: { signalExitCode: number; onSignal?: (signal: NodeJS.Signals) => void }) {
    this.#signalExitCode = options.signalExitCode;
    this.#onSignal = (signal) => {
      if (this.#interrupted) process.exit(this.#signalExitCode); // asked twice: stop now
      this.#interrupted = signal;
      options.onSignal?.(signal);
      // During start-up the step in progress finishes first; `open` then stops.
      if (this.#ready) void this.exit(this.#signalExitCode);
    };
    for (const signal of signals) process.on(signal, this.#onSignal);
  }

  /** Awaits a start-up step and registers how to undo it; stops if a signal came meanwhile. */
  async open<T>(step: Promise<T>, close: (value: T) => Promise<unknown>): Promise<T> {
    const value = await step;
    this.#closers.unshift(() => close(value));
    if (this.#interrupted) await this.exit(this.#signalExitCode);
    return value;
  }

  /** Start-up is complete: from now on a signal closes everything at once. */
  ready(): void {
    this.#ready = true;
    if (this.#interrupted) void this.exit(this.#signalExitCode);
  }

  /** Closes every opened resource, newest first, and stops listening for signals. */
  async close(): Promise<void> {
    for (const signal of signals) process.off(signal, this.#onSignal);
    for (const close of this.#closers.splice(0)) await close().catch(() => {});
  }

  /** True once a signal arrived or `exit` was called: the process is on its way out. */
  get stopping(): boolean {
    return this.#exiting || this.#interrupted !== undefined;
  }

  async exit(code: number): Promise<never> {
    this.#exiting = true;
    await this.close();
    process.exit(code);
  }
}
