/**
 * A browser without a browser: fetch with a cookie jar and manual redirects, which fills in
 * and submits the real HTML forms of the interaction pages.
 */
import http from 'node:http';

import { parse, type HTMLElement } from 'node-html-parser';
import * as oidc from 'openid-client';
import { CookieJar } from 'tough-cookie';

import type { TestClient } from './server.ts';

export interface Page {
  url: string;
  status: number;
  html: string;
  document: HTMLElement;
}

/**
 * Which cookies a request carries (RFC 6265bis): `same-site` sends them all, `cross-site` (a
 * top-level navigation from the relying party's site, and its redirects) omits SameSite=Strict.
 */
export type Site = 'same-site' | 'cross-site';

export class Browser {
  readonly jar = new CookieJar();
  /** Every Set-Cookie header the browser received, in order. */
  readonly setCookies: string[] = [];
  readonly #transport: (url: string) => string;

  /**
   * `transport` maps the URL of a request to the one fetched, e.g. an https URL to the
   * plain-http address of a TLS proxy stand-in; cookies follow the URL as the page has it.
   */
  constructor(options: { transport?: (url: string) => string } = {}) {
    this.#transport = options.transport ?? ((url) => url);
  }

  /** One request; cookies are sent and stored, redirects are not followed. */
  async request(url: string, init: RequestInit = {}, site: Site = 'same-site'): Promise<Response> {
    const headers = new Headers(init.headers);
    const sameSiteContext = site === 'same-site' ? 'strict' : 'lax';
    headers.set('cookie', await this.jar.getCookieString(url, { sameSiteContext }));
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const response = await fetch(this.#transport(url), { ...init, headers, redirect: 'manual' });
    for (const cookie of response.headers.getSetCookie()) {
      this.setCookies.push(cookie);
      await this.jar.setCookie(cookie, url, { ignoreError: true });
    }
    return response;
  }

  /**
   * Follows redirects from `url` until a page is reached or a redirect leaves for
   * `stopAt` (the relying party's callback, which nobody serves in tests).
   */
  async visit(
    url: string,
    stopAt?: string,
    init?: RequestInit,
    site: Site = 'same-site',
  ): Promise<Page | URL> {
    let next = url;
    let response = await this.request(next, init, site);
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops += 1) {
      const location = new URL(response.headers.get('location')!, next).href;
      if (stopAt && location.startsWith(stopAt)) return new URL(location);
      next = location;
      response = await this.request(next, {}, site);
    }
    const html = await response.text();
    return { url: next, status: response.status, html, document: parse(html) };
  }

  /** Submits the first form of `page` (or the one matching `selector`) with `fields`. */
  async submit(
    page: Page,
    fields: Record<string, string>,
    stopAt?: string,
    selector = 'form',
  ): Promise<Page | URL> {
    const form = page.document.querySelector(selector);
    if (!form) throw new Error(`no form on ${page.url}: ${page.html.slice(0, 500)}`);
    const body = new URLSearchParams();
    for (const input of form.querySelectorAll('input[type=hidden]')) {
      body.set(input.getAttribute('name')!, input.getAttribute('value') ?? '');
    }
    for (const [name, value] of Object.entries(fields)) body.set(name, value);
    const action = new URL(form.getAttribute('action') ?? page.url, page.url).href;
    return this.visit(action, stopAt, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
  }
}

export function asPage(result: Page | URL): Page {
  if (result instanceof URL) throw new Error(`expected a page, got a redirect to ${result.href}`);
  return result;
}

export function asRedirect(result: Page | URL): URL {
  if (!(result instanceof URL))
    throw new Error(
      `expected a redirect, got ${result.status} ${result.url}: ${text(result).slice(0, 400)}`,
    );
  return result;
}

/** The visible text of a page, white space folded. */
export function text(page: Page): string {
  return page.document.querySelector('main')?.textContent.replace(/\s+/g, ' ').trim() ?? page.html;
}

export interface Authorization {
  url: URL;
  verifier: string;
  state: string;
}

/** Builds an authorization request with PKCE S256, as a relying party would. */
export async function authorizationRequest(
  client: TestClient,
  params: Record<string, string> = {},
): Promise<Authorization> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(client.config, {
    redirect_uri: client.redirectUri,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { url, verifier, state };
}

/** Exchanges the code of `callback` for tokens. */
export function exchange(
  client: TestClient,
  authorization: Authorization,
  callback: URL,
  parameters?: Record<string, string>,
) {
  return oidc.authorizationCodeGrant(
    client.config,
    callback,
    { pkceCodeVerifier: authorization.verifier, expectedState: authorization.state },
    parameters,
  );
}

/**
 * One plain HTTP request with what fetch does not let a caller choose: a Host header of its
 * own and a source address. Redirects are not followed.
 */
export function rawRequest(
  url: string,
  options: {
    method?: string;
    host?: string;
    accept?: string;
    body?: string;
    localAddress?: string;
  } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const request = http.request(
      target,
      {
        method: options.method ?? 'GET',
        headers: {
          host: options.host ?? target.host,
          accept: options.accept ?? 'text/html',
          ...(options.body === undefined
            ? {}
            : { 'content-type': 'application/x-www-form-urlencoded' }),
        },
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          resolve({ status: response.statusCode!, headers: response.headers, body }),
        );
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}
