/**
 * The README's configuration table is the operator's reference: it must name every variable
 * the schema knows, with a default and an example that the schema accepts.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { environmentSchema, fileVariables } from '../../config/schema.ts';
import { loadConfig } from '../../src/config.ts';

const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

interface Row {
  names: string[];
  defaults: string;
  examples: string[];
}

/** The rows of the table in the README's "Configuration" section. */
function configurationTable(): Row[] {
  const section = readme.split(/^## Configuration$/m)[1]!.split(/^## /m)[0]!;
  const code = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
  return section
    .split('\n')
    .filter((line) => /^\| `[A-Z]/.test(line))
    .map((line) => {
      const [name, defaults, example] = line
        .split('|')
        .slice(1, 4)
        .map((cell) => cell.trim());
      return { names: code(name!), defaults: defaults!, examples: code(example!) };
    });
}

const documented = configurationTable();
const schemaNames = Object.keys(environmentSchema.shape);
const fileNames = fileVariables.map((name) => `${name}_FILE`);

describe('configuration reference (README)', () => {
  it('documents every variable of the schema and its file variant, and no other', () => {
    expect(documented.flatMap((row) => row.names).sort()).toEqual(
      [...schemaNames, ...fileNames].sort(),
    );
  });

  it('gives every variable a default and an example', () => {
    for (const row of documented) {
      expect([row.names, row.defaults.length > 0]).toEqual([row.names, true]);
      expect([row.names, row.examples.length]).toEqual([row.names, row.names.length]);
    }
  });

  it('shows examples the schema accepts', () => {
    for (const row of documented) {
      row.names.forEach((name, index) => {
        if (fileNames.includes(name)) return;
        // An https ISSUER needs a trusted proxy; every other example stands alone.
        const env = { TRUST_PROXY: '1', [name]: row.examples[index]! };
        let problem = '';
        try {
          loadConfig(env);
        } catch (error) {
          problem = (error as Error).message;
        }
        expect([name, problem]).toEqual([name, '']);
      });
    }
  });
});

describe('credentials from files', () => {
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-config-'));
  });

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('reads MONGODB_URI_FILE and METRICS_TOKEN_FILE without trailing line breaks', async () => {
    await writeFile(path.join(directory, 'uri'), 'mongodb://db.example/flueag\n');
    await writeFile(path.join(directory, 'token'), `\uFEFF${'t'.repeat(40)}\r\n\n`);
    const config = loadConfig({
      MONGODB_URI_FILE: path.join(directory, 'uri'),
      METRICS_TOKEN_FILE: path.join(directory, 'token'),
    });
    expect(config.mongodbUri).toBe('mongodb://db.example/flueag');
    expect(config.metrics.token).toBe('t'.repeat(40));
  });

  it('validates the content of the file like the variable itself', async () => {
    await writeFile(path.join(directory, 'short'), 'too-short\n');
    expect(() => loadConfig({ METRICS_TOKEN_FILE: path.join(directory, 'short') })).toThrow(
      /^invalid configuration: METRICS_TOKEN: must be at least 32 characters$/,
    );
  });

  it('refuses a missing file and both forms together, in one line each', async () => {
    expect(() => loadConfig({ MONGODB_URI_FILE: path.join(directory, 'missing') })).toThrow(
      /^invalid configuration: MONGODB_URI_FILE: cannot read .*missing \(ENOENT\)$/,
    );
    await writeFile(path.join(directory, 'uri'), 'mongodb://db.example/flueag');
    expect(() =>
      loadConfig({
        MONGODB_URI: 'mongodb://other.example/flueag',
        MONGODB_URI_FILE: path.join(directory, 'uri'),
      }),
    ).toThrow(/^invalid configuration: set either MONGODB_URI or MONGODB_URI_FILE, not both$/);
  });
});
