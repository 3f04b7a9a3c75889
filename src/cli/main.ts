/**
 * The operator CLI `flueag-idp`. It works with the same database as the server: MONGODB_URI
 * if set, otherwise the data directory's embedded FerretDB, shared with a running
 * `npm start` or started for the duration of the command.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

import { Command, CommanderError, Option } from 'commander';
import { pino } from 'pino';

import { NominationImport, nominationColumns, type ImportReport } from '../accounts/nominations.ts';
import { accountModel, permissions, type Account } from '../accounts/model.ts';
import type { ChainReport } from '../audit/chain.ts';
import type { RequestContext } from '../audit/trail.ts';
import { loadConfig } from '../config.ts';
import { AppError, ValidationError } from '../errors.ts';
import { operatorMessage } from '../failures.ts';
import { describeFileError } from '../files.ts';
import { Lifecycle } from '../lifecycle.ts';
import { idTokenSigningAlgs } from '../oidc/clients.ts';
import { KeyRotationRefused } from '../oidc/key-rotation.ts';
import { openConfiguredServices, type Services } from '../services.ts';
import { tenantKinds } from '../tenants/model.ts';
import { importTenants, tenantColumns } from '../tenants/import.ts';
import { InputFileError, readCsv } from './csv.ts';
import { keyCommands } from './keys.ts';
import { describeReason, Output } from './output.ts';

const context: RequestContext = {
  requestId: `cli-${randomUUID()}`,
  actor: { kind: 'cli', accountId: null, tenantId: null },
};

/**
 * Opens the services for one command and closes them afterwards, also when the command is
 * interrupted (SIGINT, SIGTERM), so that a FerretDB started for it never outlives it. A
 * signal during the command does not close the database under it: `stop` is aborted, an
 * import stops between two rows and reports what it did, any other command finishes its
 * write; a second signal stops the process at once.
 */
async function withServices<T>(
  action: (services: Services, stop: AbortSignal) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  const log = pino({ level: 'warn' }, pino.destination(2));
  const stop = new AbortController();
  const lifecycle = new Lifecycle({ signalExitCode: 130, onSignal: () => stop.abort() });
  try {
    const services = await openConfiguredServices(config, log, lifecycle, 'cli');
    return await action(services, stop.signal);
  } finally {
    await lifecycle.close();
  }
}

/** Runs `action` on the account named by tenant and username, or fails with account.not_found. */
function withAccount(
  options: { tenant: string; username: string },
  action: (services: Services, account: Account) => Promise<void>,
): Promise<void> {
  return withServices(async (services) => {
    const found = await services.accounts.findByUsername(options.tenant, options.username);
    if (!found) throw new AppError(404, 'account.not_found');
    await action(services, found);
  });
}

