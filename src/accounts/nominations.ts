/**
 * Importing the local admins that authorities nominate: one CSV row per person. The import
 * is idempotent (a person already present is reported, not created twice), reports every
 * rejected row with its reason, and warns about authorities left with fewer than two admins.
 */
import type { RequestContext } from '../audit/trail.ts';
import { AppError, ValidationError } from '../errors.ts';
import type { TenantDirectory } from '../tenants/directory.ts';
import type { Account, AccountModel } from './model.ts';
import { usernameKey } from './normalize.ts';
import type { AccountService } from './service.ts';

export interface NominationRow {
  line: number;
  tenant_id?: string | undefined;
  given_name?: string | undefined;
  family_name?: string | undefined;
  email?: string | undefined;
  username?: string | undefined;
}

export type RowOutcome =
  | {
      line: number;
      outcome: 'imported';
      tenantId: string;
      username: string;
      accountId: string;
      initialPassword: string;
      notes: string[];
    }
  | {
      line: number;
      outcome: 'already_present';
      tenantId: string;
      username: string;
      accountId: string;
      notes: string[];
    }
  | {
      line: number;
      outcome: 'rejected';
      tenantId: string | null;
      username: string | null;
      reasons: string[];
    };

export interface TenantWarning {
  tenantId: string;
  tenantName: string;
  activeLocalAdmins: number;
}

export interface ImportReport {
  rows: RowOutcome[];
  warnings: TenantWarning[];
}

export const nominationColumns = [
  'tenant_id',
  'given_name',
  'family_name',
  'email',
  'username',
] as const;

export class NominationImport {
  readonly #accounts: AccountService;
  readonly #accountModel: AccountModel;
  readonly #tenants: TenantDirectory;

  constructor(accounts: AccountService, accountModel: AccountModel, tenants: TenantDirectory) {
    this.#accounts = accounts;
    this.#accountModel = accountModel;
    this.#tenants = tenants;
  }

  /**
   * Imports the rows in order; each row is one atomic write or none. Once `stop` is
   * aborted, the row under way is finished and the rest left out of the report.
   */
  async run(
    rows: NominationRow[],
    context: RequestContext,
    stop?: AbortSignal,
  ): Promise<ImportReport> {
    const outcomes: RowOutcome[] = [];
    for (const row of rows) {
      if (stop?.aborted) break;
      outcomes.push(await this.#importRow(row, context));
    }
    const named = new Set(
      outcomes.flatMap((outcome) => (outcome.tenantId ? [outcome.tenantId] : [])),
    );
    return { rows: outcomes, warnings: await this.#warnings([...named]) };
  }

  async #importRow(row: NominationRow, context: RequestContext): Promise<RowOutcome> {
    const tenantId = row.tenant_id?.trim() || null;
    const rejected = (reasons: string[], username = row.username?.trim() || null): RowOutcome => ({
      line: row.line,
      outcome: 'rejected',
      tenantId,
      username,
      reasons,
    });
    if (!tenantId) return rejected(['tenant.required']);
    if (!(await this.#tenants.find(tenantId))) return rejected(['tenant.unknown']);

    const notes: string[] = [];
    const email = row.email?.trim() || null;
    if (email === null) notes.push('email.missing');

    let username = row.username?.trim() ?? '';
    const person = { givenName: row.given_name ?? '', familyName: row.family_name ?? '', email };
    if (username === '') {
      const derived = await this.#deriveUsername(tenantId, person);
      if (!derived) return rejected(['username.required']);
      username = derived;
      notes.push('username.derived');
    }

    // The name may be held already: by this person (a repeated import), or by another.
    const present = async (): Promise<RowOutcome | undefined> => {
      const existing = await this.#accounts.findByUsername(tenantId, username);
      if (!existing) return undefined;
      if (!samePerson(existing, person)) return rejected(['username.taken'], username);
      if (await this.#accounts.addRole(existing._id, 'local_admin', context)) {
        notes.push('role.local_admin_added');
      }
      return {
        line: row.line,
        outcome: 'already_present',
        tenantId,
        username: existing.username,
        accountId: existing._id,
        notes,
      };
    };
    const found = await present();
    if (found) return found;

    try {
      const { account, initialPassword } = await this.#accounts.create(
        {
          tenantId,
          username,
          givenName: person.givenName,
          familyName: person.familyName,
          email,
          roles: ['local_admin'],
        },
        context,
      );
      return {
        line: row.line,
        outcome: 'imported',
        tenantId,
        username: account.username,
        accountId: account._id,
        initialPassword,
        notes,
      };
    } catch (error) {
      // Another import of the same row created the account between the look-up and here.
      const taken = error instanceof AppError && error.code === 'username.taken';
      const meanwhile = taken ? await present() : undefined;
      if (meanwhile) return meanwhile;
      if (error instanceof ValidationError)
        return rejected(Object.values(error.fields).flat(), username);
      if (error instanceof AppError) return rejected([error.code], username);
      throw error;
    }
  }

  /**
   * A username from the person's names when the row has none: first letter of the given
   * name and the family name, transliterated to ASCII (`Frieda Leer` → `fleer`). A name
   * held by somebody else gets a number; the same person keeps theirs (idempotency).
   */
  async #deriveUsername(
    tenantId: string,
    person: { givenName: string; familyName: string; email: string | null },
  ) {
    const base = ascii(person.givenName.trim().slice(0, 1)) + ascii(person.familyName);
    if (base.length < 2) return undefined;
    for (let suffix = 1; suffix < 100; suffix += 1) {
      const candidate = suffix === 1 ? base : `${base}${suffix}`;
      const holder = await this.#accountModel
        .findOne({ tenantId, usernameKey: usernameKey(candidate) })
        .lean();
      if (!holder || samePerson(holder, person)) return candidate;
    }
    return undefined;
  }

  async #warnings(tenantIds: string[]): Promise<TenantWarning[]> {
    const warnings: TenantWarning[] = [];
    for (const tenantId of tenantIds.sort()) {
      const tenant = await this.#tenants.find(tenantId);
      if (!tenant) continue;
      const activeLocalAdmins = await this.#accountModel.countDocuments({
        tenantId,
        roles: 'local_admin',
        state: 'active',
      });
      if (activeLocalAdmins < 2)
        warnings.push({ tenantId, tenantName: tenant.name, activeLocalAdmins });
    }
    return warnings;
  }
}

const fold = (value: string | null | undefined) =>
  (value ?? '').normalize('NFC').trim().replace(/\s+/g, ' ').toLowerCase();

function samePerson(
  account: Account,
  person: { givenName: string; familyName: string; email: string | null },
): boolean {
  return (
    fold(account.givenName) === fold(person.givenName) &&
    fold(account.familyName) === fold(person.familyName) &&
    fold(account.email) === fold(person.email)
  );
}

const transliterations: Record<string, string> = {
  ä: 'ae',
  ö: 'oe',
  ü: 'ue',
  ß: 'ss',
  æ: 'ae',
  ø: 'oe',
  ı: 'i',
  ł: 'l',
};

function ascii(value: string): string {
  return [...value.toLowerCase()]
    .map((char) => transliterations[char] ?? char)
    .join('')
    .normalize('NFD')
    .replace(/[^a-z0-9]/g, '');
}
