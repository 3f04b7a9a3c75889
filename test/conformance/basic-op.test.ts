/**
 * The OpenID Foundation Basic OP plan (oidcc-basic-certification-test-plan) for the code
 * flow, run as a strict relying party would: every ID token verified via its `kid`, state
 * and nonce checked, and every error answered where OIDC Core 1.0 §3.1.2.6 wants it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, asRedirect, authorizationRequest, Browser } from '../support/browser.ts';
import {
  authorize,
  backdateSessions,
  callbackError,
  redeem,
  signIn,
  verifyIdToken,
} from '../support/conformance.ts';
import { credentials, jwtPayload } from '../support/flows.ts';
import {
  createAccount,
  startWithClient,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let tenantId: string;
let person: TestAccount;

beforeAll(async () => {
  ({ test, client, tenantId } = await startWithClient());
  person = await createAccount(test, tenantId, {
    email: 'erika.mustermann@kommune.example',
    permissions: ['meldeverfahren'],
  });
});
afterAll(() => test.close());

/** OIDC Core 1.0 §5.5.1.1: auth_time asked for as an essential ID token claim. */
const authTimeClaim = JSON.stringify({ id_token: { auth_time: { essential: true } } });

const userinfoEndpoint = () => client.config.serverMetadata().userinfo_endpoint!;

describe('code flow (oidcc-server, oidcc-ensure-*)', () => {
  it('echoes state and iss on the callback, and the nonce in an ID token signed by a JWKS key', async () => {
    const { authorization, callback, nonce, tokens } = await signIn(client, person);

    expect(callback.origin + callback.pathname).toBe(client.redirectUri);
    expect(callback.searchParams.get('state')).toBe(authorization.state);
    // RFC 9207, announced as authorization_response_iss_parameter_supported.
    expect(callback.searchParams.get('iss')).toBe(test.issuer);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.expires_in).toBeGreaterThan(0);

    const claims = await verifyIdToken(test, client, tokens.id_token!, {
      nonce,
      accessToken: tokens.access_token,
    });
    expect(claims).toMatchObject({ sub: person.account._id, nonce, aud: client.clientId });
  });

  it('issues an ID token without nonce when the request carried none', async () => {
    const browser = new Browser();
    const authorization = await authorizationRequest(client);
    const login = asPage(await browser.visit(authorization.url.href));
    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );
    const tokens = await oidc.authorizationCodeGrant(client.config, callback, {
      pkceCodeVerifier: authorization.verifier,
      expectedState: authorization.state,
    });

    const claims = await verifyIdToken(test, client, tokens.id_token!);
    expect(claims.nonce).toBeUndefined();
  });

  it('ignores unknown authorization parameters (oidcc-unknown-parameter)', async () => {
    const { tokens, nonce } = await signIn(client, person, {
      extra: 'foobar',
      vendor_specific: '1',
    });

    expect((await verifyIdToken(test, client, tokens.id_token!, { nonce })).sub).toBe(
      person.account._id,
    );
  });
});

describe('request validation (oidcc-response-type-missing, oidcc-ensure-redirect-uri-in-authorization-request)', () => {
  it('answers a missing response_type on the redirect URI', async () => {
    const authorization = await authorizationRequest(client);
    authorization.url.searchParams.delete('response_type');

    const callback = asRedirect(
      await new Browser().visit(authorization.url.href, client.redirectUri),
    );

    expect(callbackError(callback)).toEqual({
      error: 'invalid_request',
      state: authorization.state,
      code: null,
    });
  });

  it('shows an error page and does not redirect when redirect_uri is missing', async () => {
    const authorization = await authorizationRequest(client);
    authorization.url.searchParams.delete('redirect_uri');

    const response = await new Browser().request(authorization.url.href);

    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('accepts the scopes in any order and display=popup (oidcc-ensure-other-scope-order-succeeds, oidcc-display-popup)', async () => {
    const { tokens, nonce } = await signIn(client, person, {
      scope: 'email openid',
      display: 'popup',
    });

    const claims = await verifyIdToken(test, client, tokens.id_token!, { nonce });
    expect(claims.email).toBe('erika.mustermann@kommune.example');
  });
});

describe('userinfo (oidcc-userinfo-get, -post-header, -post-body)', () => {
  let accessToken: string;
  let idTokenSub: string;

  beforeAll(async () => {
    const { tokens } = await signIn(client, person, { scope: 'openid profile email' });
    accessToken = tokens.access_token;
    idTokenSub = jwtPayload(tokens.id_token!).sub as string;
  });

  const expectUserinfo = async (response: Response) => {
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.sub).toBe(idTokenSub);
    expect(body).toMatchObject({
      preferred_username: person.username,
      email: 'erika.mustermann@kommune.example',
    });
  };

  it('answers GET with the bearer token in the Authorization header', async () => {
    await expectUserinfo(
      await fetch(userinfoEndpoint(), { headers: { authorization: `Bearer ${accessToken}` } }),
    );
  });

  it('answers POST with the bearer token in the Authorization header', async () => {
    await expectUserinfo(
      await fetch(userinfoEndpoint(), {
        method: 'POST',
        headers: { authorization: `Bearer ${accessToken}` },
      }),
    );
  });

  it('answers POST with the access token in the form body (RFC 6750 §2.2)', async () => {
    await expectUserinfo(
      await fetch(userinfoEndpoint(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ access_token: accessToken }),
      }),
    );
  });

  it('refuses a missing or wrong token with 401 and a Bearer challenge (RFC 6750 §3)', async () => {
    const missing = await fetch(userinfoEndpoint());
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer /);

    const wrong = await fetch(userinfoEndpoint(), {
      headers: { authorization: `Bearer ${accessToken}x` },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });
});

