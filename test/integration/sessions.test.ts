/**
 * Sign-in sessions as a browser and its relying parties see them: a new session id at every
 * sign-in, the idle and the absolute limit, and the ends that reach every relying party
 * (logout, a password change).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, asRedirect, authorizationRequest, Browser, text } from '../support/browser.ts';
import { authorize, backdateSessions, callbackError, signIn } from '../support/conformance.ts';
import { postForm, signInToConsole } from '../support/console.ts';
import { messages } from '../support/flows.ts';
import {
  createAccount,
  createClient,
  startWithClient,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

const IDLE_SECONDS = 3;

let test: TestServer;
let client: TestClient;
let tenantId: string;
let idle: { test: TestServer; client: TestClient; person: TestAccount };

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
  // A server whose sessions end after three seconds without use.
  const short = await startWithClient({ SESSION_IDLE_SECONDS: String(IDLE_SECONDS) });
  idle = { ...short, person: await createAccount(short.test, short.tenantId) };
});
afterAll(async () => {
  await idle?.test.close();
  await test?.close();
});

/** The session cookie the browser holds for the provider, with its signature. */
async function sessionCookies(browser: Browser, server = test) {
  const cookies = await browser.jar.getCookies(`${server.issuer}/auth`);
  return cookies.filter((cookie) => cookie.key === '_session' || cookie.key === '_session.sig');
}

/** A new browser that holds only the given session cookies. */
async function browserWith(cookies: Awaited<ReturnType<typeof sessionCookies>>) {
  const browser = new Browser();
  for (const cookie of cookies) await browser.jar.setCookie(cookie.clone()!, `${test.issuer}/`);
  return browser;
}

/** The answer to prompt=none for `browser`: a code, or the OAuth error. */
async function silently(browser: Browser, rp = client) {
  const authorization = await authorizationRequest(rp, { prompt: 'none' });
  return callbackError(asRedirect(await browser.visit(authorization.url.href, rp.redirectUri)));
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

describe('session id', () => {
  it('is new at every sign-in: the id the browser held before stops working', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signIn(client, person);
    const first = await sessionCookies(browser);
    expect(first.map((cookie) => cookie.key).sort()).toEqual(['_session', '_session.sig']);

    const again = await authorize(client, person, { prompt: 'login' }, browser);
    expect(again.formShown).toBe(true);

    const second = await sessionCookies(browser);
    const value = (cookies: typeof first) => cookies.find((c) => c.key === '_session')!.value;
    expect(value(second)).not.toBe(value(first));
    expect((await silently(browser)).code).toEqual(expect.any(String));
    expect(await silently(await browserWith(first))).toMatchObject({
      error: 'login_required',
      code: null,
    });
  });

  it('is never one the browser brought: a planted session cookie does not survive the sign-in', async () => {
    // The attacker signs in and out, and plants the cookie of the ended session, with its
    // valid signature, in the victim's browser (session fixation).
    const attacker = await createAccount(test, tenantId);
    const signedIn = await signIn(client, attacker);
    const planted = await sessionCookies(signedIn.browser);
    const logout = oidc.buildEndSessionUrl(client.config, {
      id_token_hint: signedIn.tokens.id_token!,
    });
    const question = asPage(await signedIn.browser.visit(logout.href));
    await signedIn.browser.submit(question, { logout: 'yes' });
    const victim = await browserWith(planted);

    const person = await createAccount(test, tenantId);
    const { formShown } = await authorize(client, person, {}, victim);

    expect(formShown).toBe(true);
    const held = (await sessionCookies(victim)).find((cookie) => cookie.key === '_session');
    const plantedId = planted.find((cookie) => cookie.key === '_session')!.value;
    expect(held?.value).toEqual(expect.any(String));
    expect(held!.value).not.toBe(plantedId);
    expect(
      await test.services.db.collection('oidc_session').findOne({ _id: plantedId as never }),
    ).toBeNull();
    expect(await silently(await browserWith(planted))).toMatchObject({ error: 'login_required' });
  });
});

