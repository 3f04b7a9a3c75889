/**
 * The operator CLI as an operator runs it: `bin/flueag-idp.js` in its own process, against
 * the database of a running server.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { NominationImport } from '../../src/accounts/nominations.ts';
import { accountModel } from '../../src/accounts/model.ts';
import { MongoAdapter } from '../../src/oidc/adapter.ts';
import { asPage, asRedirect, authorizationRequest, Browser } from '../support/browser.ts';
import { auditEvents, signInForTokens } from '../support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  system,
  type TestServer,
} from '../support/server.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sampleData = path.join(root, 'test/fixtures');

let test: TestServer;

beforeAll(async () => {
  test = await startTestServer();
});
afterAll(() => test.close());

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<CliResult> {
  return cliWith(
    { ...process.env, MONGODB_URI: test.databaseUri, DATA_DIR: test.dataDir, LOG_LEVEL: 'warn' },
    ...args,
  );
}

/** Runs the CLI with exactly the environment `env`. */
function cliWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/flueag-idp.js'), ...args],
      { env, cwd: root, maxBuffer: 16 << 20 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function cliJson(...args: string[]) {
  const result = await cli('--json', ...args);
  // The CLI's JSON document; the tests assert it field by field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { ...result, json: JSON.parse(result.stdout) as Record<string, any> };
}

describe('tenant import', () => {
  it('imports the register with parents before children and is idempotent', async () => {
    const first = await cliJson(
      'tenant',
      'import',
      path.join(sampleData, 'tenants-nrw-sample.csv'),
    );
    expect(first.code).toBe(0);
    expect(first.json.rows).toHaveLength(70);
    expect(first.json.rows.every((row: { outcome: string }) => row.outcome === 'imported')).toBe(
      true,
    );
    expect(await test.services.tenants.find('05158028')).toMatchObject({
      name: 'Stadt Ratingen',
      kind: 'gemeinde',
      parent: '05158',
    });

    const again = await cliJson(
      'tenant',
      'import',
      path.join(sampleData, 'tenants-nrw-sample.csv'),
    );
    expect(again.code).toBe(0);
    expect(
      again.json.rows.every((row: { outcome: string }) => row.outcome === 'already_present'),
    ).toBe(true);
  });
});

describe('tenant import of a hand-edited file', () => {
  it('takes values without the spaces around them, in every column', async () => {
    const file = path.join(test.dataDir, 'tenants-spaced.csv');
    await writeFile(
      file,
      'id , name , kind , parent\n 05000777 , Stadt Leerzeichen , gemeinde ,\n',
    );
    const imported = await cliJson('tenant', 'import', file);
    expect(imported).toMatchObject({ code: 0, json: { rows: [{ outcome: 'imported' }] } });
    expect(await test.services.tenants.find('05000777')).toMatchObject({
      name: 'Stadt Leerzeichen',
      kind: 'gemeinde',
      parent: null,
    });
  });
});

describe('tenant add', () => {
  it('requires the official key format of the kind and a name no other tenant has', async () => {
    for (const [args, code] of [
      [['12', '--name', 'Zu kurz', '--kind', 'gemeinde'], 'tenant.invalid_key_gemeinde'],
      [['051580', '--name', 'Falscher Kreis', '--kind', 'kreis'], 'tenant.invalid_key_kreis'],
      [['99999999', '--name', 'Kreis Mettmann', '--kind', 'gemeinde'], 'tenant_name.taken'],
    ] as const) {
      const refused = await cliJson('tenant', 'add', ...args);
      expect(refused.code).toBe(1);
      expect(JSON.stringify(refused.json.error)).toContain(code);
    }
    expect(await test.services.tenants.find('99999999')).toBeNull();
  });

  it('keeps the register consistent: visible names, nesting keys, fitting parents', async () => {
    const refusals = [
      [
        ['05158901', '--name', 'Nulls\u200bbreite', '--kind', 'gemeinde'],
        'tenant_name.invalid_characters',
      ],
      [
        ['05158902', '--name', 'Richtung\u202e', '--kind', 'gemeinde'],
        'tenant_name.invalid_characters',
      ],
      [['05158903', '--name', '05158', '--kind', 'gemeinde'], 'tenant_name.needs_letter'],
      [['05158904', '--name', 'Ministerium', '--kind', 'gemeinde'], 'tenant_name.is_other_key'],
      [
        ['05158905', '--name', 'Selbst', '--kind', 'gemeinde', '--parent', '05158905'],
        'tenant_parent.self',
      ],
      [
        ['05111906', '--name', 'Unter Gemeinde', '--kind', 'gemeinde', '--parent', '05111000'],
        'tenant_parent.wrong_kind',
      ],
      [
        ['05159', '--name', 'Kreis unter Kreis', '--kind', 'kreis', '--parent', '05158'],
        'tenant_parent.wrong_kind',
      ],
      [
        ['05334907', '--name', 'Falscher Kreis', '--kind', 'gemeinde', '--parent', '05158'],
        'tenant_parent.key_mismatch',
      ],
      [
        ['12345', '--name', 'Zahlenministerium', '--kind', 'ministerium'],
        'tenant.invalid_key_named',
      ],
      [
        ['betrieb', '--name', 'IT.NRW', '--kind', 'betrieb', '--parent', 'ministerium'],
        'tenant_parent.not_allowed',
      ],
    ] as const;
    for (const [[id, ...options], code] of refusals) {
      const args = Object.fromEntries(
        Array.from({ length: options.length / 2 }, (_, i) => [
          options[2 * i]!.slice(2),
          options[2 * i + 1]!,
        ]),
      );
      const refused = await test.services.tenants
        .add({ id, parent: null, ...args }, { actor: { kind: 'cli' } })
        .catch((error: { fields?: Record<string, string[]> }) => error.fields);
      expect({ id, refused: Object.values(refused ?? {}).flat() }).toEqual({ id, refused: [code] });
    }

    const viaCli = await cliJson('tenant', 'add', ...refusals[0][0]);
    expect(viaCli.code).toBe(1);
    expect(JSON.stringify(viaCli.json.error)).toContain('tenant_name.invalid_characters');

    const nested = await cliJson(
      'tenant',
      'add',
      '05158908',
      '--name',
      'Neue Stadt',
      '--kind',
      'gemeinde',
      '--parent',
      '05158',
    );
    expect(nested).toMatchObject({
      code: 0,
      json: { tenant: { id: '05158908', parent: '05158' } },
    });
  });
});

describe('admins import', () => {
  it('imports, reports and rejects the rows of the problem file as designed', async () => {
    const { code, json } = await cliJson(
      'admins',
      'import',
      path.join(sampleData, 'admins-nominations-problems.csv'),
    );
    expect(code).toBe(1);
    const outcomes = json.rows.map(
      (row: { line: number; outcome: string; reasons?: string[]; notes?: string[] }) => [
        row.line,
        row.outcome,
        row.reasons ?? row.notes,
      ],
    );
    expect(outcomes).toEqual([
      [2, 'imported', []],
      [3, 'already_present', []],
      [4, 'rejected', ['username.taken']],
      [5, 'rejected', ['tenant.unknown']],
      [6, 'rejected', ['given_name.required']],
      [7, 'imported', ['email.missing']],
      [8, 'rejected', ['email.invalid']],
      [9, 'imported', []],
      [10, 'imported', []],
      [11, 'imported', ['username.derived']],
    ]);
    expect(json.rows[9]).toMatchObject({ username: 'fleer' });
    expect(json.warnings.map((warning: { tenantId: string }) => warning.tenantId)).toContain(
      '05916000',
    );

    const komma = await test.services.accounts.findByUsername('05112000', 'ekomma');
    expect(komma).toMatchObject({ familyName: 'Komma, Zeichen', roles: ['local_admin'] });
    const imported = json.rows.filter((row: { outcome: string }) => row.outcome === 'imported');
    expect(
      imported.every(
        (row: { initialPassword?: string }) => typeof row.initialPassword === 'string',
      ),
    ).toBe(true);
  });

  it('creates nobody twice when the same file is imported again', async () => {
    const { json } = await cliJson(
      'admins',
      'import',
      path.join(sampleData, 'admins-nominations-problems.csv'),
    );
    expect(json.rows.filter((row: { outcome: string }) => row.outcome === 'imported')).toEqual([]);
    expect(
      await test.services.db.collection('accounts').countDocuments({ tenantId: '05315000' }),
    ).toBe(1);
  });

  it('reports a row that a simultaneous import created as already present, never as taken', async () => {
    const tenantId = (await createTenant(test)).id;
    const rows = Array.from({ length: 6 }, (_, index) => ({
      line: index + 2,
      tenant_id: tenantId,
      given_name: 'Gleich',
      family_name: `Zeitig${'ABCDEF'[index]}`,
      email: `gleich.zeitig${index}@kommune.example`,
      username: `gleichzeitig${index}`,
    }));
    const importer = () =>
      new NominationImport(
        test.services.accounts,
        accountModel(test.services.connection),
        test.services.tenants,
      ).run(rows, system);

    const reports = await Promise.all([importer(), importer()]);
    const outcomes = reports.flatMap((report) => report.rows.map((row) => row.outcome));
    expect(outcomes.filter((outcome) => outcome === 'imported')).toHaveLength(rows.length);
    expect(outcomes.filter((outcome) => outcome === 'already_present')).toHaveLength(rows.length);
    expect(await test.services.db.collection('accounts').countDocuments({ tenantId })).toBe(
      rows.length,
    );
  });

  it('stops between two rows on SIGINT, keeping every password and audit event of what it did', async () => {
    const tenantId = (await createTenant(test)).id;
    const total = 300;
    const file = path.join(test.dataDir, 'many-admins.csv');
    const letters = (n: number) => String.fromCharCode(65 + (n % 26), 65 + Math.floor(n / 26));
    await writeFile(
      file,
      [
        'tenant_id,given_name,family_name,email,username',
        ...Array.from(
          { length: total },
          (_, n) => `${tenantId},Viele,Admin${letters(n)},viele${n}@kommune.example,viele${n}`,
        ),
      ].join('\n'),
    );
    const passwords = path.join(test.dataDir, 'many-passwords.txt');
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'bin/flueag-idp.js'),
        '--json',
        'admins',
        'import',
        file,
        '--passwords-file',
        passwords,
      ],
      { env: { ...process.env, MONGODB_URI: test.databaseUri, DATA_DIR: test.dataDir }, cwd: root },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const accounts = () => test.services.db.collection('accounts').countDocuments({ tenantId });
    while ((await accounts()) < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGINT');

    expect(await exited).toBe(130);
    const created = await accounts();
    expect(created).toBeLessThan(total);
    const report = JSON.parse(stdout) as { rows: { outcome: string }[]; interrupted: string };
    expect(report.interrupted).toContain(`after ${created} of ${total} rows`);
    expect(report.rows.filter((row) => row.outcome === 'imported')).toHaveLength(created);
    const written = (await readFile(passwords, 'utf8')).trim().split('\n');
    expect(written).toHaveLength(created + 1);
    expect(await auditEvents(test, { tenantId, action: 'account.created' })).toHaveLength(created);
    const [chain] = await test.services.audit.verify(tenantId);
    expect(chain!.problems).toEqual([]);
  });

  it('writes the one-time passwords only to the chosen file', async () => {
    const passwords = path.join(test.dataDir, 'passwords.csv');
    const result = await cli(
      'admins',
      'import',
      path.join(sampleData, 'admins-nominations-sample.csv'),
      '--passwords-file',
      passwords,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(/one-time password/);
    expect(result.stdout).toMatch(/summary: 8 imported/);

    const written = (await readFile(passwords, 'utf8')).trim().split('\n');
    expect(written[0]).toBe('tenant_id,username,initial_password');
    expect(written).toHaveLength(9);
    expect((await stat(passwords)).mode & 0o777).toBe(0o600);

    const refused = await cli(
      'admins',
      'import',
      path.join(sampleData, 'admins-nominations-sample.csv'),
      '--passwords-file',
      passwords,
    );
    expect(refused.code).toBe(1);
    expect((await readFile(passwords, 'utf8')).trim().split('\n')).toHaveLength(9);
  });

  it('refuses files that are not UTF-8 CSV with the expected columns', async () => {
    const latin1 = path.join(test.dataDir, 'latin1.csv');
    await writeFile(
      latin1,
      Buffer.from(
        'tenant_id,given_name,family_name,email,username\n05315000,J\xf6rg,K\xf6lsch,j@k.example,jk\n',
        'latin1',
      ),
    );
    const wrongHeader = path.join(test.dataDir, 'header.csv');
    await writeFile(wrongHeader, 'kommune,vorname\n05315000,Jörg\n');
    const unclosed = path.join(test.dataDir, 'unclosed.csv');
    await writeFile(
      unclosed,
      'tenant_id,given_name,family_name,email,username\n05315000,"Jörg,Kölsch,j@k.example,jk\n',
    );

    for (const [file, message] of [
      [latin1, /not UTF-8/],
      [wrongHeader, /lacks the column/],
      [unclosed, /not valid CSV/],
      [path.join(test.dataDir, 'missing.csv'), /cannot read/],
    ] as const) {
      const result = await cli('admins', 'import', file);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(message);
    }
  });

  it('reports a row with too many fields and imports the rest', async () => {
    const file = path.join(test.dataDir, 'ragged.csv');
    await writeFile(
      file,
      'tenant_id,given_name,family_name,email,username\n05158,A,B,a@b.example,ab,extra\n05158,Clara,Dorn,c@d.example,cdorn\n',
    );
    const { code, json } = await cliJson('admins', 'import', file);
    expect(code).toBe(1);
    expect(json.rows).toEqual([
      expect.objectContaining({ line: 2, outcome: 'rejected', reasons: ['row.columns'] }),
      expect.objectContaining({ line: 3, outcome: 'imported', username: 'cdorn' }),
    ]);
  });

  it('cuts an overlong cell in the text table, but not in JSON', async () => {
    const file = path.join(test.dataDir, 'wide.csv');
    const longName = 'b'.repeat(5000);
    await writeFile(
      file,
      `tenant_id,given_name,family_name,email,username\n05158,Bea,Breit,,${longName}\n99999999,Kurt,Kurz,,kkurz\n`,
    );

    const text = await cli('admins', 'import', file);
    expect(text.code).toBe(1);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(200);
    expect(lines[0]).toContain(`${'b'.repeat(59)}…`);
    expect(lines[0]).toContain('the username is longer than 64 characters');

    const { json } = await cliJson('admins', 'import', file);
    expect(json.rows[0]).toMatchObject({ outcome: 'rejected', username: longName });
  });
});

describe('file problems', () => {
  it('are told in words, not as errno codes', async () => {
    const missing = path.join(test.dataDir, 'missing.csv');
    const sample = path.join(sampleData, 'admins-nominations-sample.csv');
    const existing = path.join(test.dataDir, 'existing-passwords.csv');
    await writeFile(existing, 'keep me\n');
    const cases: Array<[string[], string]> = [
      [['tenant', 'import', missing], `cannot read ${missing}: the file does not exist`],
      [['tenant', 'import', test.dataDir], `cannot read ${test.dataDir}: it is a directory`],
      [['admins', 'import', missing], `cannot read ${missing}: the file does not exist`],
      [['admins', 'import', test.dataDir], `cannot read ${test.dataDir}: it is a directory`],
      [
        ['admins', 'import', sample, '--passwords-file', path.join(missing, 'passwords.csv')],
        `cannot create the passwords file ${path.join(missing, 'passwords.csv')}: its directory does not exist`,
      ],
      [
        ['admins', 'import', sample, '--passwords-file', existing],
        `cannot create the passwords file ${existing}: the file exists already`,
      ],
      [
        ['admins', 'import', sample, '--passwords-file', `${test.dataDir}/`],
        `cannot create the passwords file ${test.dataDir}/: it is a directory, not a file`,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({
        args,
        code: 1,
        stderr: expect.stringContaining(message),
      });
      expect(result.stderr).not.toMatch(/\bE[A-Z]{3,}\b/);
    }
    expect(await readFile(existing, 'utf8')).toBe('keep me\n');
  });
});

describe('account create', () => {
  it('creates an account whose one-time password signs in and must be changed', async () => {
    const client = await createClient(test);
    const { code, json } = await cliJson(
      'account',
      'create',
      '--tenant',
      '05158',
      '--username',
      'Özdemir.S',
      '--given-name',
      'Sabine',
      '--family-name',
      'Özdemir',
      '--permission',
      'meldeverfahren',
      '--local-admin',
    );
    expect(code).toBe(0);
    expect(json.account).toMatchObject({
      tenant_id: '05158',
      username: 'Özdemir.S',
      permissions: ['meldeverfahren'],
      roles: ['local_admin'],
    });

    const browser = new Browser();
    const login = asPage(await browser.visit((await authorizationRequest(client)).url.href));
    const change = asPage(
      await browser.submit(login, {
        tenant: 'Kreis Mettmann',
        username: 'özdemir.s',
        password: json.initial_password,
      }),
    );
    expect(change.document.querySelector('h1')?.textContent).toBe('Neues Kennwort festlegen');
    asRedirect(
      await browser.submit(
        change,
        { new_password: 'Sommer-Regen-42', new_password_confirm: 'Sommer-Regen-42' },
        client.redirectUri,
      ),
    );
  });

  it('creates an operator, who reaches every authority in the console', async () => {
    const { code, json } = await cliJson(
      'account',
      'create',
      '--tenant',
      '05158',
      '--username',
      'betrieb.eins',
      '--given-name',
      'Bettina',
      '--family-name',
      'Betrieb',
      '--operator',
    );
    expect(code).toBe(0);
    expect(json.account).toMatchObject({ username: 'betrieb.eins', roles: ['operator'] });
    const account = (await test.services.accounts.findByUsername('05158', 'betrieb.eins'))!;
    expect(test.services.admin.actingAdministrator(account)).toMatchObject({ operator: true });
  });

  it('refuses bad input with a clear error and writes nothing', async () => {
    const before = await test.services.db.collection('accounts').countDocuments();
    const cases: Array<[string[], RegExp]> = [
      [
        ['--tenant', '99999999', '--username', 'x1', '--given-name', 'A', '--family-name', 'B'],
        /tenant.unknown/,
      ],
      [
        [
          '--tenant',
          '05158',
          '--username',
          'x2',
          '--given-name',
          'A'.repeat(10_000),
          '--family-name',
          'B',
        ],
        /given_name.too_long/,
      ],
      [
        ['--tenant', '05158', '--username', 'has space', '--given-name', 'A', '--family-name', 'B'],
        /username.invalid_characters/,
      ],
      [
        ['--tenant', '05158', '--username', 'x3', '--given-name', ' ', '--family-name', 'B'],
        /given_name.required/,
      ],
      [
        [
          '--tenant',
          '05158',
          '--username',
          'x4',
          '--given-name',
          'A',
          '--family-name',
          'B',
          '--email',
          'nope',
        ],
        /email.invalid/,
      ],
      [
        [
          '--tenant',
          '05158',
          '--username',
          'NUR-EINMAL',
          '--given-name',
          'A',
          '--family-name',
          'B',
        ],
        /username.taken/,
      ],
    ];
    await cli(
      'account',
      'create',
      '--tenant',
      '05158',
      '--username',
      'nur-einmal',
      '--given-name',
      'Nur',
      '--family-name',
      'Einmal',
    );
    for (const [args, code] of cases) {
      const result = await cliJson('account', 'create', ...args);
      expect(result.code).toBe(1);
      expect(JSON.stringify(result.json.error)).toMatch(code);
    }
    const usage = await cli(
      'account',
      'create',
      '--tenant',
      '05158',
      '--username',
      'x5',
      '--given-name',
      'A',
      '--family-name',
      'B',
      '--permission',
      'alles',
    );
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Allowed choices are meldeverfahren, zahlungsmitteilungen/);
    expect(await test.services.db.collection('accounts').countDocuments()).toBe(before + 1);
  });
});

describe('account unlock and reset-password', () => {
  it('unlocks a locked account and gives a forgotten password a new one-time password', async () => {
    const client = await createClient(test);
    await cli(
      'account',
      'create',
      '--tenant',
      '05158',
      '--username',
      'vergesslich',
      '--given-name',
      'Vera',
      '--family-name',
      'Gesslich',
    );
    const person = (await test.services.accounts.findByUsername('05158', 'vergesslich'))!;
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      await test.services.signIn.attempt(
        { tenant: '05158', username: 'vergesslich', password: `Falsch-${attempt}!` },
        system,
      );
    }
    expect((await test.services.accounts.find(person._id))!.lockout.lockedAt).not.toBeNull();

    const unlocked = await cliJson(
      'account',
      'unlock',
      '--tenant',
      '05158',
      '--username',
      'VERGESSLICH',
    );
    expect(unlocked).toMatchObject({ code: 0, json: { unlocked: true } });
    expect((await test.services.accounts.find(person._id))!.lockout).toMatchObject({
      count: 0,
      lockedAt: null,
    });

    const reset = await cliJson(
      'account',
      'reset-password',
      '--tenant',
      '05158',
      '--username',
      'vergesslich',
    );
    expect(reset.code).toBe(0);
    const browser = new Browser();
    const login = asPage(await browser.visit((await authorizationRequest(client)).url.href));
    const change = asPage(
      await browser.submit(login, {
        tenant: '05158',
        username: 'vergesslich',
        password: reset.json.initial_password,
      }),
    );
    expect(change.document.querySelector('h1')?.textContent).toBe('Neues Kennwort festlegen');

    const unknown = await cliJson(
      'account',
      'unlock',
      '--tenant',
      '05158',
      '--username',
      'niemand',
    );
    expect(unknown).toMatchObject({ code: 1, json: { error: { code: 'account.not_found' } } });
    expect(
      await auditEvents(test, { action: 'account.unlocked', 'target.accountId': person._id }),
    ).toHaveLength(1);
  });

  it('says an account that is not locked was not locked, and records no unlock', async () => {
    const person = await createAccount(test, '05158', { username: 'nie.gesperrt' });
    await test.services.signIn.attempt(
      { tenant: '05158', username: 'nie.gesperrt', password: 'Falsch-1!' },
      system,
    );

    const json = await cliJson(
      'account',
      'unlock',
      '--tenant',
      '05158',
      '--username',
      'nie.gesperrt',
    );
    expect(json).toMatchObject({ code: 0, json: { unlocked: false, reason: 'not_locked' } });
    const text = await cli('account', 'unlock', '--tenant', '05158', '--username', 'nie.gesperrt');
    expect(text).toMatchObject({
      code: 0,
      stdout: 'account nie.gesperrt in 05158 is not locked; nothing changed\n',
    });

    expect(
      await auditEvents(test, {
        action: 'account.unlocked',
        'target.accountId': person.account._id,
      }),
    ).toEqual([]);
    expect((await test.services.accounts.find(person.account._id))!.lockout.count).toBe(1);
  });
});

