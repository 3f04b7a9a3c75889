/**
 * The whole code flow through the real pages: authorize, sign in, the forced change of the
 * one-time password, code, tokens, userinfo, refresh, introspection, revocation, logout.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import {
  asPage,
  asRedirect,
  authorizationRequest,
  Browser,
  exchange,
  text,
} from '../support/browser.ts';
import {
  createAccount,
  createClient,
  createTenant,
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

describe('authorization code flow', () => {
  it('signs a new account in, forces the password change, and issues the designed tokens', async () => {
    const tenant = await createTenant(test, '05111000', 'Landeshauptstadt Düsseldorf');
    const person = await createAccount(
      test,
      tenant.id,
      {
        username: 'jmueller',
        givenName: 'Jörg',
        familyName: 'Müller-Lüdenscheidt',
        email: 'joerg@duesseldorf.example',
        permissions: ['meldeverfahren', 'zahlungsmitteilungen'],
      },
      { initial: true },
    );
    const browser = new Browser();
    const authorization = await authorizationRequest(client, {
      scope: 'openid profile email meldeverfahren zahlungsmitteilungen offline_access',
    });

    const login = asPage(await browser.visit(authorization.url.href));
    expect(login.status).toBe(200);
    expect(login.document.querySelector('label[for=tenant]')?.textContent).toBe(
      'Kommune / Behörde',
    );
    expect(login.document.querySelector('#username')?.getAttribute('autocomplete')).toBe(
      'username',
    );
    expect(login.document.querySelector('#password')?.getAttribute('autocomplete')).toBe(
      'current-password',
    );

    const change = asPage(
      await browser.submit(login, {
        tenant: 'Landeshauptstadt Düsseldorf',
        username: 'JMueller',
        password: person.password,
      }),
    );
    expect(change.document.querySelector('h1')?.textContent).toBe('Neues Kennwort festlegen');
    expect(change.document.querySelector('#new_password')?.getAttribute('autocomplete')).toBe(
      'new-password',
    );

    const refused = asPage(
      await browser.submit(change, { new_password: 'kurz', new_password_confirm: 'kurz' }),
    );
    expect(refused.status).toBe(400);
    expect(text(refused)).toContain('Es ist kürzer als 8 Zeichen.');
    expect(text(refused)).toContain('Es enthält keine Ziffer.');
    expect(text(refused)).toContain('Es enthält kein Sonderzeichen.');

    const mismatch = asPage(
      await browser.submit(refused, {
        new_password: 'Neues-Kennwort-1',
        new_password_confirm: 'Neues-Kennwort-2',
      }),
    );
    expect(text(mismatch)).toContain('Die beiden Eingaben stimmen nicht überein.');

    const reused = asPage(
      await browser.submit(mismatch, {
        new_password: person.password,
        new_password_confirm: person.password,
      }),
    );
    expect(text(reused)).toContain('Sie haben es bereits früher verwendet.');

    const callback = asRedirect(
      await browser.submit(
        reused,
        { new_password: 'Neues-Kennwort-1', new_password_confirm: 'Neues-Kennwort-1' },
        client.redirectUri,
      ),
    );
    const tokens = await exchange(client, authorization, callback);

    expect(tokens.scope?.split(' ').sort()).toEqual([
      'email',
      'meldeverfahren',
      'offline_access',
      'openid',
      'profile',
      'zahlungsmitteilungen',
    ]);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const idClaims = tokens.claims()!;
    expect(idClaims).toMatchObject({
      sub: person.account._id,
      name: 'Jörg Müller-Lüdenscheidt',
      given_name: 'Jörg',
      family_name: 'Müller-Lüdenscheidt',
      preferred_username: 'jmueller',
      tenant_id: '05111000',
      tenant_name: 'Landeshauptstadt Düsseldorf',
      tenant_kind: 'gemeinde',
      email: 'joerg@duesseldorf.example',
      permissions: ['meldeverfahren', 'zahlungsmitteilungen'],
    });

    const userinfo = await oidc.fetchUserInfo(
      client.config,
      tokens.access_token,
      person.account._id,
    );
    expect(userinfo).toMatchObject({
      sub: person.account._id,
      preferred_username: 'jmueller',
      tenant_id: '05111000',
      permissions: ['meldeverfahren', 'zahlungsmitteilungen'],
    });

    const refreshed = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.scope?.split(' ')).toEqual(
      expect.arrayContaining(['meldeverfahren', 'zahlungsmitteilungen']),
    );

    const introspection = await oidc.tokenIntrospection(client.config, refreshed.access_token);
    expect(introspection).toMatchObject({
      active: true,
      sub: person.account._id,
      client_id: client.clientId,
    });
    expect(String(introspection.scope).split(' ')).toEqual(
      expect.arrayContaining(['meldeverfahren', 'zahlungsmitteilungen']),
    );

    await oidc.tokenRevocation(client.config, refreshed.refresh_token!);
    expect(await oidc.tokenIntrospection(client.config, refreshed.refresh_token!)).toMatchObject({
      active: false,
    });
    await expect(
      oidc.refreshTokenGrant(client.config, refreshed.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });

    const logoutUrl = oidc.buildEndSessionUrl(client.config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: client.postLogoutRedirectUri,
    });
    const confirm = asPage(await browser.visit(logoutUrl.href));
    expect(confirm.document.querySelector('h1')?.textContent).toBe('Abmelden');
    const loggedOut = asRedirect(
      await browser.submit(confirm, { logout: 'yes' }, client.postLogoutRedirectUri),
    );
    expect(loggedOut.origin + loggedOut.pathname).toBe(client.postLogoutRedirectUri);

    const audit = test.services.db.collection('audit_events');
    for (const action of ['login', 'password.changed', 'grant.revoked', 'logout']) {
      expect(await audit.findOne({ action, 'target.accountId': person.account._id })).toMatchObject(
        {
          tenantId: '05111000',
          outcome: 'success',
        },
      );
    }

    const again = await authorizationRequest(client);
    const signInAgain = asPage(await browser.visit(again.url.href));
    expect(signInAgain.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
    expect(signInAgain.document.querySelector('#tenant')?.getAttribute('value')).toBe('05111000');
  });

  it('issues a JWT access token for the reporting API when the resource is requested', async () => {
    const tenant = await createTenant(test);
    const person = await createAccount(test, tenant.id, { permissions: ['zahlungsmitteilungen'] });
    const browser = new Browser();
    const resource = test.services.config.reportingApiResource;
    const authorization = await authorizationRequest(client, {
      scope: 'openid zahlungsmitteilungen',
      resource,
    });

    const login = asPage(await browser.visit(authorization.url.href));
    const callback = asRedirect(
      await browser.submit(
        login,
        { tenant: tenant.id, username: person.username, password: person.password },
        client.redirectUri,
      ),
    );
    const tokens = await exchange(client, authorization, callback, { resource });

    const [header, payload] = tokens.access_token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    expect(payload).toMatchObject({
      sub: person.account._id,
      client_id: client.clientId,
      aud: resource,
      scope: 'zahlungsmitteilungen',
      tenant_id: tenant.id,
      permissions: ['zahlungsmitteilungen'],
      iss: test.issuer,
    });
    expect(payload.exp - payload.iat).toBe(600);
  });
  it('gives offline_access a refresh token also with prompt=login, without a consent page', async () => {
    const tenant = await createTenant(test);
    const person = await createAccount(test, tenant.id);
    const browser = new Browser();
    const signIn = async (params: Record<string, string>) => {
      const authorization = await authorizationRequest(client, params);
      const login = asPage(await browser.visit(authorization.url.href));
      expect(login.document.querySelector('#password')).not.toBeNull();
      const callback = asRedirect(
        await browser.submit(
          login,
          { tenant: tenant.id, username: person.username, password: person.password },
          client.redirectUri,
        ),
      );
      return exchange(client, authorization, callback);
    };

    const first = await signIn({ scope: 'openid offline_access' });
    expect(first.refresh_token).toEqual(expect.any(String));
    const again = await signIn({ scope: 'openid offline_access', prompt: 'login' });
    expect(again.refresh_token).toEqual(expect.any(String));
    expect(again.scope?.split(' ')).toContain('offline_access');
  });
});
