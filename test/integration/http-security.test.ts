/**
 * What a browser gets besides the page: cookie attributes and HSTS behind the TLS proxy,
 * the Content-Security-Policy and framing rules, and no caching of anything that holds a
 * secret. The server runs as in production: an https issuer behind a proxy it trusts
 * (TRUST_PROXY=1), which adds X-Forwarded-Proto.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { parse } from 'node-html-parser';

import { asPage, asRedirect, Browser, rawRequest } from '../support/browser.ts';
import { signInToConsole } from '../support/console.ts';
import { credentials, formOf } from '../support/flows.ts';
import {
  createAccount,
  createTenant,
  startTestServer,
  system,
  type TestAccount,
  type TestServer,
} from '../support/server.ts';
import { startTlsProxy, type TlsProxy } from '../support/tls-proxy.ts';

let proxy: TlsProxy;
let test: TestServer;
let plain: TestServer;
let tenantId: string;
const client = {
  clientId: 'tls-rp',
  redirectUri: 'https://rp.example.test/cb',
  secret: '',
};

beforeAll(async () => {
  proxy = await startTlsProxy();
  test = await startTestServer({ ISSUER: proxy.issuer, TRUST_PROXY: '1' });
  proxy.target = test.server.url;
  plain = await startTestServer();
  tenantId = (await createTenant(test)).id;
  const { clientSecret } = await test.services.clients.add(
    { clientId: client.clientId, redirectUris: [client.redirectUri] },
    system,
  );
  client.secret = clientSecret!;
});
afterAll(async () => {
  await plain?.close();
  await test?.close();
  await proxy?.close();
});

/** A browser that reaches the issuer through the proxy, as over TLS. */
const tlsBrowser = () => new Browser({ transport: proxy.transport });

/** An authorization request with PKCE, built as a relying party does. */
async function authorizationUrl(params: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = new URL(`${proxy.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    scope: 'openid profile offline_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: oidc.randomState(),
    ...params,
  }).toString();
  return { url: url.href, verifier };
}

/** Signs `person` in through the proxy and returns the browser, the login page and the code. */
async function signIn(person: TestAccount, browser = tlsBrowser()) {
  const { url, verifier } = await authorizationUrl();
  const login = asPage(await browser.visit(url, undefined, {}, 'cross-site'));
  const callback = asRedirect(await browser.submit(login, credentials(person), client.redirectUri));
  return { browser, login, verifier, code: callback.searchParams.get('code')! };
}

/** The token endpoint's answer to the code, through the proxy. */
async function redeem(code: string, verifier: string) {
  return fetch(`${proxy.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: client.redirectUri,
      code_verifier: verifier,
    }),
  });
}

/** A GET through the proxy, with the headers as the browser gets them. */
const throughProxy = (path: string, browser = tlsBrowser()) =>
  browser.request(`${proxy.issuer}${path}`);

/** The attributes of a Set-Cookie header, lower-cased: name, secure, httponly, samesite. */
function attributesOf(header: string) {
  const [pair, ...attributes] = header.split(';').map((part) => part.trim());
  const lower = attributes.map((attribute) => attribute.toLowerCase());
  return {
    name: pair!.split('=')[0]!,
    secure: lower.includes('secure'),
    httpOnly: lower.includes('httponly'),
    sameSite: lower.find((attribute) => attribute.startsWith('samesite='))?.slice(9) ?? null,
  };
}

describe('cookies behind the TLS proxy', () => {
  it('marks every cookie of the sign-in and the console Secure, HttpOnly and SameSite=Lax', async () => {
    const person = await createAccount(test, tenantId);
    const browser = tlsBrowser();
    await signIn(person, browser);
    await signInToConsole(test, person, '/account', browser);

    const cookies = browser.setCookies.map(attributesOf);
    expect(new Set(cookies.map((cookie) => cookie.name))).toEqual(
      new Set([
        '_interaction',
        '_interaction.sig',
        '_interaction_resume',
        '_interaction_resume.sig',
        '_session',
        '_session.sig',
        'flueag.csrf',
        'flueag.csrf.sig',
        'flueag.tenant',
        'flueag.console',
        'flueag.console.sig',
        'flueag.console_login',
        'flueag.console_login.sig',
      ]),
    );
    for (const cookie of cookies) {
      expect(cookie).toEqual({
        name: cookie.name,
        secure: true,
        httpOnly: true,
        sameSite: 'lax',
      });
    }
  });

  it('sets no Secure cookie when the request did not come over TLS', async () => {
    const person = await createAccount(plain, (await createTenant(plain)).id);
    const browser = new Browser();
    await signInToConsole(plain, person, '/account', browser);

    const cookies = browser.setCookies.map(attributesOf);
    expect(cookies.length).toBeGreaterThan(4);
    expect(cookies.filter((cookie) => cookie.secure)).toEqual([]);
  });
});

