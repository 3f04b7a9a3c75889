/** What the CLI prints: aligned text for people, one JSON document with `--json`. */

const reasons: Record<string, string> = {
  'tenant.required': 'the tenant id is missing',
  'tenant.unknown': 'no such tenant',
  'tenant.inactive': 'the tenant is deactivated',
  'tenant.invalid_id': 'a tenant id has 1 to 32 characters a-z, 0-9, _ and -',
  'tenant.exists': 'a different tenant with this id exists',
  'tenant_name.required': 'the name is missing',
  'tenant_name.taken': 'another tenant has this name',
  'tenant.invalid_key_gemeinde': 'a Gemeinde is keyed by its 8-digit Amtlicher Gemeindeschlüssel',
  'tenant.invalid_key_kreis': 'a Kreis is keyed by its 5-digit key',
  'tenant.invalid_key_bezirksregierung':
    'a Bezirksregierung is keyed by its 3-digit Regierungsbezirk',
  'tenant_name.too_long': 'the name is longer than 200 characters',
  'tenant_name.invalid_characters':
    'the name contains control or invisible characters (zero-width, direction marks)',
  'tenant_name.needs_letter': 'the name must contain at least one letter',
  'tenant_name.is_other_key': "the name is another tenant's id",
  'tenant.is_other_name': "the id is another tenant's name",
  'tenant.invalid_key_named': 'the id of a ministerium or betrieb tenant starts with a letter',
  'tenant_kind.unknown':
    'the kind must be gemeinde, kreis, bezirksregierung, ministerium or betrieb',
  'tenant_parent.unknown': 'the parent tenant does not exist',
  'tenant_parent.self': 'a tenant cannot be its own parent',
  'tenant_parent.not_allowed': 'a ministerium or betrieb tenant has no parent',
  'tenant_parent.wrong_kind':
    'a gemeinde belongs to a kreis or bezirksregierung, a kreis to a bezirksregierung, a bezirksregierung to the ministerium',
  'tenant_parent.key_mismatch': "the tenant's key does not start with its parent's key",
  'tenant_parent.cycle': 'the parent is never imported (cycle or missing row)',
  'username.required': 'the username is missing and cannot be derived from the name',
  'username.too_long': 'the username is longer than 64 characters',
  'username.invalid_characters': 'a username may contain letters, digits, ".", "_", "-" and "@"',
  'username.taken': 'the username is already taken in this tenant (compared without case)',
  'username.derived': 'username derived from the name',
  'given_name.required': 'the given name is missing',
  'given_name.too_long': 'the given name is longer than 100 characters',
  'given_name.invalid_characters': 'the given name contains characters that are not allowed',
  'family_name.required': 'the family name is missing',
  'family_name.too_long': 'the family name is longer than 100 characters',
  'family_name.invalid_characters': 'the family name contains characters that are not allowed',
  'email.invalid': 'the e-mail address is not valid',
  'account.not_found': 'no such account in this tenant',
  'account.retired': 'the account is deactivated permanently',
  'email.missing': 'imported without e-mail address (optional)',
  'permission.unknown': 'unknown permission',
  'role.unknown': 'unknown role',
  'role.local_admin_added': 'local-admin role added to the existing account',
  'row.columns': 'the row does not have as many fields as the header',
  'client.exists': 'a client with this id exists',
  'client_id.invalid': 'a client id has 1 to 64 characters A-Z, a-z, 0-9, _ and -',
  'client_name.required': 'the client name is empty',
  'client_name.too_long': 'the client name is longer than 100 characters',
  'client_name.invalid_characters':
    'the client name contains control or invisible characters (zero-width, direction marks)',
  'redirect_uri.invalid': 'not an absolute URL',
  'redirect_uri.too_long': 'a redirect URI is longer than 2000 characters',
  'redirect_uri.wildcard': 'a redirect URI must not contain a wildcard (*); register each URI',
  'redirect_uri.fragment': 'a redirect URI must not contain a fragment',
  'redirect_uri.userinfo': 'a redirect URI must not contain user information',
  'redirect_uri.insecure': 'a redirect URI must use https (http only for localhost)',
  'redirect_uri.required': 'at least one redirect URI is required',
  'id_token_alg.unknown': 'the ID token signing algorithm must be ES256, PS256 or RS256',
};

/** An English sentence for a reason code, or the code itself. */
export const describeReason = (code: string) => reasons[code] ?? code;

type Cell = string | number;

/**
 * The widest a padded column gets in text output. Every row is padded to the widest cell,
 * so one overlong value from a file (a 5,000-character username) would otherwise widen
 * every line of the table. `--json` keeps every value complete.
 */
const MAX_CELL_WIDTH = 60;

/** `cell` cut to MAX_CELL_WIDTH characters, the cut marked with an ellipsis. */
function capped(cell: string): string {
  const chars = Array.from(cell);
  return chars.length <= MAX_CELL_WIDTH ? cell : `${chars.slice(0, MAX_CELL_WIDTH - 1).join('')}…`;
}

export class Output {
  readonly json: boolean;
  /** Help text that commander wrote while --json was given; `run` prints it. */
  usageText = '';
  readonly #document: Record<string, unknown> = {};
  exitCode = 0;

  constructor(json: boolean) {
    this.json = json;
  }

  /** A single result: `value` in JSON, `lines` as text. */
  result(value: Record<string, unknown>, lines: string[]): void {
    if (this.json) Object.assign(this.#document, value);
    else process.stdout.write(`${lines.join('\n')}\n`);
  }

  /** One line per row, columns aligned; in JSON the rows themselves. */
  rows<T extends object>(rows: T[], cells: (row: T) => Cell[]): void {
    if (this.json) {
      this.#document.rows = rows;
      return;
    }
    // The last column is not padded and is never cut: it carries the reasons of a rejected
    // row and one-time passwords, which must be shown whole.
    const table = rows.map((row) =>
      cells(row).map((cell, index, all) => {
        const text = index === 0 ? `line ${cell}` : String(cell);
        return index === all.length - 1 ? text : capped(text);
      }),
    );
    const widths = table.reduce<number[]>(
      (max, row) => row.map((cell, i) => Math.max(max[i] ?? 0, cell.length)),
      [],
    );
    for (const row of table)
      process.stdout.write(
        `${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}\n`,
      );
    const counts = new Map<string, number>();
    for (const row of rows) {
      const outcome = String((row as { outcome?: string }).outcome);
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    }
    process.stdout.write(
      `summary: ${[...counts].map(([outcome, count]) => `${count} ${outcome.replace('_', ' ')}`).join(', ') || 'no rows'}\n`,
    );
  }

  warnings(warnings: Array<{ message: string } & Record<string, unknown>>): void {
    if (this.json) this.#document.warnings = warnings;
    else for (const warning of warnings) process.stdout.write(`warning: ${warning.message}\n`);
  }

  error(error: { code: string; message: string } & Record<string, unknown>): void {
    if (this.json) process.stdout.write(`${JSON.stringify({ error })}\n`);
    else process.stderr.write(`flueag-idp: ${error.message}\n`);
  }

  /** The command stopped early on a signal (status 130); `message` says what is left. */
  interrupted(message: string): void {
    this.exitCode = 130;
    if (this.json) this.#document.interrupted = message;
    else process.stderr.write(`flueag-idp: ${message}\n`);
  }

  flush(): void {
    if (this.json) process.stdout.write(`${JSON.stringify(this.#document, null, 2)}\n`);
  }
}
