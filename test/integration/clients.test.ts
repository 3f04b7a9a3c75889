/**
 * Registering relying parties: only redirect URIs that the provider can compare exactly and
 * safely are stored (RFC 6749 §3.1.2, RFC 9700 §4.1), and only visible client names, since
 * the German sign-in page shows the name ("Anmeldung für: …").
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';

import { asPage, authorizationRequest, Browser } from '../support/browser.ts';
import { startTestServer, system, type TestServer } from '../support/server.ts';

let test: TestServer;

beforeAll(async () => {
  test = await startTestServer();
});
afterAll(() => test.close());

let clientCounter = 0;
const nextClientId = () => `rp-${(clientCounter += 1)}`;

/** The reason codes of a refused registration, by field; undefined when it was stored. */
async function refusal(fields: Record<string, unknown>) {
  const clientId = nextClientId();
  const input = { clientId, redirectUris: ['https://rp.example.test/cb'], ...fields };
  const refused = await test.services.clients
    .add(input, system)
    .then(() => undefined)
    .catch((error: { fields?: Record<string, string[]> }) => error.fields ?? error);
  if (refused !== undefined) expect(await test.services.clients.exists(clientId)).toBe(false);
  return refused;
}

describe('redirect URIs', () => {
  it('accepts https URIs and plain http only on a loopback host', async () => {
    const uris = [
      'https://meldung.example/callback',
      'https://meldung.example:8443/callback?tenant=05158',
      `https://meldung.example/${'a'.repeat(2000 - 'https://meldung.example/'.length)}`,
      'http://localhost:8080/callback',
      'http://127.0.0.1:8080/callback',
      'http://[::1]:8080/callback',
    ];
    expect(await refusal({ redirectUris: uris, postLogoutRedirectUris: uris })).toBeUndefined();
  });

  it.each([
    ['a wildcard host', 'https://*.meldung.example/cb', 'redirect_uri.wildcard'],
    ['a wildcard host, percent-encoded', 'https://%2A.meldung.example/cb', 'redirect_uri.wildcard'],
    ['a wildcard path', 'https://meldung.example/*', 'redirect_uri.wildcard'],
    ['a URI of 10 kB', `https://meldung.example/${'a'.repeat(10_000)}`, 'redirect_uri.too_long'],
    [
      'a URI of 2001 characters',
      `https://meldung.example/${'a'.repeat(1977)}`,
      'redirect_uri.too_long',
    ],
    ['a fragment', 'https://meldung.example/cb#top', 'redirect_uri.fragment'],
    ['an empty fragment', 'https://meldung.example/cb#', 'redirect_uri.fragment'],
    ['user and password', 'https://user:pass@meldung.example/cb', 'redirect_uri.userinfo'],
    [
      'a user name before the host',
      'https://rp.example.test@evil.example/cb',
      'redirect_uri.userinfo',
    ],
    ['plain http', 'http://meldung.example/cb', 'redirect_uri.insecure'],
    [
      'http on a look-alike of localhost',
      'http://localhost.evil.example/cb',
      'redirect_uri.insecure',
    ],
    ['another scheme', 'ftp://meldung.example/cb', 'redirect_uri.insecure'],
    ['a relative reference', '/cb', 'redirect_uri.invalid'],
    ['no slashes after the scheme', 'https:meldung.example/cb', 'redirect_uri.invalid'],
    ['a leading space', ' https://meldung.example/cb', 'redirect_uri.invalid'],
    ['a tab', 'https://meldung.example/c\tb', 'redirect_uri.invalid'],
  ])('refuses %s as redirect and post-logout URI', async (_name, uri, code) => {
    expect(await refusal({ redirectUris: [uri] })).toEqual({ redirectUris: [code] });
    expect(await refusal({ postLogoutRedirectUris: [uri] })).toEqual({
      postLogoutRedirectUris: [code],
    });
  });

  it('stores nothing when one URI of several is refused', async () => {
    expect(
      await refusal({
        redirectUris: ['https://meldung.example/cb', 'https://*.meldung.example/cb'],
        postLogoutRedirectUris: ['https://meldung.example/'],
      }),
    ).toEqual({ redirectUris: ['redirect_uri.wildcard'] });
  });
});

describe('client names', () => {
  it.each([
    ['a right-to-left override', 'Meldeverfahren\u202e', 'client_name.invalid_characters'],
    ['a zero-width space', 'Melde\u200bverfahren', 'client_name.invalid_characters'],
    ['a control character', 'Melde\u0007verfahren', 'client_name.invalid_characters'],
    ['only white space', '   ', 'client_name.required'],
    ['101 characters', 'M'.repeat(101), 'client_name.too_long'],
  ])('refuses a name with %s', async (_name, clientName, code) => {
    expect(await refusal({ clientName })).toEqual({ clientName: [code] });
  });

  it('shows an accepted name on the sign-in page, trimmed and composed (NFC)', async () => {
    const clientId = nextClientId();
    const redirectUri = 'https://rp.example.test/cb';
    await test.services.clients.add(
      {
        clientId,
        clientName: '  Flu\u0308AG-Meldeverfahren ',
        redirectUris: [redirectUri],
        public: true,
      },
      system,
    );
    const config = await oidc.discovery(new URL(test.issuer), clientId, undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const client = {
      clientId,
      clientSecret: undefined,
      redirectUri,
      postLogoutRedirectUri: '',
      config,
    };

    const login = asPage(await new Browser().visit((await authorizationRequest(client)).url.href));
    expect(login.document.querySelector('.client')?.textContent).toBe(
      'Anmeldung für: FlüAG-Meldeverfahren',
    );
  });
});