describe('scopes (oidcc-scope-profile, -email, -all)', () => {
  const userinfoOf = async (scope: string) => {
    const { tokens } = await signIn(client, person, { scope });
    const userinfo = await oidc.fetchUserInfo(
      client.config,
      tokens.access_token,
      person.account._id,
    );
    return { tokens, userinfo };
  };

  it('releases only sub for scope openid', async () => {
    const { userinfo, tokens } = await userinfoOf('openid');

    expect(Object.keys(userinfo).sort()).toEqual(['sub']);
    expect(tokens.refresh_token).toBeUndefined();
  });

  it('releases the profile claims for scope profile, and no e-mail', async () => {
    const { userinfo } = await userinfoOf('openid profile');

    expect(userinfo).toMatchObject({
      name: 'Erika Mustermann',
      given_name: 'Erika',
      family_name: 'Mustermann',
      preferred_username: person.username,
      tenant_id: tenantId,
    });
    expect(userinfo.email).toBeUndefined();
  });

  it('releases email and email_verified for scope email, and no profile claims', async () => {
    const { userinfo } = await userinfoOf('openid email');

    expect(userinfo).toEqual({
      sub: person.account._id,
      email: 'erika.mustermann@kommune.example',
      email_verified: false,
    });
  });

  it('releases the held permission for its scope and a refresh token for offline_access', async () => {
    const { userinfo, tokens } = await userinfoOf('openid meldeverfahren offline_access');

    expect(userinfo).toEqual({ sub: person.account._id, permissions: ['meldeverfahren'] });
    expect(tokens.scope?.split(' ').sort()).toEqual(['meldeverfahren', 'offline_access', 'openid']);
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });
});

describe('prompt (oidcc-prompt-none-not-logged-in, -none-logged-in, oidcc-prompt-login)', () => {
  it('answers prompt=none without a session with login_required on the redirect URI', async () => {
    const authorization = await authorizationRequest(client, { prompt: 'none' });

    const callback = asRedirect(
      await new Browser().visit(authorization.url.href, client.redirectUri),
    );

    expect(callbackError(callback)).toEqual({
      error: 'login_required',
      state: authorization.state,
      code: null,
    });
  });

  it('answers prompt=none with a session with a code and no page', async () => {
    const first = await signIn(client, person, { claims: authTimeClaim });

    const again = await authorize(
      client,
      person,
      { prompt: 'none', claims: authTimeClaim },
      first.browser,
    );

    expect(again.formShown).toBe(false);
    const tokens = await redeem(client, again);
    const claims = await verifyIdToken(test, client, tokens.id_token!, { nonce: again.nonce });
    expect(claims.sub).toBe(person.account._id);
    expect(claims.auth_time).toBe(jwtPayload(first.tokens.id_token!).auth_time);
  });

  it('asks for the password again on prompt=login although a session exists', async () => {
    const first = await signIn(client, person, { claims: authTimeClaim });
    await backdateSessions(test, person.account._id, 120);

    const again = await authorize(client, person, { prompt: 'login' }, first.browser);

    expect(again.formShown).toBe(true);
    const tokens = await redeem(client, again);
    expect(jwtPayload(tokens.id_token!).auth_time as number).toBeGreaterThan(
      (jwtPayload(first.tokens.id_token!).auth_time as number) - 120,
    );
  });
});