/** The version in package.json, which is the version of the whole product. */
function productVersion(): string {
  const manifest = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

function program(output: Output): Command {
  const cli = new Command('flueag-idp')
    .description('Operator commands of the FlüAG identity provider')
    .version(productVersion(), '-V, --version', 'print the version')
    .option('--json', 'machine-readable output on stdout')
    .exitOverride()
    .configureOutput({
      // With --json, stdout carries one JSON document: usage errors become one (see `run`),
      // and help or version text waits for `run` to decide how to print it.
      writeErr: (text) => void (output.json || process.stderr.write(text)),
      writeOut: (text) =>
        void (output.json ? (output.usageText += text) : process.stdout.write(text)),
    });

  const tenant = cli.command('tenant').description('authorities (tenants)');
  tenant
    .command('add <id>')
    .description('register one authority')
    .requiredOption('--name <name>', 'official name')
    .addOption(
      new Option('--kind <kind>', 'kind of authority').choices(tenantKinds).makeOptionMandatory(),
    )
    .option('--parent <id>', 'the Kreis of a Gemeinde, the Bezirksregierung of a Kreis')
    .action((id: string, options: { name: string; kind: string; parent?: string }) =>
      withServices(async ({ tenants }) => {
        const { tenant: added, created } = await tenants.add(
          { id, name: options.name, kind: options.kind, parent: options.parent ?? null },
          context,
        );
        output.result(
          {
            tenant: { id: added._id, name: added.name, kind: added.kind, parent: added.parent },
            created,
          },
          [`${created ? 'added' : 'already present'}: ${added._id} ${added.name} (${added.kind})`],
        );
      }),
    );
  tenant
    .command('import <csv>')
    .description(`import authorities from a CSV file with the columns ${tenantColumns.join(',')}`)
    .action((file: string) =>
      withServices(async ({ tenants }, stop) => {
        const csv = await readCsv(file, ['id', 'name', 'kind']);
        const outcomes = await importTenants(tenants, csv.records, context, stop);
        const rows = [
          ...outcomes,
          ...csv.malformed.map((line) => ({
            line,
            outcome: 'rejected' as const,
            tenantId: null,
            reasons: ['row.columns'],
          })),
        ].sort((a, b) => a.line - b.line);
        output.rows(rows, (row) => [
          row.line,
          row.outcome,
          row.tenantId ?? '-',
          row.outcome === 'rejected' ? row.reasons.map(describeReason).join('; ') : '',
        ]);
        output.exitCode = rows.some((row) => row.outcome === 'rejected') ? 1 : 0;
        if (stop.aborted)
          output.interrupted(importInterrupted(outcomes.length, csv.records.length));
      }),
    );

  cli
    .command('client')
    .description('relying parties')
    .command('add <client_id>')
    .description('register a first-party client (code flow with PKCE)')
    .requiredOption('--redirect-uri <uri...>', 'registered redirect URIs (exact match)')
    .option('--post-logout-redirect-uri <uri...>', 'registered post-logout redirect URIs')
    .option('--name <name>', 'name shown on the sign-in page')
    .option('--public', 'a public client (no secret), e.g. a single-page app')
    .option(
      '--admin-api',
      'a client for the admin API: may get the admin scope for local admins and operators',
    )
    .addOption(
      new Option(
        '--id-token-signing-alg <alg>',
        'algorithm of its ID tokens (default ES256); RS256 only for clients that need it',
      ).choices(idTokenSigningAlgs),
    )
    .action(
      (
        clientId: string,
        options: {
          redirectUri: string[];
          postLogoutRedirectUri?: string[];
          name?: string;
          public?: boolean;
          adminApi?: boolean;
          idTokenSigningAlg?: string;
        },
      ) =>
        withServices(async ({ clients }) => {
          const client = await clients.add(
            {
              clientId,
              clientName: options.name,
              redirectUris: options.redirectUri,
              postLogoutRedirectUris: options.postLogoutRedirectUri ?? [],
              public: options.public ?? false,
              adminApi: options.adminApi ?? false,
              idTokenSigningAlg: options.idTokenSigningAlg,
            },
            context,
          );
          output.result(
            { client_id: client.clientId, client_secret: client.clientSecret ?? null },
            [
              `client ${client.clientId} registered`,
              client.clientSecret
                ? `client secret (shown only now): ${client.clientSecret}`
                : 'public client: no secret',
            ],
          );
        }),
    );

  cli
    .command('admins')
    .description('nominated local administrators')
    .command('import <csv>')
    .description(
      `import nominated local admins from a CSV file with the columns ${nominationColumns.join(',')}`,
    )
    .option(
      '--passwords-file <file>',
      'write the one-time passwords to this new file (mode 0600) instead of stdout',
    )
    .action((file: string, options: { passwordsFile?: string }) =>
      withServices(async (services, stop) => {
        const csv = await readCsv(file, nominationColumns);
        // Claim the passwords file before anything is created, so passwords are never lost.
        const passwords = options.passwordsFile
          ? await createPasswordsFile(options.passwordsFile)
          : undefined;
        const nominations = new NominationImport(
          services.accounts,
          accountModel(services.connection),
          services.tenants,
        );
        const report = await nominations.run(csv.records, context, stop);
        for (const line of csv.malformed)
          report.rows.push({
            line,
            outcome: 'rejected',
            tenantId: null,
            username: null,
            reasons: ['row.columns'],
          });
        report.rows.sort((a, b) => a.line - b.line);
        if (passwords) await writePasswords(passwords, report);
        printImport(output, report, options.passwordsFile !== undefined);
        output.exitCode = report.rows.some((row) => row.outcome === 'rejected') ? 1 : 0;
        if (stop.aborted)
          output.interrupted(
            importInterrupted(report.rows.length - csv.malformed.length, csv.records.length),
          );
      }),
    );

  const account = cli.command('account').description('accounts');
  account
    .command('create')
    .description('create an account with a one-time password')
    .requiredOption('--tenant <id>', 'the authority')
    .requiredOption('--username <name>', 'unique within the authority')
    .requiredOption('--given-name <name>')
    .requiredOption('--family-name <name>')
    .option('--email <address>')
    .addOption(
      new Option('--permission <permission...>', 'permissions to grant').choices(permissions),
    )
    .option('--local-admin', 'make the account a local administrator of its authority')
    .option('--operator', 'make the account an operator, who may manage every authority')
    .action(
      (options: {
        tenant: string;
        username: string;
        givenName: string;
        familyName: string;
        email?: string;
        permission?: string[];
        localAdmin?: boolean;
        operator?: boolean;
      }) =>
        withServices(async ({ accounts }) => {
          const { account, initialPassword } = await accounts.create(
            {
              tenantId: options.tenant,
              username: options.username,
              givenName: options.givenName,
              familyName: options.familyName,
              email: options.email ?? null,
              permissions: options.permission ?? [],
              roles: [
                ...(options.localAdmin ? ['local_admin'] : []),
                ...(options.operator ? ['operator'] : []),
              ],
            },
            context,
          );
          output.result(
            {
              account: {
                sub: account._id,
                tenant_id: account.tenantId,
                username: account.username,
                permissions: account.permissions,
                roles: account.roles,
              },
              initial_password: initialPassword,
            },
            [
              `account ${account.username} created in ${account.tenantId} (sub ${account._id})`,
              `one-time password (shown only now, valid 14 days): ${initialPassword}`,
            ],
          );
        }),
    );

  account
    .command('unlock')
    .description('lift the lock after failed sign-ins')
    .requiredOption('--tenant <id>', 'the authority')
    .requiredOption('--username <name>')
    .action((options: { tenant: string; username: string }) =>
      withAccount(options, async ({ accounts }, found) => {
        const account = { sub: found._id, username: found.username };
        if (await accounts.unlock(found._id, context)) {
          output.result({ account, unlocked: true }, [
            `account ${found.username} in ${found.tenantId} unlocked`,
          ]);
        } else {
          output.result({ account, unlocked: false, reason: 'not_locked' }, [
            `account ${found.username} in ${found.tenantId} is not locked; nothing changed`,
          ]);
        }
      }),
    );
  account
    .command('reset-password')
    .description("give a new one-time password (ends the account's sessions, lifts a lock)")
    .requiredOption('--tenant <id>', 'the authority')
    .requiredOption('--username <name>')
    .action((options: { tenant: string; username: string }) =>
      withAccount(options, async ({ accounts }, found) => {
        const { initialPassword } = await accounts.resetPassword(found._id, context);
        output.result(
          {
            account: { sub: found._id, username: found.username },
            initial_password: initialPassword,
          },
          [
            `new one-time password for ${found.username} in ${found.tenantId} (shown only now, valid 14 days): ${initialPassword}`,
          ],
        );
      }),
    );

  cli
    .command('audit')
    .description('the audit trail')
    .command('verify')
    .description(
      'check the hash chain of the audit events; exit code 1 when an event was edited or deleted',
    )
    .option('--tenant <id>', 'only this authority')
    .action((options: { tenant?: string }) =>
      withServices(async ({ audit }) => {
        const chains = await audit.verify(options.tenant);
        const broken = chains.filter((chain) => chain.problems.length > 0);
        if (broken.length > 0) output.exitCode = 1;
        output.result({ intact: broken.length === 0, chains }, [
          ...chains.map((chain) => describeChain(chain)),
          broken.length === 0
            ? `audit trail intact: ${chains.length} chain(s) checked`
            : `audit trail NOT intact: ${broken.length} of ${chains.length} chain(s) broken`,
        ]);
      }),
    );

  cli
    .command('sessions')
    .description('sessions of people who signed in')
    .command('end-all')
    .description(
      'end every session and revoke every grant, code and token of every account, after a key compromise or the restore of a backup',
    )
    .requiredOption('--yes', 'confirm that everyone has to sign in again')
    .action(() =>
      withServices(async ({ accounts }) => {
        const removed = await accounts.endAllSessions(context);
        output.result({ removed }, [
          ...Object.entries(removed).map(
            ([collection, count]) => `${collection}: ${count} removed`,
          ),
          'every session has ended and every grant is revoked: everyone signs in again',
        ]);
      }),
    );

  keyCommands(cli, output);

  return cli;
}

/** What an import stopped by a signal did, and how to do the rest. */
function importInterrupted(done: number, total: number): string {
  return `interrupted by a signal after ${done} of ${total} rows; import the same file again for the rest (rows imported now are then reported as already present)`;
}

function describeChain(chain: ChainReport): string {
  const name = chain.key === '-' ? 'events without tenant' : `tenant ${chain.key}`;
  const range = chain.firstSeq === null ? 'no events' : `events ${chain.firstSeq}–${chain.lastSeq}`;
  const purged = chain.purgedThrough > 0 ? `, 1–${chain.purgedThrough} purged by retention` : '';
  const problems = chain.problems.map((problem) =>
    problem.kind === 'missing'
      ? `events ${problem.fromSeq}–${problem.toSeq} deleted`
      : problem.kind === 'duplicate'
        ? `event ${problem.seq} present twice`
        : `event ${problem.seq} (${problem.eventId}) ${problem.kind === 'edited' ? 'edited' : 'does not follow its predecessor'}`,
  );
  return `${name}: ${range}${purged}: ${problems.length === 0 ? 'ok' : problems.join('; ')}`;
}

/** Creates the passwords file (mode 0600); refuses to touch an existing file. */
async function createPasswordsFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'wx', 0o600);
  } catch (error) {
    throw new InputFileError(
      `cannot create the passwords file ${file}: ${describeFileError(error, 'create')}`,
    );
  }
}

