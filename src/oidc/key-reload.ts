/**
 * Picks up a changed key file while the server runs, so that a key rotation needs no
 * restart. The file is read again every few seconds and compared as text: that also sees a
 * file replaced by a rename (the CLI's atomic write) or by a symbolic link swapped under a
 * mounted secret, which change notifications of the file system miss. A file that does not
 * validate is reported once and leaves the keys in use as they are.
 */
import { readFile } from 'node:fs/promises';

import type { Logger } from '../log.ts';
import { parseKeyMaterial, providerJwks, type KeyMaterial } from './keys.ts';

export class KeyFileWatch {
  readonly #file: string;
  readonly #intervalMs: number;
  readonly #apply: (material: KeyMaterial) => void;
  readonly #log: Logger;
  #current: KeyMaterial;
  #seen: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The last check; the next one waits for it, so checks never overlap. */
  #previous: Promise<unknown> = Promise.resolve();
  #busy = false;

  /** `apply` receives each new, valid key material; `current` is the one in use now. */
  constructor(options: {
    file: string;
    intervalSeconds: number;
    current: KeyMaterial;
    apply: (material: KeyMaterial) => void;
    log: Logger;
  }) {
    this.#file = options.file;
    this.#intervalMs = options.intervalSeconds * 1000;
    this.#apply = options.apply;
    this.#log = options.log;
    this.#current = options.current;
  }

  start(): void {
    if (this.#intervalMs <= 0 || this.#timer) return;
    this.#timer = setInterval(() => {
      if (!this.#busy) void this.check();
    }, this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Reads the file now, after a check that is under way; resolves true when it brought new
   * keys into use.
   */
  check(): Promise<boolean> {
    const run = this.#previous.then(async () => {
      this.#busy = true;
      try {
        return await this.#read();
      } finally {
        this.#busy = false;
      }
    });
    this.#previous = run.catch(() => {});
    return run;
  }

  async #read(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (error) {
      return this.#refuse(`cannot read it (${(error as NodeJS.ErrnoException).code})`, '');
    }
    if (text === this.#seen) return false;

    let material: KeyMaterial;
    try {
      material = parseKeyMaterial(text, this.#file);
      if (JSON.stringify(material) === JSON.stringify(this.#current)) {
        this.#seen = text;
        return false;
      }
      this.#apply(material);
    } catch (error) {
      return this.#refuse((error as Error).message, text);
    }
    this.#seen = text;
    if (material.fingerprintKey !== this.#current.fingerprintKey)
      this.#log.warn(
        { event: 'keys.fingerprint_key_changed' },
        'the fingerprint key in the key file changed; it takes effect at the next start',
      );
    this.#current = material;
    this.#log.info(
      { event: 'keys.reloaded', ...kidsByState(material) },
      'key file changed: new keys in use',
    );
    return true;
  }

  #refuse(problem: string, text: string): boolean {
    if (text !== this.#seen) {
      this.#log.error(
        { event: 'keys.reload_failed', problem },
        'key file changed but cannot be used; the keys in use stay',
      );
    }
    this.#seen = text;
    return false;
  }
}

/** The kids of the signing keys by state, in the order the provider holds them. */
export function kidsByState(material: KeyMaterial) {
  const stateOf = new Map(material.signingKeys.map((key) => [key.jwk.kid, key.state]));
  const kids = providerJwks(material).keys.map((jwk) => jwk.kid);
  return {
    signing_kids: kids.filter((kid) => stateOf.get(kid) === 'signing'),
    staged_kids: kids.filter((kid) => stateOf.get(kid) === 'staged'),
    retired_kids: kids.filter((kid) => stateOf.get(kid) === 'retired'),
  };
}