describe('prompt combinations (OIDC Core 1.0 §3.1.2.1)', () => {
  it('refuses prompt=none together with another prompt value', async () => {
    const { browser } = await signIn(client, person);
    const authorization = await authorizationRequest(client, { prompt: 'none login' });

    const callback = asRedirect(await browser.visit(authorization.url.href, client.redirectUri));

    expect(callbackError(callback)).toEqual({
      error: 'invalid_request',
      state: authorization.state,
      code: null,
    });
  });

  it('answers prompt=none with login_required once the session is older than max_age', async () => {
    const { browser } = await signIn(client, person);
    await backdateSessions(test, person.account._id, 60);
    const authorization = await authorizationRequest(client, { prompt: 'none', max_age: '30' });

    const callback = asRedirect(await browser.visit(authorization.url.href, client.redirectUri));

    expect(callbackError(callback)).toEqual({
      error: 'login_required',
      state: authorization.state,
      code: null,
    });
  });
});

describe('max_age (oidcc-max-age-1, oidcc-max-age-10000)', () => {
  it('returns auth_time and keeps a session younger than max_age', async () => {
    const first = await signIn(client, person, { max_age: '300' });
    const authTime = jwtPayload(first.tokens.id_token!).auth_time;
    expect(authTime).toEqual(expect.any(Number));

    const again = await authorize(client, person, { max_age: '10000' }, first.browser);

    expect(again.formShown).toBe(false);
    expect(jwtPayload((await redeem(client, again)).id_token!).auth_time).toBe(authTime);
  });

  it('asks for the password again once the session is older than max_age', async () => {
    const first = await signIn(client, person, { max_age: '3600' });
    await backdateSessions(test, person.account._id, 60);

    const again = await authorize(client, person, { max_age: '30' }, first.browser);

    expect(again.formShown).toBe(true);
    const claims = jwtPayload((await redeem(client, again)).id_token!);
    expect(claims.auth_time as number).toBeGreaterThan(
      (jwtPayload(first.tokens.id_token!).auth_time as number) - 60,
    );
    expect(Math.floor(Date.now() / 1000) - (claims.auth_time as number)).toBeLessThanOrEqual(30);
  });
});

describe('id_token_hint (oidcc-id-token-hint)', () => {
  it('issues a code for prompt=none with the ID token of the signed-in account', async () => {
    const first = await signIn(client, person);

    const again = await authorize(
      client,
      person,
      { prompt: 'none', id_token_hint: first.tokens.id_token! },
      first.browser,
    );

    expect(again.formShown).toBe(false);
    expect(jwtPayload((await redeem(client, again)).id_token!).sub).toBe(person.account._id);
  });

  it('answers login_required for prompt=none with the ID token of another account', async () => {
    const other = await createAccount(test, tenantId);
    const othersToken = (await signIn(client, other)).tokens.id_token!;
    const { browser } = await signIn(client, person);
    const authorization = await authorizationRequest(client, {
      prompt: 'none',
      id_token_hint: othersToken,
    });

    const callback = asRedirect(await browser.visit(authorization.url.href, client.redirectUri));

    expect(callbackError(callback)).toMatchObject({
      error: 'login_required',
      state: authorization.state,
      code: null,
    });
  });

  it('refuses an id_token_hint that is not an ID token of this provider', async () => {
    const forged = jwtPayload((await signIn(client, person)).tokens.id_token!);
    const unsigned = [
      Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url'),
      Buffer.from(JSON.stringify(forged)).toString('base64url'),
      '',
    ].join('.');
    const authorization = await authorizationRequest(client, { id_token_hint: unsigned });

    const callback = asRedirect(
      await new Browser().visit(authorization.url.href, client.redirectUri),
    );

    expect(callbackError(callback)).toMatchObject({ error: 'invalid_request', code: null });
  });
});