async function writePasswords(file: FileHandle, report: ImportReport): Promise<void> {
  const lines = ['tenant_id,username,initial_password'];
  for (const row of report.rows) {
    if (row.outcome === 'imported')
      lines.push(`${row.tenantId},${row.username},${row.initialPassword}`);
  }
  await file.writeFile(`${lines.join('\n')}\n`);
  await file.close();
}

function printImport(output: Output, report: ImportReport, passwordsElsewhere: boolean) {
  const rows = report.rows.map((row) => {
    if (row.outcome !== 'imported' || !passwordsElsewhere) return row;
    const { initialPassword: _omitted, ...rest } = row;
    return rest;
  });
  output.rows(rows, (row) => [
    row.line,
    row.outcome,
    row.tenantId ?? '-',
    row.username ?? '-',
    row.outcome === 'rejected'
      ? row.reasons.map(describeReason).join('; ')
      : [
          ...row.notes.map(describeReason),
          'initialPassword' in row ? `one-time password: ${row.initialPassword}` : '',
        ]
          .filter(Boolean)
          .join('; '),
  ]);
  output.warnings(
    report.warnings.map((warning) => ({
      ...warning,
      message: `tenant ${warning.tenantId} (${warning.tenantName}) has ${warning.activeLocalAdmins} active local admin(s); at least two are required`,
    })),
  );
}

