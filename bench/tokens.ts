/**
 * The token endpoints a relying party and its API call after the sign-in: refresh-token
 * grants, introspection and userinfo. Introspection and userinfo ask the same question
 * again and again, which autocannon does; a refresh token rotates at every use, so each
 * refresh worker carries its own chain of tokens in a loop of its own.
 */
import autocannon from 'autocannon';

import {
  createAccount,
  createClient,
  createTenant,
  type TestServer,
} from '../test/support/server.ts';
import { signInOffline } from './sign-in.ts';
import {
  latencyOf,
  loadLoop,
  withCost,
  type Cost,
  type Latency,
  type Throughput,
} from './stats.ts';

export type Measured = Throughput & { cost: Cost };

/** Where and how a confidential client refreshes. */
export interface RefreshTarget {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
}

const basic = (clientId: string, clientSecret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;

/** One refresh-token grant; returns the rotated refresh token. */
async function refresh(target: RefreshTarget, refreshToken: string): Promise<string> {
  const response = await fetch(target.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: basic(target.clientId, target.clientSecret),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  const body = (await response.json()) as { refresh_token?: string; error?: string };
  if (response.status !== 200 || !body.refresh_token)
    throw new Error(`refresh answered ${response.status} ${body.error ?? ''}`);
  return body.refresh_token;
}

/** Refresh grants per second, one chain of rotating refresh tokens per worker. */
export async function benchRefresh(
  target: RefreshTarget,
  databasePid: number,
  chains: string[],
  seconds: number,
): Promise<Measured> {
  const tokens = [...chains];
  return withCost(databasePid, () =>
    loadLoop({ concurrency: tokens.length, seconds }, async (worker) => {
      tokens[worker] = await refresh(target, tokens[worker]!);
    }),
  );
}

/** Runs autocannon against one request and fails unless every answer was a 200. */
async function cannon(
  databasePid: number,
  options: { url: string; method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
  connections: number,
  seconds: number,
): Promise<Measured> {
  return withCost(databasePid, async () => {
    const result = await autocannon({ ...options, connections, duration: seconds });
    if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0)
      throw new Error(
        `${options.url}: ${result.non2xx} answers other than 2xx, ${result.errors} errors`,
      );
    const latency: Latency = {
      ...latencyOf([]),
      runs: result.requests.total,
      p50: result.latency.p50,
      p95: result.latency.p97_5,
      p99: result.latency.p99,
      max: result.latency.max,
    };
    return {
      concurrency: connections,
      ops: result.requests.total,
      seconds: result.duration,
      perSecond: Math.round((result.requests.total / result.duration) * 10) / 10,
      latency,
    };
  });
}

/** Fails unless introspection calls `token` active: autocannon sees only the status. */
async function expectActive(endpoint: string, clientId: string, secret: string, token: string) {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      authorization: basic(clientId, secret),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  const body = (await response.json()) as { active?: boolean };
  if (body.active !== true) throw new Error('introspection calls the access token inactive');
}

export interface TokenEndpoints {
  refresh: Measured;
  introspection: Measured;
  userinfo: Measured;
}

/** Refresh, introspection and userinfo at `concurrency` on the flueag-idp server. */
export async function benchTokenEndpoints(
  test: TestServer,
  databasePid: number,
  options: { concurrency: number; seconds: number },
): Promise<TokenEndpoints> {
  const client = await createClient(test);
  const tenantId = (await createTenant(test)).id;
  const chains: string[] = [];
  let accessToken = '';
  for (let index = 0; index < options.concurrency; index += 1) {
    const tokens = await signInOffline(client, await createAccount(test, tenantId));
    chains.push(tokens.refreshToken);
    accessToken = tokens.accessToken;
  }
  const metadata = client.config.serverMetadata();
  const target = {
    tokenEndpoint: metadata.token_endpoint!,
    clientId: client.clientId,
    clientSecret: client.clientSecret!,
  };

  await expectActive(
    metadata.introspection_endpoint!,
    client.clientId,
    client.clientSecret!,
    accessToken,
  );
  const refreshed = await benchRefresh(target, databasePid, chains, options.seconds);
  const introspection = await cannon(
    databasePid,
    {
      url: metadata.introspection_endpoint!,
      method: 'POST',
      headers: {
        authorization: basic(client.clientId, client.clientSecret!),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: accessToken }).toString(),
    },
    options.concurrency,
    options.seconds,
  );
  const userinfo = await cannon(
    databasePid,
    {
      url: metadata.userinfo_endpoint!,
      method: 'GET',
      headers: { authorization: `Bearer ${accessToken}` },
    },
    options.concurrency,
    options.seconds,
  );
  return { refresh: refreshed, introspection, userinfo };
}
