/**
 * A population shaped like the procedure's: many authorities with a handful of accounts
 * each. It measures what one person and one local admin meet in it: a sign-in, and the
 * admin account list of their own authority.
 */
import { signInToConsole } from '../test/support/console.ts';
import {
  createAccount,
  createClient,
  createTenant,
  type TestAccount,
  type TestServer,
} from '../test/support/server.ts';
import { consolePage, seedAccounts, seededUsername } from './admin-list.ts';
import { signIn } from './sign-in.ts';
import { timeSeries, type Latency } from './stats.ts';

export interface PopulationResult {
  tenants: number;
  accountsPerTenant: number;
  seedSeconds: number;
  signIn: Latency;
  adminList: Latency;
}

export async function benchPopulation(
  test: TestServer,
  options: { tenants: number; accountsPerTenant: number; runs: number },
): Promise<PopulationResult> {
  const started = performance.now();
  const tenantIds: string[] = [];
  for (let index = 0; index < options.tenants; index += 1)
    tenantIds.push((await createTenant(test)).id);
  const admin = await createAccount(test, tenantIds[0]!, {
    roles: ['local_admin'],
    username: 'aaa.admin',
  });
  await seedAccounts(
    test,
    tenantIds.map((tenantId, index) => ({
      tenantId,
      // The admin is the first account of the first authority.
      ...(index === 0
        ? { count: options.accountsPerTenant - 1, first: 1 }
        : { count: options.accountsPerTenant }),
    })),
    admin.account,
  );
  const seedSeconds = Math.round((performance.now() - started) / 100) / 10;

  // People of authorities spread over the population, one after another.
  const client = await createClient(test);
  const person = (run: number): TestAccount => ({
    account: admin.account,
    tenantId: tenantIds[(run * 7919) % tenantIds.length]!,
    username: seededUsername((run % (options.accountsPerTenant - 1)) + 1),
    password: admin.password,
  });
  let run = 0;
  await signIn(client, person(run));
  const signInLatency = await timeSeries(options.runs, () => signIn(client, person((run += 1))));

  const { browser } = await signInToConsole(test, admin);
  await consolePage(test, browser, '/admin/accounts');
  const adminList = await timeSeries(options.runs, () =>
    consolePage(test, browser, '/admin/accounts'),
  );
  return {
    tenants: options.tenants,
    accountsPerTenant: options.accountsPerTenant,
    seedSeconds,
    signIn: signInLatency,
    adminList,
  };
}
