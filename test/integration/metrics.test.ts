import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, rawRequest } from '../support/browser.ts';
import { credentials, messages, openSignIn, signInForTokens } from '../support/flows.ts';
import { sample, scrape } from '../support/metrics.ts';
import {
  createAccount,
  startTestServer,
  startWithClient,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

describe('metrics', () => {
  let test: TestServer;
  let client: TestClient;
  let tenantId: string;

  beforeAll(async () => {
    ({ test, client, tenantId } = await startWithClient());
  });

  afterAll(async () => {
    await test?.close();
  });

  it('counts sign-in outcomes by reason, tokens by grant type and password changes', async () => {
    const person = await createAccount(test, tenantId);
    const { login, browser } = await openSignIn(client);
    const refused = asPage(await browser.submit(login, credentials(person, 'Falsch-123!')));
    expect(refused.html).toContain(messages.loginFailed);
    const { tokens } = await signInForTokens(client, person, {
      scope: 'openid offline_access',
    });
    await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);

    const text = await scrape(test);
    expect(sample(text, 'flueag_sign_ins_total', { outcome: 'success', reason: 'none' })).toBe(1);
    expect(
      sample(text, 'flueag_sign_ins_total', { outcome: 'failure', reason: 'wrong_password' }),
    ).toBe(1);
    expect(sample(text, 'flueag_tokens_issued_total', { grant_type: 'authorization_code' })).toBe(
      1,
    );
    expect(sample(text, 'flueag_tokens_issued_total', { grant_type: 'refresh_token' })).toBe(1);
    // createAccount sets a password of the account's own, as the first sign-in does.
    expect(sample(text, 'flueag_password_changes_total', { kind: 'changed' })).toBe(1);
  });

  it('counts a lock once, and the attempts on the locked account as locked', async () => {
    const person = await createAccount(test, tenantId);
    const { login, browser } = await openSignIn(client);
    for (let i = 1; i <= 6; i += 1) {
      await browser.submit(login, credentials(person, `Falsch-${i}!x`));
    }

    const text = await scrape(test);
    expect(sample(text, 'flueag_account_locks_total')).toBe(1);
    expect(sample(text, 'flueag_sign_ins_total', { outcome: 'failure', reason: 'locked' })).toBe(1);
  });

  it('times requests by route name, never by a path with an interaction id in it', async () => {
    const { login } = await openSignIn(client);
    expect(login.status).toBe(200);

    const text = await scrape(test);
    const count = (route: string, status: string) =>
      sample(text, 'flueag_http_request_duration_seconds_count', { method: 'GET', route, status });
    expect(count('authorization', '303')).toBeGreaterThanOrEqual(1);
    expect(count('/interaction/:uid', '200')).toBeGreaterThanOrEqual(1);
    expect(text).not.toMatch(/route="\/interaction\/[A-Za-z0-9_-]{10,}/);
  });

  it('labels every request by a route pattern, a route name or unmatched, whatever its path', async () => {
    for (const odd of ['/interaction/x/y/z', '/admin/nichts', '/%E2%80%AE', '/a/b/c/d', '/.env'])
      await fetch(`${test.issuer}${odd}`, { method: 'POST', redirect: 'manual' });
    // A route of a router mounted inside another, passing path-less middleware on its way.
    await fetch(`${test.issuer}/admin`, { redirect: 'manual' });

    const routes = [
      ...(await scrape(test)).matchAll(
        /^flueag_http_request_duration_seconds_count\{[^}]*route="([^"]*)"/gm,
      ),
    ].map((match) => match[1]!);
    expect(routes.filter((route) => !/^(\/[^()]*|[a-z_]+)$/.test(route))).toEqual([]);
    expect(routes).toContain('unmatched');
    expect(routes).toContain('/admin');
  });

  it('reports the hashing queue depth that the hashing code sets', async () => {
    expect(sample(await scrape(test), 'flueag_password_hashing_queue_depth')).toBe(0);
    test.services.metrics.setHashingQueueDepth(3);
    expect(sample(await scrape(test), 'flueag_password_hashing_queue_depth')).toBe(3);
    test.services.metrics.setHashingQueueDepth(0);
  });

  it('reports no database error while everything works', async () => {
    const text = await scrape(test);
    expect(text).toContain('# TYPE flueag_database_errors_total counter');
    expect(text).not.toMatch(/^flueag_database_errors_total\{/m);
  });

  it('is not served on the public port', async () => {
    const answer = await rawRequest(`${test.issuer}/metrics`, { accept: 'text/plain' });
    expect(answer.status).toBe(404);
    expect(answer.body).not.toContain('flueag_');
  });

  it('listens on loopback by default', () => {
    expect(new URL(test.server.metricsUrl!).hostname).toBe('127.0.0.1');
  });
});

describe('metrics with METRICS_TOKEN', () => {
  const token = 'm'.repeat(40);
  let test: TestServer;

  beforeAll(async () => {
    test = await startTestServer({ METRICS_TOKEN: token });
  });

  afterAll(async () => {
    await test?.close();
  });

  it('answers 401 without the bearer token and the metrics with it', async () => {
    const url = test.server.metricsUrl!;
    expect((await fetch(url)).status).toBe(401);
    expect(
      (await fetch(url, { headers: { authorization: `Bearer ${'x'.repeat(40)}` } })).status,
    ).toBe(401);
    expect(await scrape(test, token)).toContain('flueag_sign_ins_total');
  });
});

describe('METRICS_PORT=off', () => {
  it('starts no metrics listener', async () => {
    const test = await startTestServer({ METRICS_PORT: 'off' });
    try {
      expect(test.server.metricsUrl).toBeUndefined();
      expect((await fetch(`${test.issuer}/healthz`)).status).toBe(200);
    } finally {
      await test.close();
    }
  });
});
