/**
 * Arbitrary input at the protocol endpoints: every parameter of the authorization request,
 * and the bodies of the token, introspection and revocation endpoints. The authorization
 * endpoint answers with a German page or a redirect to a registered address; the others
 * with an RFC 6749 error document; none with a 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import {
  answer,
  encodeFields,
  expectGermanPage,
  expectNoFault,
  expectOAuthError,
  fieldValue,
  queryValue,
  runs,
  type FieldValue,
} from '../support/property.ts';
import { startWithClient, type TestClient, type TestServer } from '../support/server.ts';

let test: TestServer;
let client: TestClient;
let endpoints: Record<string, string>;

beforeAll(async () => {
  ({ test, client } = await startWithClient());
  const discovery = client.config.serverMetadata();
  endpoints = {
    token: discovery.token_endpoint!,
    introspection: discovery.introspection_endpoint!,
    revocation: discovery.revocation_endpoint!,
  };
});
afterAll(() => test.close());

const echoes = (fields: Record<string, FieldValue>) =>
  Object.values(fields).flatMap((field) => (field.kind === 'text' ? field.values : []));

/** A parameter: mostly a valid value, else anything. */
const parameter = (...valid: string[]) =>
  fieldValue(valid.length === 0 ? queryValue : fc.oneof(fc.constantFrom(...valid), queryValue));

describe('the authorization endpoint', () => {
  it('answers any parameters with a German page or a redirect to the registered address', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          client_id: parameter(client.clientId),
          redirect_uri: parameter(client.redirectUri),
          response_type: parameter('code', 'token', 'id_token'),
          scope: parameter('openid', 'openid profile meldeverfahren', 'openid offline_access'),
          state: parameter(),
          nonce: parameter(),
          code_challenge: parameter('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'),
          code_challenge_method: parameter('S256', 'plain'),
          prompt: parameter('login', 'none', 'consent'),
          max_age: parameter('0', '60'),
          ui_locales: parameter('de', 'en'),
          login_hint: parameter(),
          claims: parameter('{"userinfo":{"email":null}}'),
          response_mode: parameter('query', 'fragment', 'form_post'),
          resource: parameter(),
          request: parameter(),
        }),
        async (fields) => {
          const response = await fetch(`${test.issuer}/auth?${encodeFields(fields)}`, {
            redirect: 'manual',
            headers: { accept: 'text/html' },
          });
          const reply = await answer(response);
          expectNoFault(reply, echoes(fields));
          if (reply.status >= 300 && reply.status < 400) {
            // To our own sign-in, or to the one registered address with the answer.
            const location = new URL(response.headers.get('location')!, test.issuer);
            const own = location.origin === test.issuer;
            const registered = [`${client.redirectUri}?`, `${client.redirectUri}#`].some((start) =>
              location.href.startsWith(start),
            );
            expect(own || registered).toBe(true);
            return;
          }
          if (/<form method="post" action="https:/.test(reply.body)) {
            // response_mode=form_post: the answer goes to the registered address only.
            expect(reply.body).toContain(`action="${client.redirectUri}"`);
            return;
          }
          expect(reply.status === 400 || reply.status === 431).toBe(true);
          expectGermanPage(reply, echoes(fields));
        },
      ),
      runs('authorization parameters', 60),
    );
  }, 120_000);
});

describe('the token, introspection and revocation endpoints', () => {
  it('answer any body with an OAuth error document', async () => {
    const basic = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('token', 'introspection', 'revocation'),
        fc.record({
          grant_type: parameter(
            'authorization_code',
            'refresh_token',
            'client_credentials',
            'password',
          ),
          code: parameter(),
          refresh_token: parameter(),
          redirect_uri: parameter(client.redirectUri),
          code_verifier: parameter(),
          token: parameter(),
          token_type_hint: parameter('access_token', 'refresh_token'),
          scope: parameter('openid'),
          client_id: parameter(client.clientId),
          resource: parameter(),
        }),
        fc.boolean(),
        async (endpoint, fields, authenticated) => {
          const response = await fetch(endpoints[endpoint]!, {
            method: 'POST',
            headers: {
              accept: 'application/json',
              'content-type': 'application/x-www-form-urlencoded',
              ...(authenticated ? { authorization: basic } : {}),
            },
            body: encodeFields(fields),
          });
          const reply = await answer(response);
          if (reply.status === 200) {
            // Introspection of an unknown token, revocation of one: nothing to tell.
            expect(endpoint).not.toBe('token');
            expectNoFault(reply, echoes(fields));
            if (endpoint === 'introspection')
              expect(JSON.parse(reply.body)).toEqual({ active: false });
            return;
          }
          expectOAuthError({ ...reply, body: reply.body });
        },
      ),
      runs('token endpoint bodies', 60),
    );
  }, 120_000);
});
