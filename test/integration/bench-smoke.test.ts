/**
 * The bench's smallest profile, as `npm run bench -- --profile smoke` runs it: its own
 * FerretDB and server, every measurement once. It asserts that each part ran and reported,
 * never how fast: timing belongs to the bench's tables, not to CI's verdict.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { BenchResult } from '../../bench/report.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

let out: string;
let result: BenchResult;
let report: string;
let stdout: string;

beforeAll(async () => {
  out = await mkdtemp(path.join(os.tmpdir(), 'flueag-bench-smoke-'));
  stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['bench/run.ts', '--profile', 'smoke', '--out', out],
      { cwd: root, env: { ...process.env, FLUEAG_TEST_MONGODB: '' }, maxBuffer: 2 ** 24 },
      (error, output, errors) =>
        error ? reject(new Error(`bench failed: ${errors}`)) : resolve(output),
    );
  });
  result = JSON.parse(await readFile(path.join(out, 'smoke.json'), 'utf8')) as BenchResult;
  report = await readFile(path.join(out, 'smoke.md'), 'utf8');
}, 110_000);
afterAll(() => rm(out, { recursive: true, force: true }));

describe('bench, smoke profile', () => {
  it('measures the argon2id ceiling with the configured parameters on all cores', () => {
    expect(result.argon2.settings).toEqual({ memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    expect(result.argon2.concurrency).toBe(os.availableParallelism());
    expect(result.argon2.ops).toBeGreaterThan(0);
  });

  it('signs in end to end at each concurrency of the profile', () => {
    expect(result.signIns.map((run) => run.concurrency)).toEqual([1, 2]);
    for (const run of result.signIns) expect(run.ops).toBeGreaterThan(0);
  });

  it('measures refresh, introspection, userinfo and the bare library', () => {
    for (const run of [...Object.values(result.tokens), result.bareRefresh]) {
      expect(run.ops).toBeGreaterThan(0);
      expect(run.cost.cpuSecondsPerOp).toBeGreaterThan(0);
    }
  });

  it('measures the population and the admin list', () => {
    expect(result.population.signIn.runs).toBe(3);
    expect(result.population.adminList.runs).toBe(3);
    expect(Object.keys(result.adminList.cases)).toHaveLength(4);
  });

  it('prints and writes the table of targets with their ratios', () => {
    for (const target of [
      'full sign-ins / argon2 ceiling',
      'refresh grants / bare oidc-provider',
      'admin list p95',
    ]) {
      expect(report).toContain(`| ${target}`);
      expect(stdout).toContain(`| ${target}`);
    }
    expect(report).toMatch(/\| (met|missed) \|/);
  });
});
