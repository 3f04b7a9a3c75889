/**
 * Redirect URIs are compared exactly (RFC 6749 §3.1.2.3, OAuth 2.0 Security BCP §4.1.3): a
 * variant of the registered URI is refused with a German error page and never redirected
 * to, since a redirect would hand the error, and later codes, to whoever owns the variant.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'node-html-parser';

import { authorizationRequest, Browser } from '../support/browser.ts';
import { messages } from '../support/flows.ts';
import {
  createClient,
  startTestServer,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;

beforeAll(async () => {
  test = await startTestServer();
  client = await createClient(test);
});
afterAll(() => test.close());

const variants = [
  ['a dot-dot segment', 'https://rp.example.test/cb/../x'],
  ['a dot-dot segment with a matrix parameter', 'https://rp.example.test/cb/..;/x'],
  ['an upper-case host', 'https://RP.EXAMPLE.TEST/cb'],
  ['an added query', 'https://rp.example.test/cb?a=b'],
  ['an encoded slash before user info', 'https://rp.example.test%2F@evil.example/cb'],
  ['the registered host as user info', 'https://rp.example.test@evil.example/cb'],
  ['a fragment', 'https://rp.example.test/cb#x'],
  ['a trailing slash', 'https://rp.example.test/cb/'],
  ['plain http', 'http://rp.example.test/cb'],
  ['an explicit default port', 'https://rp.example.test:443/cb'],
] as const;

describe('redirect_uri', () => {
  it.each(variants)(
    'refuses %s (%s) with an error page and no redirect',
    async (_name, redirectUri) => {
      const authorization = await authorizationRequest(client, { redirect_uri: redirectUri });
      expect(authorization.url.searchParams.get('redirect_uri')).toBe(redirectUri);

      const response = await new Browser().request(authorization.url.href);
      const html = await response.text();

      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      const main = parse(html).querySelector('main')?.textContent.replace(/\s+/g, ' ') ?? '';
      expect(main).toContain(messages.invalidRedirectUri);
      expect(html).not.toContain('evil.example');
    },
  );

  it.each([
    ['an unsupported response type', { response_type: 'token' }],
    ['a plain PKCE challenge', { code_challenge_method: 'plain' }],
    ['an unknown scope only', { scope: 'evil' }],
  ])('refuses a variant together with %s without redirecting the error', async (_name, params) => {
    const authorization = await authorizationRequest(client, {
      redirect_uri: 'https://rp.example.test@evil.example/cb',
      ...params,
    });

    const response = await new Browser().request(authorization.url.href);

    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.text()).not.toContain('evil.example');
  });

  it('accepts the registered redirect URI as it stands', async () => {
    const authorization = await authorizationRequest(client);

    const response = await new Browser().request(authorization.url.href);

    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toMatch(/^\/interaction\//);
  });
});