describe('Strict-Transport-Security', () => {
  it('is sent for requests that reached the proxy over TLS', async () => {
    for (const path of ['/healthz', '/.well-known/openid-configuration', '/interaction/x'])
      expect((await throughProxy(path)).headers.get('strict-transport-security')).toBe(
        'max-age=31536000; includeSubDomains',
      );
  });

  it('is not sent over plain HTTP, nor for an X-Forwarded-Proto from a proxy it does not trust', async () => {
    const direct = await rawRequest(`${test.server.url}/healthz`);
    const forged = await fetch(`${plain.issuer}/healthz`, {
      headers: { 'x-forwarded-proto': 'https' },
    });

    expect(direct.status).toBe(200);
    expect(direct.headers['strict-transport-security']).toBeUndefined();
    expect(forged.status).toBe(200);
    expect(forged.headers.get('strict-transport-security')).toBeNull();
  });
});

describe('Content-Security-Policy and framing', () => {
  /** The directives of a response's policy, by name. */
  const directives = (response: Response) =>
    Object.fromEntries(
      (response.headers.get('content-security-policy') ?? '')
        .split(';')
        .map((directive) => directive.trim().split(/\s+/))
        .filter((parts) => parts[0])
        .map(([name, ...values]) => [name, values]),
    ) as Record<string, string[]>;

  it('allows scripts only from the site itself, no inline script and no framing, on every page', async () => {
    const person = await createAccount(test, tenantId);
    const browser = tlsBrowser();
    const { url } = await authorizationUrl();
    const loginResponse = await browser.request(
      new URL((await browser.request(url)).headers.get('location')!, proxy.issuer).href,
    );
    const loginHtml = await loginResponse.text();
    await signInToConsole(test, person, '/account', browser);
    const pages = [
      { response: loginResponse, html: loginHtml },
      ...(await Promise.all(
        ['/account', '/account/password', '/no-such-page', '/.well-known/openid-configuration'].map(
          async (path) => {
            const response = await throughProxy(path, browser);
            return { response, html: await response.text() };
          },
        ),
      )),
    ];

    for (const { response, html } of pages) {
      const policy = directives(response);
      expect(policy['script-src']).toEqual(["'self'"]);
      expect(policy['default-src']).toEqual(["'none'"]);
      expect(policy['frame-ancestors']).toEqual(["'none'"]);
      expect(policy['object-src']).toEqual(["'none'"]);
      expect(policy['base-uri']).toEqual(["'none'"]);
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const inline = [...html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>/g)].map((match) => match[0]);
      expect({ url: response.url, inline }).toEqual({ url: response.url, inline: [] });
    }
  });
});

describe('Cache-Control', () => {
  const noStore = (response: Response) => response.headers.get('cache-control');

  /** Follows redirects from `response` and returns the final answer with its page. */
  async function follow(browser: Browser, response: Response, from: string) {
    let [answer, url] = [response, from];
    while (answer.status >= 300 && answer.status < 400) {
      url = new URL(answer.headers.get('location')!, url).href;
      answer = await browser.request(url);
    }
    const html = await answer.text();
    return { response: answer, page: { url, status: answer.status, html, document: parse(html) } };
  }

  it('forbids caching the sign-in page, the password page of a new account and the token response', async () => {
    const person = await createAccount(test, tenantId, {}, { initial: true });
    const browser = tlsBrowser();
    const { url, verifier } = await authorizationUrl();
    const login = await follow(browser, await browser.request(url), url);
    const { action, hidden } = formOf(login.page);
    const posted = await browser.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...hidden, ...credentials(person) }),
    });
    const change = await follow(browser, posted, action);
    expect(change.page.document.querySelector('#new_password')).not.toBeNull();
    const callback = asRedirect(
      await browser.submit(
        change.page,
        { new_password: 'Neues-Kennwort-7!', new_password_confirm: 'Neues-Kennwort-7!' },
        client.redirectUri,
      ),
    );
    const tokens = await redeem(callback.searchParams.get('code')!, verifier);

    expect(noStore(login.response)).toBe('no-store');
    expect(noStore(change.response)).toBe('no-store');
    expect(tokens.status).toBe(200);
    expect(noStore(tokens)).toBe('no-store');
    expect(((await tokens.json()) as { refresh_token?: string }).refresh_token).toEqual(
      expect.any(String),
    );
  });

  it('forbids caching the page that shows a new one-time password', async () => {
    const admin = await createAccount(test, tenantId, { roles: ['local_admin'] });
    await createAccount(test, tenantId, { roles: ['local_admin'] });
    const browser = tlsBrowser();
    await signInToConsole(test, admin, '/admin', browser);
    const form = asPage(await browser.visit(`${proxy.issuer}/admin/accounts/new`));
    const { action, hidden } = formOf(form, 'main form');

    const created = await browser.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        ...hidden,
        username: 'neu.einmal',
        given_name: 'Nora',
        family_name: 'Neumann',
      }),
    });

    expect(created.status).toBe(200);
    expect(await created.text()).toContain('id="one-time-password"');
    expect(noStore(created)).toBe('no-store');
  });
});