export async function run(argv: string[]): Promise<number> {
  const output = new Output(argv.includes('--json'));
  try {
    await program(output).parseAsync(argv, { from: 'user' });
    output.flush();
    return output.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return usageEnd(output, error);
    output.error(describeError(error));
    return 1;
  }
}

/** The end of a run that commander ended: help, version, or a usage error (status 2). */
function usageEnd(output: Output, error: CommanderError): number {
  if (!output.json) return error.exitCode === 0 ? 0 : 2;
  if (error.code === 'commander.version') {
    output.result({ version: productVersion() }, []);
    output.flush();
    return 0;
  }
  if (error.exitCode === 0) {
    process.stdout.write(output.usageText);
    return 0;
  }
  // `commander.help` with a non-zero status: a command group without its command.
  const message =
    error.code === 'commander.help'
      ? 'no command given; --help lists the commands'
      : error.message.replace(/^error: /, '');
  output.error({ code: 'usage', message });
  return 2;
}

function describeError(error: unknown): {
  code: string;
  message: string;
  fields?: Record<string, string[]>;
  possible_at?: string;
} {
  if (error instanceof KeyRotationRefused)
    return {
      code: error.code,
      message: error.message,
      ...(error.possibleAt === undefined ? {} : { possible_at: error.possibleAt }),
    };
  if (error instanceof ValidationError) {
    const fields = error.fields;
    return {
      code: error.code,
      message: Object.entries(fields)
        .map(([field, codes]) => `${field}: ${codes.map(describeReason).join(', ')}`)
        .join('; '),
      fields,
    };
  }
  if (error instanceof AppError) return { code: error.code, message: describeReason(error.code) };
  if (error instanceof InputFileError) return { code: error.name, message: error.message };
  const message = operatorMessage(error);
  if (message) return { code: (error as Error).name, message };
  return { code: 'internal', message: String((error as Error)?.message ?? error) };
}
