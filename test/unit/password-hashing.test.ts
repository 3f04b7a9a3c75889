import { availableParallelism } from 'node:os';

import { describe, expect, it } from '@jest/globals';

import { PasswordHasher } from '../../src/accounts/passwords.ts';

const settings = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

describe('password hashing queue', () => {
  it('runs one hashing operation per core and reports how many wait', async () => {
    const depths: number[] = [];
    const cores = availableParallelism();
    const hasher = new PasswordHasher(
      settings,
      Buffer.alloc(32),
      { concurrency: cores, queueLimit: 32 },
      (depth) => depths.push(depth),
    );

    const hashes = await Promise.all(
      Array.from({ length: cores + 3 }, (_, i) => hasher.hash(`Kennwort-${i}!`)),
    );

    expect(Math.max(...depths)).toBe(3);
    expect(depths.at(-1)).toBe(0);
    expect(await hasher.verify(hashes[0]!, 'Kennwort-0!')).toBe(true);
    expect(depths.at(-1)).toBe(0);
  });

  it('frees the slot of a failed verification', async () => {
    const cores = availableParallelism();
    const hasher = new PasswordHasher(settings, Buffer.alloc(32), {
      concurrency: cores,
      queueLimit: 32,
    });

    const results = await Promise.all(
      Array.from({ length: cores * 2 }, () => hasher.verify('not a hash', 'Kennwort-1!')),
    );

    expect(results.every((matched) => matched === false)).toBe(true);
    expect(await hasher.verify(await hasher.hash('Kennwort-1!'), 'Kennwort-1!')).toBe(true);
  });
});
