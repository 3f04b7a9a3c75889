/**
 * The admin account list of one large tenant, through HTTP as a local admin's browser asks
 * for it: the first page, a page deep into the list, a search and a state filter.
 */
import { randomBytes } from 'node:crypto';

import { accountModel } from '../src/accounts/model.ts';
import { UsernameIndex } from '../src/accounts/usernames.ts';
import { asPage, Browser } from '../test/support/browser.ts';
import { signInToConsole } from '../test/support/console.ts';
import {
  createAccount,
  createTenant,
  type Installation,
  type TestServer,
} from '../test/support/server.ts';
import { timeSeries, type Latency } from './stats.ts';

export interface AdminListResult {
  accounts: number;
  cases: Record<string, Latency>;
}

const BATCH = 1000;

/** Where seeded accounts go: `count` accounts of `tenantId`, numbered from `first`. */
export interface SeedSlot {
  tenantId: string;
  count: number;
  first?: number;
}

const surnames = [
  'Müller',
  'Schmidt',
  'Schneider',
  'Fischer',
  'Weber',
  'Meyer',
  'Wagner',
  'Becker',
];

/** The username of the seeded account number `index` of a tenant. */
export const seededUsername = (index: number) => `person.${String(index).padStart(5, '0')}`;

/**
 * Stores accounts shaped like `template` (its password hash among them, so they sign in
 * with its password) in batches, with their username entries as the account service writes
 * them; with `lockedEvery`, every so many of them are locked. Returns who was stored.
 */
export async function seedAccounts(
  test: Installation,
  slots: SeedSlot[],
  template: object,
  options: { lockedEvery?: number } = {},
) {
  const documents = slots.flatMap(({ tenantId, count, first = 0 }) =>
    Array.from({ length: count }, (_, offset) => {
      const index = first + offset;
      const username = seededUsername(index);
      const locked = options.lockedEvery !== undefined && index % options.lockedEvery === 0;
      return {
        ...structuredClone(template),
        _id: randomBytes(12).toString('hex'),
        tenantId,
        username,
        usernameKey: username,
        familyName: `${surnames[index % surnames.length]}${index}`,
        roles: [],
        ...(locked ? { lockout: { count: 5, failures: [], lockedAt: new Date() } } : {}),
      };
    }),
  );
  const usernames = new UsernameIndex(test.services.db, accountModel(test.services.connection));
  for (let start = 0; start < documents.length; start += BATCH) {
    const batch = documents.slice(start, start + BATCH);
    await test.services.db.collection('accounts').insertMany(batch as never[]);
    await usernames.recordMany(batch);
  }
  return documents.map(({ _id, tenantId, username }) => ({ accountId: _id, tenantId, username }));
}

/** Requests `path` of the console as `browser` and fails unless it answers 200. */
export async function consolePage(test: TestServer, browser: Browser, path: string) {
  const result = asPage(await browser.visit(`${test.issuer}${path}`));
  if (result.status !== 200) throw new Error(`${path} answered ${result.status}`);
  return result;
}

export async function benchAdminList(
  test: TestServer,
  options: { accounts: number; runs: number },
): Promise<AdminListResult> {
  const tenantId = (await createTenant(test)).id;
  const admin = await createAccount(test, tenantId, {
    roles: ['local_admin'],
    username: 'aaa.admin',
  });
  await seedAccounts(test, [{ tenantId, count: options.accounts - 1 }], admin.account, {
    lockedEvery: 50,
  });
  const { browser } = await signInToConsole(test, admin);

  const deep = seededUsername(Math.floor(options.accounts * 0.8));
  const cases: Record<string, string> = {
    'first page': '/admin/accounts',
    'page at 80 %': `/admin/accounts?after=${deep}`,
    'search "schmidt"': '/admin/accounts?q=schmidt',
    'filter locked': '/admin/accounts?state=locked',
  };
  const results: Record<string, Latency> = {};
  for (const [name, path] of Object.entries(cases)) {
    await consolePage(test, browser, path);
    results[name] = await timeSeries(options.runs, () => consolePage(test, browser, path));
  }
  return { accounts: options.accounts, cases: results };
}
