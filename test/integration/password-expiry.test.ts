/**
 * Password expiry (design 2 and 3.2): a password older than 180 days must be changed before
 * any token is issued, also with a live session; an unused one-time password stops working
 * after 14 days.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, asRedirect, authorizationRequest, exchange, text } from '../support/browser.ts';
import {
  auditEvents,
  credentials,
  DAY,
  messages,
  openSignIn,
  signInForTokens,
  storedAccount,
  updateAccount,
} from '../support/flows.ts';
import {
  createAccount,
  startWithClient,
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

const daysAgo = (days: number) => new Date(Date.now() - days * DAY);
const newPassword = 'Neues-Kennwort-2!';

describe('password expiry', () => {
  it('requires a password set 181 days ago to be changed at sign-in before a code is issued', async () => {
    const person = await createAccount(test, tenantId);
    await updateAccount(test, person.account._id, { 'password.changedAt': daysAgo(181) });
    const { browser, authorization, login } = await openSignIn(client);

    const change = asPage(await browser.submit(login, credentials(person), client.redirectUri));

    expect(change.status).toBe(200);
    expect(change.document.querySelector('h1')?.textContent).toBe(messages.passwordChangeTitle);
    expect(text(change)).toContain(messages.passwordExpired);
    expect(
      await test.services.db
        .collection('oidc_authorization_code')
        .countDocuments({ accountId: person.account._id }),
    ).toBe(0);

    const callback = asRedirect(
      await browser.submit(
        change,
        { new_password: newPassword, new_password_confirm: newPassword },
        client.redirectUri,
      ),
    );
    const tokens = await exchange(client, authorization, callback);
    expect(tokens.claims()?.sub).toBe(person.account._id);
    const stored = await storedAccount(test, person.account._id);
    expect(stored.password.changedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(
      await auditEvents(test, {
        action: 'password.changed',
        'target.accountId': person.account._id,
      }),
    ).toHaveLength(2);
  });

  it('requires the change when the password expires during a live session', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await updateAccount(test, person.account._id, { 'password.changedAt': daysAgo(181) });

    const again = await authorizationRequest(client);
    const change = asPage(await browser.visit(again.url.href, client.redirectUri));

    expect(change.status).toBe(200);
    expect(change.document.querySelector('h1')?.textContent).toBe(messages.passwordChangeTitle);
    expect(text(change)).toContain(messages.passwordExpired);
    expect(change.document.querySelector('form')?.getAttribute('action')).toMatch(/\/password$/);

    const callback = asRedirect(
      await browser.submit(
        change,
        {
          current_password: person.password,
          new_password: newPassword,
          new_password_confirm: newPassword,
        },
        client.redirectUri,
      ),
    );
    const tokens = await exchange(client, again, callback);
    expect(tokens.claims()?.sub).toBe(person.account._id);
  });

  it('does not let a session alone set a new password: the current one must be confirmed', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await updateAccount(test, person.account._id, { 'password.changedAt': daysAgo(181) });
    const before = (await storedAccount(test, person.account._id)).password.hash;

    const again = await authorizationRequest(client);
    const change = asPage(await browser.visit(again.url.href, client.redirectUri));
    expect(change.document.querySelector('#current_password')?.getAttribute('autocomplete')).toBe(
      'current-password',
    );

    const missing = asPage(
      await browser.submit(change, {
        new_password: newPassword,
        new_password_confirm: newPassword,
      }),
    );
    expect(missing.status).toBe(400);
    expect(missing.document.querySelector('#current_password-error')?.textContent).toBe(
      messages.fieldRequired,
    );

    let page = missing;
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      page = asPage(
        await browser.submit(page, {
          current_password: `Geraten-${attempt}!`,
          new_password: newPassword,
          new_password_confirm: newPassword,
        }),
      );
    }
    expect(page.status).toBe(401);
    expect(text(page)).toContain(messages.locked);
    expect((await storedAccount(test, person.account._id)).password.hash).toBe(before);

    const correct = asPage(
      await browser.submit(page, {
        current_password: person.password,
        new_password: newPassword,
        new_password_confirm: newPassword,
      }),
    );
    expect(text(correct)).toContain(messages.locked);
    expect((await storedAccount(test, person.account._id)).password.hash).toBe(before);
  });

  it('stops serving an access token at userinfo and introspection once the password expired', async () => {
    const person = await createAccount(test, tenantId);
    const { tokens } = await signInForTokens(client, person);
    const sub = tokens.claims()!.sub;
    expect(await oidc.tokenIntrospection(client.config, tokens.access_token)).toMatchObject({
      active: true,
    });

    await updateAccount(test, person.account._id, { 'password.changedAt': daysAgo(181) });

    expect(await oidc.tokenIntrospection(client.config, tokens.access_token)).toEqual({
      active: false,
    });
    await expect(oidc.fetchUserInfo(client.config, tokens.access_token, sub)).rejects.toMatchObject(
      { status: 401 },
    );
  });

  it('answers prompt=none with interaction_required when the password expired during the session', async () => {
    const person = await createAccount(test, tenantId);
    const { browser } = await signInForTokens(client, person);
    await updateAccount(test, person.account._id, { 'password.changedAt': daysAgo(181) });

    const silent = await authorizationRequest(client, { prompt: 'none' });
    const callback = asRedirect(await browser.visit(silent.url.href, client.redirectUri));

    expect(callback.origin + callback.pathname).toBe(client.redirectUri);
    expect(callback.searchParams.get('error')).toBe('interaction_required');
    expect(callback.searchParams.get('state')).toBe(silent.state);
    expect(callback.searchParams.has('code')).toBe(false);
  });

  it('signs in normally with a password set 179 days ago', async () => {
    const person = await createAccount(test, tenantId);
    await updateAccount(test, person.account._id, { 'password.changedAt': daysAgo(179) });

    const { tokens } = await signInForTokens(client, person);

    expect(tokens.claims()?.sub).toBe(person.account._id);
  });

  it('refuses a one-time password unused for more than 14 days after the correct password', async () => {
    const person = await createAccount(test, tenantId, {}, { initial: true });
    await updateAccount(test, person.account._id, {
      'password.changedAt': daysAgo(15),
      'password.initialExpiresAt': daysAgo(1),
    });
    const { browser, login } = await openSignIn(client);

    const refused = asPage(await browser.submit(login, credentials(person), client.redirectUri));

    expect(refused.status).toBe(403);
    expect(text(refused)).toContain(messages.initialExpired);
    expect(refused.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
    const events = await auditEvents(test, {
      action: 'login',
      'target.accountId': person.account._id,
    });
    expect(events.map((event) => event.reason)).toEqual(['initial_password_expired']);
  });

  it('answers an expired one-time password typed wrongly like any wrong password', async () => {
    const person = await createAccount(test, tenantId, {}, { initial: true });
    await updateAccount(test, person.account._id, { 'password.initialExpiresAt': daysAgo(1) });
    const { browser, login } = await openSignIn(client);

    const refused = asPage(
      await browser.submit(login, credentials(person, `${person.password}x`), client.redirectUri),
    );

    expect(refused.status).toBe(401);
    expect(text(refused)).toContain(messages.loginFailed);
    expect(text(refused)).not.toContain(messages.initialExpired);
    expect((await storedAccount(test, person.account._id)).lockout.count).toBe(1);
  });

  it('requires the change once the clock has passed 180 days since the password was set', async () => {
    const person = await createAccount(test, tenantId);
    const { browser, login } = await openSignIn(client);

    test.clock.offsetMs = 181 * DAY;
    try {
      const change = asPage(await browser.submit(login, credentials(person), client.redirectUri));
      expect(change.document.querySelector('h1')?.textContent).toBe(messages.passwordChangeTitle);
    } finally {
      test.clock.offsetMs = 0;
    }
  });

  it('ends the other sessions and grants when the expired password is changed, and keeps the session it was changed in', async () => {
    const person = await createAccount(test, tenantId);
    const offline = { scope: 'openid offline_access' };
    const elsewhere = await signInForTokens(client, person, offline);
    await updateAccount(test, person.account._id, { 'password.changedAt': daysAgo(181) });

    const { browser, authorization, login } = await openSignIn(client, offline);
    const change = asPage(await browser.submit(login, credentials(person), client.redirectUri));
    const callback = asRedirect(
      await browser.submit(
        change,
        { new_password: newPassword, new_password_confirm: newPassword },
        client.redirectUri,
      ),
    );
    const tokens = await exchange(client, authorization, callback);

    await expect(
      oidc.refreshTokenGrant(client.config, elsewhere.tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    const otherAgain = await authorizationRequest(client);
    const otherPage = asPage(
      await elsewhere.browser.visit(otherAgain.url.href, client.redirectUri),
    );
    expect(otherPage.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);

    expect(
      (await oidc.refreshTokenGrant(client.config, tokens.refresh_token!)).access_token,
    ).toEqual(expect.any(String));
    const again = await authorizationRequest(client);
    const silent = asRedirect(await browser.visit(again.url.href, client.redirectUri));
    expect(silent.searchParams.get('code')).toEqual(expect.any(String));
  });
});
