/**
 * The argon2id ceiling: verifications per second with the configured parameters, as many
 * at once as the machine has cores. It calls argon2 directly, past the PasswordHasher's
 * bounded queue, to find what the CPU allows, not what the queue lets through.
 */
import os from 'node:os';

import argon2 from 'argon2';

import type { Argon2Settings } from '../src/accounts/passwords.ts';
import { loadLoop, type Throughput } from './stats.ts';

export interface Argon2Ceiling extends Throughput {
  settings: Argon2Settings;
}

export async function benchArgon2(
  settings: Argon2Settings,
  options: { seconds: number },
): Promise<Argon2Ceiling> {
  const password = 'Kennwort-Bench-7!';
  const hash = await argon2.hash(password, { ...settings, type: argon2.argon2id });
  const concurrency = os.availableParallelism();
  const result = await loadLoop({ concurrency, seconds: options.seconds }, async () => {
    if (!(await argon2.verify(hash, password))) throw new Error('argon2 verification failed');
  });
  return { ...result, settings };
}
