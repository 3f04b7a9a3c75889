/**
 * Every page a browser can reach is a German page with the support contacts, also for
 * unknown addresses and for a reloaded form address.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { asPage, asRedirect, Browser, text } from '../support/browser.ts';
import { credentials, openSignIn } from '../support/flows.ts';
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

describe('pages', () => {
  it('answers an unknown address with a German 404 page that names the help desk', async () => {
    const page = asPage(await new Browser().visit(`${test.issuer}/gibt-es-nicht`));
    expect(page.status).toBe(404);
    expect(page.document.querySelector('html')?.getAttribute('lang')).toBe('de');
    expect(text(page)).toContain('Die Seite wurde nicht gefunden.');
    expect(page.html).toContain(test.services.config.support.email);
  });

  it('shows the sign-in page again when the address of a refused post is reloaded', async () => {
    const person = await createAccount(test, tenantId);
    const { browser, login } = await openSignIn(client);
    const refused = asPage(await browser.submit(login, credentials(person, 'Falsch-1!')));
    expect(refused.url).toMatch(/\/login$/);

    const reloaded = asPage(await browser.visit(refused.url));
    expect(reloaded.status).toBe(200);
    expect(reloaded.document.querySelector('form')?.getAttribute('action')).toMatch(/\/login$/);
  });

  it('signs in from the first of two tabs that the relying party opened', async () => {
    const person = await createAccount(test, tenantId);
    const first = await openSignIn(client);
    const second = await openSignIn(client, {}, first.browser);
    expect(second.login.url).not.toBe(first.login.url);

    const callback = asRedirect(
      await first.browser.submit(first.login, credentials(person), client.redirectUri),
    );
    expect(callback.searchParams.get('state')).toBe(first.authorization.state);
    expect(callback.searchParams.get('code')).toBeTruthy();
  });

  it('answers a wrong method on an interaction route with a German page, not plain text', async () => {
    const { browser, login } = await openSignIn(client);
    const response = await browser.request(login.url.replace(/\/?$/, '/abort'), {
      method: 'DELETE',
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(await response.text()).toContain('Diese Seite kann so nicht aufgerufen werden.');
  });

  it.each(['/auth', '/session/end'])(
    'answers POST %s with 405 and the allowed method, since only GET is served',
    async (path) => {
      const response = await new Browser().request(`${test.issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `client_id=${client.clientId}`,
      });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD');
      expect(await response.text()).toContain('Diese Seite kann so nicht aufgerufen werden.');
    },
  );

  it('answers headers too large for the server with a German page (431), not an empty answer', async () => {
    const response = await fetch(`${test.issuer}/auth`, {
      headers: { accept: 'text/html', cookie: `big=${'x'.repeat(20_000)}` },
    });
    expect(response.status).toBe(431);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(await response.text()).toContain('Die Eingabe ist zu groß.');
  });
});
