/**
 * Permission scopes (design 3.3 and 4): a client receives only the permission scopes the
 * account holds, and `access_denied` when the account holds none of those it asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asRedirect, exchange } from '../support/browser.ts';
import { credentials, jwtPayload, openSignIn, signInForTokens } from '../support/flows.ts';
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

describe('permission scopes', () => {
  it('grants only the requested permission scopes the account holds', async () => {
    const person = await createAccount(test, tenantId, { permissions: ['zahlungsmitteilungen'] });

    const { tokens } = await signInForTokens(client, person, {
      scope: 'openid meldeverfahren zahlungsmitteilungen',
    });

    expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'zahlungsmitteilungen']);
    expect(tokens.claims()).toMatchObject({
      sub: person.account._id,
      permissions: ['zahlungsmitteilungen'],
    });

    const userinfo = await oidc.fetchUserInfo(
      client.config,
      tokens.access_token,
      person.account._id,
    );
    expect(userinfo.permissions).toEqual(['zahlungsmitteilungen']);

    const introspection = await oidc.tokenIntrospection(client.config, tokens.access_token);
    expect(introspection).toMatchObject({ active: true, sub: person.account._id });
    expect(String(introspection.scope).split(' ').sort()).toEqual([
      'openid',
      'zahlungsmitteilungen',
    ]);
  });

  it('grants only the held permission scopes in the JWT access token for the reporting API', async () => {
    const person = await createAccount(test, tenantId, { permissions: ['zahlungsmitteilungen'] });
    const resource = test.services.config.reportingApiResource;
    const { browser, authorization, login } = await openSignIn(client, {
      scope: 'openid meldeverfahren zahlungsmitteilungen',
      resource,
    });

    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );
    const tokens = await exchange(client, authorization, callback, { resource });

    expect(jwtPayload(tokens.access_token)).toMatchObject({
      aud: resource,
      scope: 'zahlungsmitteilungen',
      permissions: ['zahlungsmitteilungen'],
    });
  });

  it('answers access_denied on the redirect URI when the account holds none of the requested permissions', async () => {
    const person = await createAccount(test, tenantId, { permissions: [] });
    const { browser, authorization, login } = await openSignIn(client, {
      scope: 'openid meldeverfahren zahlungsmitteilungen',
    });

    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );

    expect(callback.origin + callback.pathname).toBe(client.redirectUri);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(authorization.state);
    expect(callback.searchParams.has('code')).toBe(false);
  });

  it('answers access_denied when an account holding one permission asks only for the other', async () => {
    const person = await createAccount(test, tenantId, { permissions: ['zahlungsmitteilungen'] });
    const { browser, login } = await openSignIn(client, { scope: 'openid profile meldeverfahren' });

    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );

    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.has('code')).toBe(false);
  });

  it('signs an account without permissions in when no permission scope is requested', async () => {
    const person = await createAccount(test, tenantId, { permissions: [] });

    const { tokens } = await signInForTokens(client, person, { scope: 'openid profile' });

    expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({
      sub: person.account._id,
      preferred_username: person.username,
      tenant_id: tenantId,
    });
    expect(claims.permissions ?? []).toEqual([]);
    const userinfo = await oidc.fetchUserInfo(
      client.config,
      tokens.access_token,
      person.account._id,
    );
    expect(userinfo.permissions ?? []).toEqual([]);
  });
});
