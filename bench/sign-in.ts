/**
 * Full sign-ins through HTTP, as a browser and a relying party do them: the authorization
 * request, the sign-in form, the redirect with the code and the code exchange at the token
 * endpoint. Every worker signs in its own account, because the checks of one account run
 * one after the other (its lease), which is not what many people signing in look like.
 */
import { asRedirect, Browser, exchange } from '../test/support/browser.ts';
import { credentials, openSignIn, signInForTokens } from '../test/support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../test/support/server.ts';
import { loadLoop, withCost, type Cost, type Throughput } from './stats.ts';

export type SignInThroughput = Throughput & { cost: Cost };

/** One complete sign-in of `person` in a fresh browser; throws unless it yields tokens. */
export async function signIn(client: TestClient, person: TestAccount) {
  const { tokens } = await signInForTokens(client, person, {}, new Browser());
  if (!tokens.access_token) throw new Error('the sign-in yielded no access token');
}

/** Sign-ins per second at each of `concurrencies`, each for `seconds`. */
export async function benchSignIns(
  test: TestServer,
  databasePid: number,
  options: { concurrencies: readonly number[]; seconds: number },
): Promise<SignInThroughput[]> {
  const client = await createClient(test);
  const tenantId = (await createTenant(test)).id;
  const people: TestAccount[] = [];
  for (let index = 0; index < Math.max(...options.concurrencies); index += 1)
    people.push(await createAccount(test, tenantId));
  await signIn(client, people[0]!);

  const results: SignInThroughput[] = [];
  for (const concurrency of options.concurrencies) {
    results.push(
      await withCost(databasePid, () =>
        loadLoop({ concurrency, seconds: options.seconds }, (worker) =>
          signIn(client, people[worker]!),
        ),
      ),
    );
  }
  return results;
}

/** Signs `person` in with `offline_access` and returns the tokens the relying party gets. */
export async function signInOffline(client: TestClient, person: TestAccount) {
  const { authorization, login, browser } = await openSignIn(client, {
    scope: 'openid profile offline_access',
  });
  const callback = asRedirect(await browser.submit(login, credentials(person), client.redirectUri));
  const tokens = await exchange(client, authorization, callback);
  if (!tokens.refresh_token) throw new Error('the sign-in yielded no refresh token');
  return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
}
