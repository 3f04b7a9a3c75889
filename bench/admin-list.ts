/**
 * The admin account list of one large tenant, through HTTP as a local admin's browser asks
 * for it: the first page, a page deep into the list, a search and a state filter.
 */
import { randomBytes } from 'node:crypto';

import { asPage, Browser } from '../test/support/browser.ts';
import { signInToConsole } from '../test/support/console.ts';
import { createAccount, createTenant, type TestServer } from '../test/support/server.ts';
import { timeSeries, type Latency } from './stats.ts';

export interface AdminListResult {
  accounts: number;
  cases: Record<string, Latency>;
}

const BATCH = 1000;

/** Stores `count` more accounts in `tenantId`, shaped like `template`, in batches. */
async function seedAccounts(test: TestServer, tenantId: string, count: number, template: object) {
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
  for (let start = 0; start < count; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - start) }, (_, offset) => {
      const index = start + offset;
      const username = `person.${String(index).padStart(5, '0')}`;
      return {
        ...structuredClone(template),
        _id: randomBytes(12).toString('hex'),
        tenantId,
        username,
        usernameKey: username,
        familyName: `${surnames[index % surnames.length]}${index}`,
        roles: [],
        ...(index % 50 === 0 ? { lockout: { count: 5, failures: [], lockedAt: new Date() } } : {}),
      };
    });
    await test.services.db.collection('accounts').insertMany(batch as never[]);
  }
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
  await seedAccounts(test, tenantId, options.accounts - 1, admin.account);
  const { browser } = await signInToConsole(test, admin);

  const page = async (browserOf: Browser, path: string) => {
    const result = asPage(await browserOf.visit(`${test.issuer}${path}`));
    if (result.status !== 200) throw new Error(`${path} answered ${result.status}`);
    return result;
  };
  const deep = `person.${String(Math.floor(options.accounts * 0.8)).padStart(5, '0')}`;
  const cases: Record<string, string> = {
    'first page': '/admin/accounts',
    'page at 80 %': `/admin/accounts?after=${deep}`,
    'search "schmidt"': '/admin/accounts?q=schmidt',
    'filter locked': '/admin/accounts?state=locked',
  };
  const results: Record<string, Latency> = {};
  for (const [name, path] of Object.entries(cases)) {
    await page(browser, path);
    results[name] = await timeSeries(options.runs, () => page(browser, path));
  }
  return { accounts: options.accounts, cases: results };
}