describe('sessions end-all', () => {
  it('signs everyone out: sessions end, refresh and access tokens die, one audit event', async () => {
    const client = await createClient(test);
    const tenantId = (await createTenant(test)).id;
    const people = [await createAccount(test, tenantId), await createAccount(test, tenantId)];
    const signedIn = [];
    for (const person of people)
      signedIn.push(await signInForTokens(client, person, { scope: 'openid offline_access' }));

    const unconfirmed = await cli('sessions', 'end-all');
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain("required option '--yes'");
    expect(
      await oidc.tokenIntrospection(client.config, signedIn[0]!.tokens.access_token),
    ).toMatchObject({ active: true });

    const ended = await cliJson('sessions', 'end-all', '--yes');
    expect(ended.code).toBe(0);
    expect(ended.json.removed).toMatchObject({
      oidc_session: expect.any(Number),
      oidc_grant: expect.any(Number),
      oidc_refresh_token: expect.any(Number),
      oidc_session_uid: expect.any(Number),
    });
    expect(ended.json.removed.oidc_grant).toBeGreaterThanOrEqual(2);

    for (const { browser, tokens } of signedIn) {
      await expect(
        oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
      expect(await oidc.tokenIntrospection(client.config, tokens.access_token)).toMatchObject({
        active: false,
      });
      const again = asPage(await browser.visit((await authorizationRequest(client)).url.href));
      expect(again.document.querySelector('#password')).not.toBeNull();
    }
    expect(await auditEvents(test, { action: 'sessions.ended_all' })).toEqual([
      expect.objectContaining({
        actor: expect.objectContaining({ kind: 'cli' }),
        details: { removed: ended.json.removed },
      }),
    ]);
  });
});

describe('client add', () => {
  it('shows a confidential client secret once and refuses insecure redirect URIs', async () => {
    const added = await cliJson(
      'client',
      'add',
      'meldeverfahren-web',
      '--redirect-uri',
      'https://meldung.example/callback',
    );
    expect(added.code).toBe(0);
    expect(added.json.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const twice = await cliJson(
      'client',
      'add',
      'meldeverfahren-web',
      '--redirect-uri',
      'https://meldung.example/callback',
    );
    expect(twice.json.error.code).toBe('client.exists');

    for (const [uri, code] of [
      ['http://meldung.example/callback', 'redirect_uri.insecure'],
      ['https://meldung.example/callback#frag', 'redirect_uri.fragment'],
      ['not a url', 'redirect_uri.invalid'],
    ] as const) {
      const refused = await cliJson('client', 'add', 'other-client', '--redirect-uri', uri);
      expect(refused.code).toBe(1);
      expect(refused.json.error.fields.redirectUris).toEqual([code]);
    }
    const invalidId = await cliJson(
      'client',
      'add',
      'bad.id',
      '--redirect-uri',
      'https://x.example/cb',
    );
    expect(invalidId.json.error.fields.clientId).toEqual(['client_id.invalid']);
  });

  it('registers the ID token algorithm a client asks for, among ES256, PS256 and RS256', async () => {
    const added = await cliJson(
      'client',
      'add',
      'rs256-client',
      '--redirect-uri',
      'https://meldung.example/callback',
      '--id-token-signing-alg',
      'RS256',
    );
    const refused = await cli(
      'client',
      'add',
      'hs256-client',
      '--redirect-uri',
      'https://meldung.example/callback',
      '--id-token-signing-alg',
      'HS256',
    );

    expect(added.code).toBe(0);
    const stored = await new MongoAdapter(test.services.db, 'Client').find('rs256-client');
    expect(stored?.id_token_signed_response_alg).toBe('RS256');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Allowed choices are ES256, PS256, RS256.');
    expect(await test.services.clients.exists('hs256-client')).toBe(false);
  });

  it('refuses wildcard and overlong redirect URIs with a clear message and registers nothing', async () => {
    const wildcard = await cli(
      'client',
      'add',
      'wildcard-client',
      '--redirect-uri',
      'https://meldung.example/callback',
      'https://*.example/cb',
    );
    expect(wildcard.code).toBe(1);
    expect(wildcard.stderr).toBe(
      'flueag-idp: redirectUris: a redirect URI must not contain a wildcard (*); register each URI\n',
    );

    for (const [option, uri, field, code] of [
      [
        '--redirect-uri',
        `https://meldung.example/${'a'.repeat(10_000)}`,
        'redirectUris',
        'redirect_uri.too_long',
      ],
      [
        '--redirect-uri',
        'https://user:pass@meldung.example/cb',
        'redirectUris',
        'redirect_uri.userinfo',
      ],
      [
        '--post-logout-redirect-uri',
        'https://*.example/',
        'postLogoutRedirectUris',
        'redirect_uri.wildcard',
      ],
      [
        '--post-logout-redirect-uri',
        'http://meldung.example/',
        'postLogoutRedirectUris',
        'redirect_uri.insecure',
      ],
    ] as const) {
      const refused = await cliJson(
        'client',
        'add',
        'wildcard-client',
        ...(option === '--redirect-uri' ? [] : ['--redirect-uri', 'https://meldung.example/cb']),
        option,
        uri,
      );
      expect(refused.code).toBe(1);
      expect(refused.json.error.fields).toEqual({ [field]: [code] });
    }
    expect(await test.services.clients.exists('wildcard-client')).toBe(false);
  });

  it('refuses a client name with invisible characters, as for tenant names', async () => {
    const refused = await cli(
      'client',
      'add',
      'rtl-client',
      '--name',
      'Meldeverfahren\u202e',
      '--redirect-uri',
      'https://meldung.example/cb',
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'flueag-idp: clientName: the client name contains control or invisible characters (zero-width, direction marks)\n',
    );
    expect(await test.services.clients.exists('rtl-client')).toBe(false);
  });
});

describe('keys', () => {
  const keysFile = () => path.join(test.dataDir, 'keys.json');

  it('stages new signing and cookie keys behind the signing ones, in the owner-only file', async () => {
    const before = await cliJson('keys', 'list');

    const { code, json } = await cliJson('keys', 'rotate');

    expect(code).toBe(0);
    expect(
      json.staged.map((key: { use: string; alg: string; state: string }) => [
        key.use,
        key.alg,
        key.state,
      ]),
    ).toEqual([
      ['tokens', 'ES256', 'staged'],
      ['tokens', 'PS256 RS256', 'staged'],
      ['cookies', 'HMAC', 'staged'],
    ]);
    expect(json).toMatchObject({ restart_required: false, reload_within_seconds: 10 });
    expect(new Date(json.activate_from).getTime() - new Date(json.staged[0].since).getTime()).toBe(
      600_000,
    );
    expect(json.keys.slice(0, before.json.keys.length - 1)).toEqual(
      before.json.keys.filter((key: { use: string }) => key.use === 'tokens'),
    );
    expect((await stat(keysFile())).mode & 0o777).toBe(0o600);
    expect(await readFile(keysFile(), 'utf8')).toContain('"version": 2');
  });

  it('lists every key with its use, algorithm, state and since when, and the next step', async () => {
    const listed = await cli('keys', 'list');

    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^id +use +alg +state +since$/);
    expect(lines.filter((line) => / staged /.test(line))).toHaveLength(3);
    expect(lines.at(-1)).toMatch(
      /^staged keys: "flueag-idp keys activate" from \d{4}-\d\d-\d\dT[\d:.]+Z$/,
    );
    expect(listed.stdout).not.toContain(
      (await readFile(keysFile(), 'utf8')).match(/"d": "([^"]+)"/)![1],
    );
  });

  it('refuses a step that is too early in a sentence that says from when, with exit code 1', async () => {
    const activate = await cli('keys', 'activate');
    const retire = await cli('keys', 'retire');

    expect(activate.code).toBe(1);
    expect(activate.stderr).toMatch(
      /^flueag-idp: the staged keys have not been published for 600 s yet \(KEYS_PUBLISH_SECONDS\): servers and relying parties might not know them; "keys activate" is possible from \S+Z\n$/,
    );
    expect(retire).toEqual({ code: 0, stdout: 'no retired keys: nothing to remove\n', stderr: '' });
  });

  it('tells the operator to restart every server when servers do not reload the key file', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-cli-keys-'));
    try {
      const env = {
        ...process.env,
        DATA_DIR: dataDir,
        KEYS_RELOAD_SECONDS: '0',
        LOG_LEVEL: 'warn',
      };
      const created = await cliWith(env, '--json', 'keys', 'rotate');
      expect(JSON.parse(created.stdout)).toMatchObject({ created: true, restart_required: false });

      const staged = await cliWith(env, 'keys', 'rotate');
      expect(staged.code).toBe(0);
      expect(staged.stdout).toContain(
        'KEYS_RELOAD_SECONDS is 0: restart every flueag-idp server now, one after the other',
      );
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('creates a missing KEYS_FILE whose keys sign from the start', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'flueag-cli-keys-'));
    try {
      const file = path.join(directory, 'secrets', 'keys.json');
      const env = { ...process.env, KEYS_FILE: file, LOG_LEVEL: 'warn' };
      const created = await cliWith(env, '--json', 'keys', 'rotate');

      expect(created.code).toBe(0);
      const json = JSON.parse(created.stdout) as { created: boolean; keys: { state: string }[] };
      expect(json.created).toBe(true);
      expect(json.keys.map((key) => key.state)).toEqual(['signing', 'signing', 'signing']);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('--version', () => {
  it('prints the version of package.json', async () => {
    const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(await cli('--version')).toEqual({
      code: 0,
      stdout: `${manifest.version}\n`,
      stderr: '',
    });
    expect(await cliJson('--version')).toMatchObject({
      code: 0,
      json: { version: manifest.version },
    });
  });

  it("runs on the installation's Node 24 when an older Node comes first on the PATH", async () => {
    // The machine's own Node, as `npx --prefix <installation>` from elsewhere finds it.
    const machinePath = (process.env.PATH ?? '')
      .split(':')
      .filter((entry) => !entry.includes('node_modules'))
      .join(':');
    const result = await new Promise<CliResult>((resolve) => {
      execFile(
        'node',
        [path.join(root, 'bin/flueag-idp.js'), '--json', '--version'],
        { env: { PATH: machinePath }, cwd: os.tmpdir() },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout)).toEqual({ version: expect.any(String) });
  });
});

describe('--json', () => {
  it.each([
    [['bogus'], "unknown command 'bogus'"],
    [['tenant', 'add', '05111000'], "required option '--name <name>' not specified"],
    [['tenant', 'add', '05111000', '--name', 'X', '--kind', 'kaputt'], 'kaputt'],
    [['sessions', 'end-all', '--yes', '--everything'], "unknown option '--everything'"],
    [['tenant'], 'no command given; --help lists the commands'],
  ])('answers the usage error of %j as one JSON document, with status 2', async (args, text) => {
    const { code, json, stderr } = await cliJson(...args);
    expect({ code, stderr }).toEqual({ code: 2, stderr: '' });
    expect(json.error.code).toBe('usage');
    expect(json.error.message).toContain(text);
  });
});

describe('the embedded FerretDB', () => {
  it('logs only errors to ferretdb.log, however often the CLI runs', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-cli-embedded-'));
    try {
      const { MONGODB_URI: _shared, ...env } = process.env;
      for (let run = 0; run < 2; run += 1) {
        const added = await cliWith(
          { ...env, DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
          'tenant',
          'add',
          'betrieb',
          '--name',
          'IT.NRW',
          '--kind',
          'betrieb',
        );
        expect(added.code).toBe(0);
      }

      const log = await readFile(path.join(dataDir, 'ferretdb', 'ferretdb.log'), 'utf8');
      const levels = log
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { level: string }).level);
      expect(levels.filter((level) => level !== 'ERROR')).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
