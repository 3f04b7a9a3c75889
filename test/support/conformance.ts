/**
 * What the OpenID Foundation conformance plans check on every ID token and every browser
 * step, shared by the files of `test/conformance/`.
 */
import { createHash } from 'node:crypto';

import { expect } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';

import {
  asRedirect,
  authorizationRequest,
  Browser,
  type Authorization,
  type Site,
} from './browser.ts';
import { credentials } from './flows.ts';
import type { TestAccount, TestClient, TestServer } from './server.ts';

/**
 * Verifies an ID token as a strict relying party does (OIDC Core 1.0 §3.1.3.7): the
 * signature with the JWKS key its `kid` names, then `iss`, `aud`, `azp`, `exp`, `iat` and,
 * when one was sent, `nonce`. Returns the payload.
 */
export async function verifyIdToken(
  test: TestServer,
  client: TestClient,
  idToken: string,
  expected: { nonce?: string; accessToken?: string } = {},
): Promise<JWTPayload> {
  const header = decodeProtectedHeader(idToken);
  const jwksUri = client.config.serverMetadata().jwks_uri!;
  const jwks = (await (await fetch(jwksUri)).json()) as { keys: Array<{ kid?: string }> };
  expect(header.kid).toEqual(expect.any(String));
  expect(jwks.keys.filter((key) => key.kid === header.kid)).toHaveLength(1);

  const { payload } = await jwtVerify(idToken, createRemoteJWKSet(new URL(jwksUri)), {
    issuer: test.issuer,
    audience: client.clientId,
  });
  const now = Math.floor(Date.now() / 1000);
  const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (audience.length > 1 || payload.azp !== undefined) expect(payload.azp).toBe(client.clientId);
  expect(payload.exp).toBeGreaterThan(now);
  expect(payload.iat).toBeLessThanOrEqual(now + 5);
  expect(payload.iat).toBeGreaterThan(now - 300);
  expect(payload.sub).toEqual(expect.any(String));
  if (expected.nonce !== undefined) expect(payload.nonce).toBe(expected.nonce);
  if (expected.accessToken !== undefined && payload.at_hash !== undefined)
    expect(payload.at_hash).toBe(leftHalfHash(expected.accessToken, String(header.alg)));
  return payload;
}

/** `at_hash`/`c_hash` of OIDC Core 1.0 §3.1.3.6 for the signing algorithm `alg`. */
export function leftHalfHash(value: string, alg: string): string {
  const bits = alg.endsWith('384') ? '384' : alg.endsWith('512') ? '512' : '256';
  const digest = createHash(`sha${bits}`).update(value).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

export interface SignedIn {
  browser: Browser;
  authorization: Authorization;
  callback: URL;
  nonce: string;
  tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
}

/**
 * Starts an authorization request with a nonce in `browser` and follows it to the callback,
 * signing `person` in through the form when the provider shows it.
 */
export async function authorize(
  client: TestClient,
  person: TestAccount,
  params: Record<string, string> = {},
  browser = new Browser(),
): Promise<{ authorization: Authorization; callback: URL; nonce: string; formShown: boolean }> {
  const nonce = oidc.randomNonce();
  const authorization = await authorizationRequest(client, { nonce, ...params });
  const site: Site = 'cross-site';
  const result = await browser.visit(authorization.url.href, client.redirectUri, {}, site);
  if (result instanceof URL) return { authorization, callback: result, nonce, formShown: false };

  expect(result.document.querySelector('#password')).not.toBeNull();
  const callback = asRedirect(
    await browser.submit(result, credentials(person), client.redirectUri),
  );
  return { authorization, callback, nonce, formShown: true };
}

/** Exchanges a callback's code with the checks of state, nonce and PKCE. */
export function redeem(
  client: TestClient,
  flow: { authorization: Authorization; callback: URL; nonce: string },
) {
  return oidc.authorizationCodeGrant(client.config, flow.callback, {
    pkceCodeVerifier: flow.authorization.verifier,
    expectedState: flow.authorization.state,
    expectedNonce: flow.nonce,
  });
}

/** Signs `person` in and redeems the code: the browser then holds a session. */
export async function signIn(
  client: TestClient,
  person: TestAccount,
  params: Record<string, string> = {},
  browser = new Browser(),
): Promise<SignedIn & { formShown: boolean }> {
  const flow = await authorize(client, person, params, browser);
  const tokens = await redeem(client, flow);
  return { browser, ...flow, tokens };
}

/**
 * Moves the sign-in time of `accountId`'s sessions `seconds` into the past, as the passing
 * of time would have (the provider stores it as `loginTs` in the session payload).
 */
export async function backdateSessions(
  test: TestServer,
  accountId: string,
  seconds: number,
): Promise<void> {
  const sessions = test.services.db.collection<{ _id: string; data: string }>('oidc_session');
  const stored = await sessions.find({ accountId }).toArray();
  expect(stored.length).toBeGreaterThan(0);
  for (const record of stored) {
    const payload = JSON.parse(record.data) as { loginTs: number };
    payload.loginTs -= seconds;
    await sessions.updateOne({ _id: record._id }, { $set: { data: JSON.stringify(payload) } });
  }
}

/** The OAuth error of a redirect to the relying party's callback. */
export const callbackError = (callback: URL) => ({
  error: callback.searchParams.get('error'),
  state: callback.searchParams.get('state'),
  code: callback.searchParams.get('code'),
});