describe('login_hint, ui_locales (oidcc-login-hint, oidcc-ui-locales)', () => {
  it('fills the username in from login_hint', async () => {
    const authorization = await authorizationRequest(client, { login_hint: person.username });

    const login = asPage(await new Browser().visit(authorization.url.href));

    expect(login.document.querySelector('#username')?.getAttribute('value')).toBe(person.username);
  });

  it('shows the sign-in page in English for ui_locales=en', async () => {
    const authorization = await authorizationRequest(client, { ui_locales: 'fr-CA en' });

    const login = asPage(await new Browser().visit(authorization.url.href));

    expect(login.document.querySelector('html')?.getAttribute('lang')).toBe('en');
    expect(login.document.querySelector('h1')?.textContent.trim()).toBe('Sign in');
    expect(login.document.querySelector('label[for=tenant]')?.textContent.trim()).toBe(
      'Municipality / authority',
    );
  });
});

describe('claims parameter (oidcc-claims-essential, OIDC Core 1.0 §5.5)', () => {
  it('releases requested claims in the ID token and at userinfo, each where asked for', async () => {
    const claims = JSON.stringify({
      id_token: { preferred_username: null, tenant_id: { essential: true } },
      userinfo: { email: { essential: true } },
    });

    const { tokens, nonce } = await signIn(client, person, { scope: 'openid', claims });

    const idToken = await verifyIdToken(test, client, tokens.id_token!, { nonce });
    expect(idToken).toMatchObject({ preferred_username: person.username, tenant_id: tenantId });
    expect(idToken.email).toBeUndefined();
    const userinfo = await oidc.fetchUserInfo(
      client.config,
      tokens.access_token,
      person.account._id,
    );
    expect(userinfo).toEqual({
      sub: person.account._id,
      email: 'erika.mustermann@kommune.example',
    });
  });

  it('refuses a claims parameter that is not JSON on the redirect URI', async () => {
    const authorization = await authorizationRequest(client, { claims: '{not json' });

    const callback = asRedirect(
      await new Browser().visit(authorization.url.href, client.redirectUri),
    );

    expect(callbackError(callback)).toMatchObject({
      error: 'invalid_request',
      state: authorization.state,
    });
  });
});

