/**
 * The OpenID Foundation Config OP plan (oidcc-discovery-*): the discovery document of OIDC
 * Discovery 1.0 §3 and §4, its JWKS, and that what it announces is what the provider does.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';

import { MongoAdapter } from '../../src/oidc/adapter.ts';
import { asPage, asRedirect, authorizationRequest, Browser } from '../support/browser.ts';
import { signIn, verifyIdToken } from '../support/conformance.ts';
import {
  createAccount,
  createClient,
  startWithClient,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let person: TestAccount;
let metadata: Record<string, unknown>;

beforeAll(async () => {
  let tenantId: string;
  ({ test, client, tenantId } = await startWithClient());
  person = await createAccount(test, tenantId, { email: 'erika@kommune.example' });
  const response = await fetch(`${test.issuer}/.well-known/openid-configuration`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  metadata = (await response.json()) as Record<string, unknown>;
});
afterAll(() => test.close());

const list = (name: string) => metadata[name] as string[];

describe('discovery document', () => {
  it('names the issuer exactly as the URL it is served under, without a trailing slash', () => {
    expect(metadata.issuer).toBe(test.issuer);
    expect(new URL('/.well-known/openid-configuration', test.issuer).origin).toBe(test.issuer);
  });

  it('carries every required member and the recommended ones', () => {
    for (const name of [
      'issuer',
      'authorization_endpoint',
      'token_endpoint',
      'jwks_uri',
      'response_types_supported',
      'subject_types_supported',
      'id_token_signing_alg_values_supported',
      'userinfo_endpoint',
      'scopes_supported',
      'claims_supported',
      'end_session_endpoint',
    ]) {
      expect({ name, present: metadata[name] !== undefined }).toEqual({ name, present: true });
    }
    for (const name of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint']) {
      expect(String(metadata[name]).startsWith(`${test.issuer}/`)).toBe(true);
    }
  });

  it('announces the code flow only, public subjects and RS256 among the signing algorithms', () => {
    expect(list('response_types_supported')).toEqual(['code']);
    expect(list('subject_types_supported')).toContain('public');
    // OIDC Discovery 1.0 §3: RS256 must be listed; ES256 signs by default.
    expect(list('id_token_signing_alg_values_supported')).toEqual(
      expect.arrayContaining(['RS256', 'ES256']),
    );
    expect(list('id_token_signing_alg_values_supported')).not.toContain('none');
    expect(list('code_challenge_methods_supported')).toEqual(['S256']);
    expect(list('grant_types_supported')).toEqual(
      expect.arrayContaining(['authorization_code', 'refresh_token']),
    );
    expect(list('grant_types_supported')).not.toContain('implicit');
  });

  it('lists the scopes and the claims the provider issues', () => {
    expect(list('scopes_supported')).toEqual(
      expect.arrayContaining([
        'openid',
        'offline_access',
        'profile',
        'email',
        'meldeverfahren',
        'zahlungsmitteilungen',
      ]),
    );
    expect(list('claims_supported')).toEqual(
      expect.arrayContaining([
        'sub',
        'name',
        'given_name',
        'family_name',
        'preferred_username',
        'email',
        'email_verified',
        'tenant_id',
        'permissions',
      ]),
    );
    expect(metadata.claims_parameter_supported).toBe(true);
  });

  it('announces only the client authentication methods a registered client can use', () => {
    // Clients are registered as confidential (client_secret_basic, which the library also
    // accepts in the body as client_secret_post) or public (none); no client holds keys for
    // client_secret_jwt or private_key_jwt.
    expect([...list('token_endpoint_auth_methods_supported')].sort()).toEqual([
      'client_secret_basic',
      'client_secret_post',
      'none',
    ]);
  });

  it('does not announce request objects and refuses one instead of ignoring it', async () => {
    // OIDC Discovery 1.0 §3: an absent request_parameter_supported means false; a provider
    // that does not process `request` must say so on the redirect URI (OIDC Core 1.0 §6.1).
    expect(metadata.request_parameter_supported).toBeUndefined();
    expect(metadata.request_uri_parameter_supported).toBe(false);
    const authorization = await authorizationRequest(client, { request: 'not-a-jwt' });

    const response = await new Browser().request(authorization.url.href);

    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(client.redirectUri);
    expect(location.searchParams.get('error')).toBe('request_not_supported');
    expect(location.searchParams.get('state')).toBe(authorization.state);
  });
});

describe('announced response modes', () => {
  it('answers response_mode=form_post with a form that posts code and state to the redirect URI', async () => {
    expect(list('response_modes_supported')).toContain('form_post');
    const { browser } = await signIn(client, person);
    const authorization = await authorizationRequest(client, {
      response_mode: 'form_post',
      prompt: 'none',
    });

    const page = asPage(await browser.visit(authorization.url.href));

    const form = page.document.querySelector('form');
    expect(form?.getAttribute('method')).toBe('post');
    expect(form?.getAttribute('action')).toBe(client.redirectUri);
    const field = (name: string) =>
      form?.querySelector(`input[name=${name}]`)?.getAttribute('value');
    expect(field('state')).toBe(authorization.state);
    expect(field('code')).toEqual(expect.any(String));
    expect(field('iss')).toBe(test.issuer);
  });

  it('answers response_mode=fragment with the code in the fragment', async () => {
    expect(list('response_modes_supported')).toContain('fragment');
    const { browser } = await signIn(client, person);
    const authorization = await authorizationRequest(client, {
      response_mode: 'fragment',
      prompt: 'none',
    });

    const callback = asRedirect(await browser.visit(authorization.url.href, client.redirectUri));

    const fragment = new URLSearchParams(callback.hash.slice(1));
    expect(callback.search).toBe('');
    expect(fragment.get('state')).toBe(authorization.state);
    expect(fragment.get('code')).toEqual(expect.any(String));
  });
});

describe('jwks_uri', () => {
  let jwks: { keys: Array<Record<string, unknown>> };

  beforeAll(async () => {
    const response = await fetch(String(metadata.jwks_uri));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/(jwk-set\+json|json)/);
    jwks = (await response.json()) as typeof jwks;
  });

  it('is reachable and holds signing keys with unique ids', () => {
    expect(jwks.keys.length).toBeGreaterThanOrEqual(2);
    const kids = jwks.keys.map((key) => key.kid);
    expect(new Set(kids).size).toBe(kids.length);
    for (const key of jwks.keys) {
      expect(key.kid).toEqual(expect.any(String));
      expect(key.use ?? 'sig').toBe('sig');
    }
  });

  it('holds no private key material', () => {
    for (const key of jwks.keys) {
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) {
        expect({ kid: key.kid, member, present: member in key }).toEqual({
          kid: key.kid,
          member,
          present: false,
        });
      }
    }
  });

  it('holds a key for every announced ID token signing algorithm', () => {
    const types = new Set(jwks.keys.map((key) => key.kty));
    for (const alg of list('id_token_signing_alg_values_supported')) {
      const kty = alg.startsWith('ES') ? 'EC' : alg.startsWith('Ed') ? 'OKP' : 'RSA';
      expect({ alg, kty, present: types.has(kty) }).toEqual({ alg, kty, present: true });
    }
  });
});

describe('announced signing algorithms', () => {
  it.each(['ES256', 'PS256', 'RS256'] as const)(
    'signs the ID token of a client that registered %s with that algorithm, verifiable via kid',
    async (alg) => {
      expect(list('id_token_signing_alg_values_supported')).toContain(alg);
      const registered = await createClient(test);
      const clients = new MongoAdapter(test.services.db, 'Client');
      const stored = (await clients.find(registered.clientId))!;
      await clients.upsert(registered.clientId, { ...stored, id_token_signed_response_alg: alg });

      const { tokens } = await signIn(registered, person);

      expect(decodeProtectedHeader(tokens.id_token!).alg).toBe(alg);
      await verifyIdToken(test, registered, tokens.id_token!);
    },
  );
});
