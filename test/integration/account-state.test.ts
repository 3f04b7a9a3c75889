/**
 * Account states (design 2): deactivated and retired accounts cannot sign in and lose what
 * they hold at once; a session of such an account leads back to the sign-in form; a
 * reactivated account signs in again.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, asRedirect, authorizationRequest, exchange, text } from '../support/browser.ts';
import {
  auditEvents,
  credentials,
  messages,
  openSignIn,
  signInForTokens,
  storedAccount,
  updateAccount,
} from '../support/flows.ts';
import {
  createAccount,
  startWithClient,
  system,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let tenantId: string;

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
});
afterAll(() => test.close());

const offline = { scope: 'openid profile offline_access' };

describe.each([
  ['deactivated', messages.deactivated],
  ['retired', messages.retired],
] as const)('a %s account', (state, message) => {
  it('is told so after the correct password and cannot sign in', async () => {
    const person = await createAccount(test, tenantId);
    await test.services.accounts.setState(person.account._id, state, system);
    const { browser, login } = await openSignIn(client);

    const refused = asPage(await browser.submit(login, credentials(person), client.redirectUri));

    expect(refused.status).toBe(403);
    expect(text(refused)).toContain(message);
    expect(refused.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
    const logins = await auditEvents(test, {
      action: 'login',
      'target.accountId': person.account._id,
    });
    expect(logins.map((event) => [event.outcome, event.reason])).toEqual([['failure', state]]);
  });

  it('is answered like any wrong password after a wrong password', async () => {
    const person = await createAccount(test, tenantId);
    await test.services.accounts.setState(person.account._id, state, system);
    const { browser, login } = await openSignIn(client);

    const refused = asPage(
      await browser.submit(login, credentials(person, 'Falsch-123!'), client.redirectUri),
    );

    expect(refused.status).toBe(401);
    expect(text(refused)).toContain(messages.loginFailed);
    expect(text(refused)).not.toContain(message);
  });

  it('loses its refresh token and its access token at once', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person, offline);

    await test.services.accounts.setState(person.account._id, state, system);

    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await oidc.tokenIntrospection(client.config, tokens.refresh_token!)).toMatchObject({
      active: false,
    });
    expect(await oidc.tokenIntrospection(client.config, tokens.access_token)).toMatchObject({
      active: false,
    });
  });

  it('leads a browser with a session of it back to the sign-in form, never to an error page', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await test.services.accounts.setState(person.account._id, state, system);

    const again = await authorizationRequest(client);
    const page = asPage(await browser.visit(again.url.href, client.redirectUri));

    expect(page.status).toBe(200);
    expect(page.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
  });

  it('tells the person of such a browser that the session has ended', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await test.services.accounts.setState(person.account._id, state, system);

    const again = await authorizationRequest(client);
    const page = asPage(await browser.visit(again.url.href, client.redirectUri));

    expect(page.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
    expect(page.document.querySelector('.notice')?.textContent).toBe(messages.sessionEnded);
  });
});

describe('a session whose account stopped being active', () => {
  it('leads back to the sign-in form when the session outlived the state change', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    // The state changed without the sessions being ended (another instance, a manual repair).
    await updateAccount(test, person.account._id, { state: 'deactivated' });

    const again = await authorizationRequest(client);
    const page = asPage(await browser.visit(again.url.href, client.redirectUri));

    expect(page.status).toBe(200);
    expect(page.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
    expect(page.document.querySelector('.notice')?.textContent).toBe(messages.sessionEnded);
  });

  it('lets another person sign in from the form it leads to', async () => {
    const person = await createAccount(test, tenantId);
    const colleague = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await updateAccount(test, person.account._id, { state: 'deactivated' });

    const { authorization, login } = await openSignIn(client, {}, browser);
    const submitted = await browser.submit(login, credentials(colleague), client.redirectUri);
    // The library first ends the other account's session with a self-submitting form,
    // which a real browser posts at once.
    const callback = asRedirect(
      submitted instanceof URL
        ? submitted
        : await browser.submit(submitted, {}, client.redirectUri),
    );
    const tokens = await exchange(client, authorization, callback);

    expect(tokens.claims()?.sub).toBe(colleague.account._id);
  });

  it('answers prompt=none with login_required, never with a server error', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await updateAccount(test, person.account._id, { state: 'deactivated' });

    const silent = await authorizationRequest(client, { prompt: 'none' });
    const callback = asRedirect(await browser.visit(silent.url.href, client.redirectUri));

    expect(callback.searchParams.get('error')).toBe('login_required');
    expect(callback.searchParams.has('code')).toBe(false);
  });
});

describe('reactivation', () => {
  it('lets the same person sign in again', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await test.services.accounts.setState(person.account._id, 'deactivated', system);

    await test.services.accounts.setState(person.account._id, 'active', system);

    const { authorization, login } = await openSignIn(client, {}, browser);
    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );
    expect(callback.searchParams.get('state')).toBe(authorization.state);
    const tokens = await oidc.authorizationCodeGrant(client.config, callback, {
      pkceCodeVerifier: authorization.verifier,
      expectedState: authorization.state,
    });
    expect(tokens.claims()?.sub).toBe(person.account._id);
    expect((await storedAccount(test, person.account._id)).state).toBe('active');
    const actions = (
      await auditEvents(test, { 'target.accountId': person.account._id, action: /^account\./ })
    ).map((event) => event.action);
    expect(actions).toEqual(['account.created', 'account.deactivated', 'account.reactivated']);
  });

  it('is refused for a retired account, whose username stays reserved', async () => {
    const person = await createAccount(test, tenantId);
    await test.services.accounts.setState(person.account._id, 'retired', system);

    await expect(
      test.services.accounts.setState(person.account._id, 'active', system),
    ).rejects.toMatchObject({ code: 'account.retired' });
    await expect(
      test.services.accounts.create(
        {
          tenantId,
          username: person.username,
          givenName: 'Max',
          familyName: 'Muster',
          permissions: [],
          roles: [],
        },
        system,
      ),
    ).rejects.toMatchObject({ code: 'username.taken' });
  });
});
