/**
 * The example relying party of examples/meldeverfahren-rp, run against a real server as the
 * relying-party guide describes it: registered with the CLI, signed in through the pages,
 * its API fed with the JWT access token, refreshed and signed out.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { importJWK, SignJWT, type JWK } from 'jose';

import {
  startRelyingParty,
  type RunningRelyingParty,
} from '../../examples/meldeverfahren-rp/app.ts';
import { freePort } from '../../src/db/ferretdb.ts';
import { asPage, asRedirect, Browser, exchange, type Page } from '../support/browser.ts';
import { credentials, openSignIn } from '../support/flows.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestServer,
} from '../support/server.ts';

const root = path.resolve(import.meta.dirname, '../..');

function cli(test: TestServer, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/flueag-idp.js'), ...args],
      {
        env: {
          ...process.env,
          MONGODB_URI: test.databaseUri,
          DATA_DIR: test.dataDir,
          LOG_LEVEL: 'warn',
        },
        cwd: root,
      },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

const cell = (page: Page, name: string) =>
  page.document
    .querySelectorAll('tr')
    .find((row) => row.querySelector('th')?.textContent === name)
    ?.querySelector('td')?.textContent;

describe('example relying party', () => {
  let test: TestServer;
  let rp: RunningRelyingParty;
  let tenantId: string;

  beforeAll(async () => {
    test = await startTestServer();
    tenantId = (await createTenant(test, '05111000', 'Düsseldorf')).id;
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const registered = await cli(
      test,
      '--json',
      'client',
      'add',
      'meldeverfahren',
      '--name',
      'FlüAG-Meldeverfahren',
      '--redirect-uri',
      `${baseUrl}/callback`,
      '--post-logout-redirect-uri',
      `${baseUrl}/`,
    );
    expect(registered.code).toBe(0);
    const { client_secret } = JSON.parse(registered.stdout) as { client_secret: string };
    rp = await startRelyingParty({
      issuer: test.issuer,
      clientId: 'meldeverfahren',
      clientSecret: client_secret,
      baseUrl,
      apiResource: test.services.config.reportingApiResource,
      port,
      host: '127.0.0.1',
    });
  });

  afterAll(async () => {
    await rp?.close();
    await test?.close();
  });

  /** Signs `person` in through the relying party's link; returns its start page. */
  async function signIn(browser: Browser, person: Awaited<ReturnType<typeof createAccount>>) {
    expect(asPage(await browser.visit(`${rp.url}/`)).html).toContain('href="/login"');
    const login = asPage(await browser.visit(`${rp.url}/login`));
    expect(new URL(login.url).origin).toBe(test.issuer);
    return asPage(await browser.submit(login, credentials(person)));
  }

  it('signs in, shows tenant and permissions, calls its API, refreshes and signs out', async () => {
    const person = await createAccount(test, tenantId, { givenName: 'Frieda', familyName: 'Leer' });
    const browser = new Browser();

    const home = await signIn(browser, person);
    expect(home.url).toBe(`${rp.url}/`);
    expect(cell(home, 'name')).toBe('"Frieda Leer"');
    expect(cell(home, 'tenant_id')).toBe('"05111000"');
    expect(cell(home, 'tenant_name')).toBe('"Düsseldorf"');
    expect(cell(home, 'permissions')).toBe('["meldeverfahren","zahlungsmitteilungen"]');

    const report = asPage(await browser.visit(`${rp.url}/meldungen`));
    expect(report.html).toContain('&#34;status&#34;:200');
    expect(report.html).toContain('&#34;tenant_id&#34;:&#34;05111000&#34;');

    const refreshed = asPage(await browser.submit(home, {}, undefined, 'form[action="/refresh"]'));
    expect(refreshed.url).toBe(`${rp.url}/`);
    expect(asPage(await browser.visit(`${rp.url}/meldungen`)).html).toContain(
      '&#34;status&#34;:200',
    );

    const confirm = asPage(
      await browser.submit(refreshed, {}, undefined, 'form[action="/logout"]'),
    );
    expect(new URL(confirm.url).origin).toBe(test.issuer);
    const loggedOut = asPage(await browser.submit(confirm, { logout: 'yes' }));
    expect(loggedOut.url).toBe(`${rp.url}/`);
    expect(loggedOut.html).toContain('href="/login"');
    const again = asPage(await browser.visit(`${rp.url}/login`));
    expect(again.document.querySelector('input[name=password]')).not.toBeNull();
  });

  it('has its API refuse a token without the permission, and no token at all', async () => {
    const person = await createAccount(test, tenantId, { permissions: ['zahlungsmitteilungen'] });
    const browser = new Browser();
    const home = await signIn(browser, person);
    expect(cell(home, 'permissions')).toBe('["zahlungsmitteilungen"]');

    const report = asPage(await browser.visit(`${rp.url}/meldungen`));
    expect(report.html).toContain('&#34;status&#34;:403');
    expect(report.html).toContain('insufficient_scope');

    const anonymous = await fetch(`${rp.url}/api/meldungen`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  });

  it('has its API take the JWT access token and refuse the ID token in its place', async () => {
    const client = await createClient(test);
    const person = await createAccount(test, tenantId);
    const resource = test.services.config.reportingApiResource;
    const { browser, authorization, login } = await openSignIn(client, {
      scope: 'openid meldeverfahren',
      resource,
    });
    const callback = asRedirect(
      await browser.submit(login, credentials(person), client.redirectUri),
    );
    const tokens = await exchange(client, authorization, callback, { resource });
    const call = (token: string) =>
      fetch(`${rp.url}/api/meldungen`, { headers: { authorization: `Bearer ${token}` } });

    expect(await (await call(tokens.access_token)).json()).toMatchObject({
      tenant_id: '05111000',
      sub: person.account._id,
      permissions: ['meldeverfahren'],
    });
    const withIdToken = await call(tokens.id_token!);
    expect(withIdToken.status).toBe(401);
    expect(await withIdToken.json()).toMatchObject({ error: 'invalid_token' });
  });

  it("has its API refuse tokens signed with the provider's own keys whose header or claims are off", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: test.issuer,
      aud: test.services.config.reportingApiResource,
      sub: 'forged-subject',
      client_id: 'meldeverfahren',
      scope: 'openid meldeverfahren',
      tenant_id: tenantId,
      permissions: ['meldeverfahren'],
      iat: now,
      exp: now + 600,
    };
    const signed = async (payload: Record<string, unknown>, kty = 'EC') => {
      const { jwk } = test.services.keys.signingKeys.find(
        (key) => key.state === 'signing' && key.jwk.kty === kty,
      )!;
      const alg = kty === 'EC' ? 'ES256' : 'RS256';
      return new SignJWT(payload)
        .setProtectedHeader({ alg, kid: jwk.kid, typ: 'at+jwt' })
        .sign(await importJWK(jwk as JWK, alg));
    };
    const status = async (token: string) =>
      (await fetch(`${rp.url}/api/meldungen`, { headers: { authorization: `Bearer ${token}` } }))
        .status;

    // The same claims, well formed, pass: each refusal below is for its one difference.
    expect(await status(await signed(claims))).toBe(200);
    const { tenant_id: _omitted, ...withoutTenant } = claims;
    const refused = {
      'RS256 instead of ES256': await signed(claims, 'RSA'),
      'permissions as a string': await signed({ ...claims, permissions: 'xxmeldeverfahrenxx' }),
      'no tenant_id': await signed(withoutTenant),
      'scope as a number': await signed({ ...claims, scope: 42 }),
      'iat an hour ahead': await signed({ ...claims, iat: now + 3600, exp: now + 4200 }),
      'exp ten years ahead': await signed({ ...claims, exp: now + 10 * 365 * 86400 }),
      'tenant_id empty': await signed({ ...claims, tenant_id: '' }),
    };
    for (const [difference, token] of Object.entries(refused))
      expect([difference, await status(token)]).toEqual([difference, 401]);
  });

  it('answers a request target that is no URL with 400 and keeps serving', async () => {
    const port = new URL(rp.url).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () =>
        socket.end('GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
      );
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('end', () => resolve(received));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect((await fetch(`${rp.url}/`)).status).toBe(200);
  });
});