describe('PKCE (RFC 7636, OAuth 2.0 Security BCP §2.1.1)', () => {
  it('refuses code_challenge_method=plain on the redirect URI', async () => {
    const authorization = await authorizationRequest(client, {
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'plain',
    });

    const callback = asRedirect(
      await new Browser().visit(authorization.url.href, client.redirectUri),
    );

    expect(callbackError(callback)).toEqual({
      error: 'invalid_request',
      state: authorization.state,
      code: null,
    });
  });

  it('refuses an authorization request without code_challenge', async () => {
    const authorization = await authorizationRequest(client);
    authorization.url.searchParams.delete('code_challenge');
    authorization.url.searchParams.delete('code_challenge_method');

    const callback = asRedirect(
      await new Browser().visit(authorization.url.href, client.redirectUri),
    );

    expect(callbackError(callback)).toEqual({
      error: 'invalid_request',
      state: authorization.state,
      code: null,
    });
  });

  it('refuses the code with a wrong code_verifier', async () => {
    const flow = await authorize(client, person);

    await expect(
      redeem(client, {
        ...flow,
        authorization: { ...flow.authorization, verifier: oidc.randomPKCECodeVerifier() },
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('one-time codes and rotated refresh tokens (oidcc-codereuse, RFC 9700 §4.14)', () => {
  it('refuses a code used a second time and revokes the tokens it issued', async () => {
    const flow = await authorize(client, person, { scope: 'openid offline_access' });
    const tokens = await redeem(client, flow);

    await expect(redeem(client, flow)).rejects.toMatchObject({ error: 'invalid_grant' });

    expect(await oidc.tokenIntrospection(client.config, tokens.access_token)).toMatchObject({
      active: false,
    });
    const userinfo = await fetch(userinfoEndpoint(), {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(userinfo.status).toBe(401);
    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('refreshes to an ID token of the same subject, issuer and audience (oidcc-refresh-token)', async () => {
    const { tokens } = await signIn(client, person, { scope: 'openid offline_access' });
    const original = jwtPayload(tokens.id_token!);

    const refreshed = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);

    const claims = await verifyIdToken(test, client, refreshed.id_token!, {
      accessToken: refreshed.access_token,
    });
    expect(claims).toMatchObject({ sub: original.sub, iss: original.iss, aud: original.aud });
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  });

  it('revokes the whole chain when a rotated refresh token is used again', async () => {
    const { tokens } = await signIn(client, person, { scope: 'openid offline_access' });
    const second = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);
    const third = await oidc.refreshTokenGrant(client.config, second.refresh_token!);
    expect(new Set([tokens.refresh_token, second.refresh_token, third.refresh_token]).size).toBe(3);

    await expect(
      oidc.refreshTokenGrant(client.config, tokens.refresh_token!),
    ).rejects.toMatchObject({ error: 'invalid_grant' });

    await expect(oidc.refreshTokenGrant(client.config, third.refresh_token!)).rejects.toMatchObject(
      { error: 'invalid_grant' },
    );
    for (const token of [third.access_token, second.access_token, third.refresh_token!]) {
      expect(await oidc.tokenIntrospection(client.config, token)).toMatchObject({
        active: false,
      });
    }
  });
});

describe('token endpoint errors (RFC 6749 §5.2)', () => {
  const tokenEndpoint = () => client.config.serverMetadata().token_endpoint!;
  const basic = (id: string, secret: string) =>
    `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  const tokenRequest = async (headers: Record<string, string>, body: Record<string, string>) => {
    const response = await fetch(tokenEndpoint(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(body),
    });
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    return {
      status: response.status,
      response,
      body: (await response.json()) as Record<string, string>,
    };
  };

  const codeGrant = async () => {
    const flow = await authorize(client, person);
    return {
      grant_type: 'authorization_code',
      code: flow.callback.searchParams.get('code')!,
      redirect_uri: client.redirectUri,
      code_verifier: flow.authorization.verifier,
    };
  };

  it('answers a wrong client secret with 401 invalid_client and a Basic challenge', async () => {
    const answer = await tokenRequest(
      { authorization: basic(client.clientId, 'wrong-secret') },
      await codeGrant(),
    );

    expect(answer.status).toBe(401);
    expect(answer.body.error).toBe('invalid_client');
    expect(answer.response.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('answers an unknown client and a missing authentication with invalid_client', async () => {
    const grant = await codeGrant();

    const unknown = await tokenRequest({ authorization: basic('no-such-client', 'x') }, grant);
    expect(unknown).toMatchObject({ status: 401, body: { error: 'invalid_client' } });

    const missing = await tokenRequest({}, { ...grant, client_id: client.clientId });
    expect(missing).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });

  it('accepts the secret in the body too, and refuses it there when wrong', async () => {
    // The library treats client_secret_basic and client_secret_post as one method, so both
    // are announced (discovery.test.ts).
    const grant = await codeGrant();

    const wrong = await tokenRequest(
      {},
      { ...grant, client_id: client.clientId, client_secret: 'wrong-secret' },
    );
    expect(wrong).toMatchObject({ status: 401, body: { error: 'invalid_client' } });

    const right = await tokenRequest(
      {},
      { ...(await codeGrant()), client_id: client.clientId, client_secret: client.clientSecret! },
    );
    expect(right.status).toBe(200);
    expect(right.body.id_token).toEqual(expect.any(String));
  });

  it('refuses a client assertion, a method this provider does not offer, as a request without authentication', async () => {
    const assertion = [
      Buffer.from(JSON.stringify({ alg: 'HS256' })).toString('base64url'),
      Buffer.from(JSON.stringify({ iss: client.clientId, sub: client.clientId })).toString(
        'base64url',
      ),
      'c2lnbmF0dXJl',
    ].join('.');

    const answer = await tokenRequest(
      {},
      {
        ...(await codeGrant()),
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      },
    );

    // With the JWT methods switched off the library does not read client_assertion, so the
    // request carries no authentication it knows of: RFC 6749 §5.2 invalid_request.
    expect(answer).toMatchObject({
      status: 400,
      body: {
        error: 'invalid_request',
        error_description: 'no client authentication mechanism provided',
      },
    });
  });

  it('answers an unknown code with invalid_grant and an unknown grant type with unsupported_grant_type', async () => {
    const auth = { authorization: basic(client.clientId, client.clientSecret!) };

    const code = await tokenRequest(auth, { ...(await codeGrant()), code: 'not-a-code' });
    expect(code).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    const grantType = await tokenRequest(auth, {
      grant_type: 'password',
      username: 'x',
      password: 'y',
    });
    expect(grantType).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
  });

  it('answers a code redeemed with another redirect_uri with invalid_grant', async () => {
    const answer = await tokenRequest(
      { authorization: basic(client.clientId, client.clientSecret!) },
      { ...(await codeGrant()), redirect_uri: 'https://rp.example.test/other' },
    );

    expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });
});
