/**
 * The OpenID Foundation RP-initiated logout plan (oidcc-rp-initiated-logout-*, OpenID
 * Connect RP-Initiated Logout 1.0): the relying party sends the browser to the end-session
 * endpoint, and the provider redirects back only to a registered post-logout URI.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, asRedirect, authorizationRequest, Browser, text } from '../support/browser.ts';
import { callbackError, signIn } from '../support/conformance.ts';
import {
  createAccount,
  startWithClient,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let person: TestAccount;

beforeAll(async () => {
  let tenantId: string;
  ({ test, client, tenantId } = await startWithClient());
  person = await createAccount(test, tenantId);
});
afterAll(() => test.close());

/** Confirms the logout question of the end-session page, as the person would. */
async function confirmLogout(browser: Browser, url: URL, stopAt?: string) {
  const question = asPage(await browser.visit(url.href, undefined, {}, 'cross-site'));
  expect(question.status).toBe(200);
  expect(question.document.querySelector('button[name=logout]')).not.toBeNull();
  return browser.submit(question, { logout: 'yes' }, stopAt);
}

/** prompt=none tells whether the browser still holds a session. */
async function hasSession(browser: Browser) {
  const authorization = await authorizationRequest(client, { prompt: 'none' });
  const callback = asRedirect(await browser.visit(authorization.url.href, client.redirectUri));
  return callback.searchParams.has('code');
}

/** The answer of the end-session endpoint to `params`, without following redirects. */
async function endSessionAnswer(browser: Browser, params: Record<string, string>) {
  const url = oidc.buildEndSessionUrl(client.config, params);
  const response = await browser.request(url.href);
  return { response, html: await response.text() };
}

describe('RP-initiated logout', () => {
  it('ends the session and redirects to the registered URI with the state (oidcc-rp-initiated-logout)', async () => {
    const { browser, tokens } = await signIn(client, person);
    expect(await hasSession(browser)).toBe(true);

    const back = asRedirect(
      await confirmLogout(
        browser,
        oidc.buildEndSessionUrl(client.config, {
          id_token_hint: tokens.id_token!,
          post_logout_redirect_uri: client.postLogoutRedirectUri,
          state: 'logout-state-1',
        }),
        client.postLogoutRedirectUri,
      ),
    );

    expect(back.origin + back.pathname).toBe(client.postLogoutRedirectUri);
    expect(back.searchParams.get('state')).toBe('logout-state-1');
    expect(await hasSession(browser)).toBe(false);
  });

  it('redirects without state when none was sent (oidcc-rp-initiated-logout-no-state)', async () => {
    const { browser, tokens } = await signIn(client, person);

    const back = asRedirect(
      await confirmLogout(
        browser,
        oidc.buildEndSessionUrl(client.config, {
          id_token_hint: tokens.id_token!,
          post_logout_redirect_uri: client.postLogoutRedirectUri,
        }),
        client.postLogoutRedirectUri,
      ),
    );

    expect(back.href).toBe(client.postLogoutRedirectUri);
  });

  it('accepts client_id instead of id_token_hint (oidcc-rp-initiated-logout-no-id-token-hint)', async () => {
    const { browser } = await signIn(client, person);

    const back = asRedirect(
      await confirmLogout(
        browser,
        oidc.buildEndSessionUrl(client.config, {
          client_id: client.clientId,
          post_logout_redirect_uri: client.postLogoutRedirectUri,
          state: 'logout-state-2',
        }),
        client.postLogoutRedirectUri,
      ),
    );

    expect(back.searchParams.get('state')).toBe('logout-state-2');
    expect(await hasSession(browser)).toBe(false);
  });

  it.each([
    ['an unregistered URI', 'https://evil.example/logged-out'],
    ['the registered URI with a query added', 'https://rp.example.test/logged-out?x=1'],
  ])(
    'refuses %s as post_logout_redirect_uri with an error page and no redirect',
    async (_name, uri) => {
      const { browser, tokens } = await signIn(client, person);

      const { response, html } = await endSessionAnswer(browser, {
        id_token_hint: tokens.id_token!,
        post_logout_redirect_uri: uri,
        state: 'logout-state-3',
      });

      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(html).not.toContain('logout-state-3');
      expect(await hasSession(browser)).toBe(true);
    },
  );

  it('refuses an id_token_hint whose signature was altered (oidcc-rp-initiated-logout-modified-id-token-hint)', async () => {
    const { browser, tokens } = await signIn(client, person);
    const [header, payload, signature] = tokens.id_token!.split('.');
    const altered = `${header}.${payload}.${signature!.slice(0, -4)}AAAA`;

    const { response } = await endSessionAnswer(browser, {
      id_token_hint: altered,
      post_logout_redirect_uri: client.postLogoutRedirectUri,
    });

    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await hasSession(browser)).toBe(true);
  });

  it('ends the session on a request without parameters and shows the logged-out page (oidcc-rp-initiated-logout-no-params)', async () => {
    const { browser } = await signIn(client, person);

    const done = asPage(
      await confirmLogout(browser, new URL(client.config.serverMetadata().end_session_endpoint!)),
    );

    expect(done.status).toBe(200);
    expect(text(done)).not.toBe('');
    expect(await hasSession(browser)).toBe(false);
  });

  it('does not redirect for state alone (oidcc-rp-initiated-logout-only-state)', async () => {
    const { browser } = await signIn(client, person);

    const done = await confirmLogout(
      browser,
      oidc.buildEndSessionUrl(client.config, { state: 'logout-state-4' }),
      client.postLogoutRedirectUri,
    );

    expect(done).not.toBeInstanceOf(URL);
    expect(asPage(done).html).not.toContain('logout-state-4');
  });

  it('keeps the session when the person declines the logout', async () => {
    const { browser, tokens } = await signIn(client, person);
    const url = oidc.buildEndSessionUrl(client.config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: client.postLogoutRedirectUri,
    });
    const question = asPage(await browser.visit(url.href, undefined, {}, 'cross-site'));

    await browser.submit(question, {}, client.postLogoutRedirectUri);

    expect(await hasSession(browser)).toBe(true);
  });

  it('skips the question for a browser without a session and still redirects with the state', async () => {
    const { tokens } = await signIn(client, person);
    const browser = new Browser();
    const url = oidc.buildEndSessionUrl(client.config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: client.postLogoutRedirectUri,
      state: 'logout-state-5',
    });

    // Nothing to end: the library answers with a form that its script submits at once; the
    // script is allowed by its hash in the Content-Security-Policy.
    const response = await browser.request(url.href);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    const scriptSrc = csp.split(';').find((directive) => directive.trim().startsWith('script-src'));
    expect(scriptSrc).toMatch(/'sha256-[A-Za-z0-9+/=]+'/);
    const autoSubmit = asPage(await browser.visit(url.href));
    expect(autoSubmit.document.querySelector('input[name=logout]')?.getAttribute('value')).toBe(
      'yes',
    );
    const back = asRedirect(await browser.submit(autoSubmit, {}, client.postLogoutRedirectUri));

    expect(back.origin + back.pathname).toBe(client.postLogoutRedirectUri);
    expect(callbackError(back).state).toBe('logout-state-5');
  });
});