describe('session limits', () => {
  it(`ends a session ${IDLE_SECONDS} s (SESSION_IDLE_SECONDS) after its last use, not while it is used`, async () => {
    const { browser } = await signIn(idle.client, idle.person);

    await sleep(IDLE_SECONDS - 1.5);
    expect((await silently(browser, idle.client)).code).toEqual(expect.any(String));
    await sleep(IDLE_SECONDS - 1.5);
    // More than the idle limit after the sign-in, but not after the last use.
    expect((await silently(browser, idle.client)).code).toEqual(expect.any(String));
    await sleep(IDLE_SECONDS + 1);

    expect(await silently(browser, idle.client)).toMatchObject({
      error: 'login_required',
      code: null,
    });
    const authorization = await authorizationRequest(idle.client);
    const page = asPage(await browser.visit(authorization.url.href, idle.client.redirectUri));
    expect(page.document.querySelector('#password')).not.toBeNull();
    expect(text(page)).toContain(messages.sessionEnded);
  });

  it('ends a session 8 hours (SESSION_TTL_SECONDS) after the sign-in, however often it is used', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signIn(client, person);
    await backdateSessions(test, person.account._id, 8 * 3600 - 60);
    expect((await silently(browser)).code).toEqual(expect.any(String));

    await backdateSessions(test, person.account._id, 61);

    expect(await silently(browser)).toMatchObject({ error: 'login_required', code: null });
    const authorization = await authorizationRequest(client);
    const page = asPage(await browser.visit(authorization.url.href, client.redirectUri));
    expect(page.document.querySelector('#password')).not.toBeNull();
    expect(text(page)).toContain(messages.sessionEnded);
  });

  it('ends a console session after SESSION_IDLE_SECONDS without a request, not while it is used', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInToConsole(test, person, '/account');
    const idleSeconds = test.services.config.ttl.sessionIdle;
    const signInForm = async () =>
      asPage(await browser.visit(`${test.issuer}/account`)).document.querySelector(
        'form[action$="/login"]',
      );
    try {
      test.clock.offsetMs = (idleSeconds - 60) * 1000;
      expect(await signInForm()).toBeNull();
      test.clock.offsetMs += (idleSeconds - 60) * 1000;
      expect(await signInForm()).toBeNull();

      test.clock.offsetMs += (idleSeconds + 1) * 1000;

      expect(await signInForm()).not.toBeNull();
    } finally {
      test.clock.offsetMs = 0;
    }
  });
});

describe('ending a session for every relying party', () => {
  it('ends the session at logout through one relying party: the other then gets login_required', async () => {
    const other = await createClient(test);
    const person = await createAccount(test, tenantId);
    const { browser, tokens } = await signIn(client, person);
    expect((await silently(browser, other)).code).toEqual(expect.any(String));

    const logout = oidc.buildEndSessionUrl(client.config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: client.postLogoutRedirectUri,
    });
    const question = asPage(await browser.visit(logout.href, undefined, {}, 'cross-site'));
    asRedirect(await browser.submit(question, { logout: 'yes' }, client.postLogoutRedirectUri));

    expect(await silently(browser, other)).toMatchObject({ error: 'login_required', code: null });
    expect(await silently(browser, client)).toMatchObject({ error: 'login_required', code: null });
  });

  it("ends the account's sessions in other browsers when the password is changed, for every relying party", async () => {
    const other = await createClient(test);
    const person = await createAccount(test, tenantId);
    const elsewhere = await signIn(client, person);
    expect((await silently(elsewhere.browser, other)).code).toEqual(expect.any(String));
    const { browser: own } = await signInToConsole(test, person, '/account');
    const form = asPage(await own.visit(`${test.issuer}/account/password`));

    const changed = await postForm(own, form, 'main form', [
      ['current_password', person.password],
      ['new_password', 'Neues-Kennwort-7!'],
      ['new_password_confirm', 'Neues-Kennwort-7!'],
    ]);

    expect(changed.status).toBe(303);
    for (const rp of [client, other])
      expect(await silently(elsewhere.browser, rp)).toMatchObject({ error: 'login_required' });
    expect(asPage(await own.visit(`${test.issuer}/account`)).status).toBe(200);
  });
});
