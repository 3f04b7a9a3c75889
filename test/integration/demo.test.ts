/**
 * The demo relying party at `/demo` and its seed, as a new user meets them after
 * `npm start`: restarts on another port, an interrupted first start, several tabs, the
 * claims page and the errors a callback can carry.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';

import { afterEach, describe, expect, it } from '@jest/globals';

import { freePort } from '../../src/db/ferretdb.ts';
import { DEMO_CLIENT_ID } from '../../src/demo/relying-party.ts';
import { seedDemo, type DemoSeed } from '../../src/demo/seed.ts';
import { collectionName } from '../../src/oidc/adapter.ts';
import { asPage, Browser, rawRequest, text, type Page } from '../support/browser.ts';
import { messages } from '../support/flows.ts';
import { newDatabaseName, startTestServer, system, type TestServer } from '../support/server.ts';

interface DemoServer extends TestServer {
  seed: DemoSeed;
}

/** The demo tenant that README.md names. */
const DEMO_TENANT = { id: '05999999', name: 'Demo-Kommune' };
const running: DemoServer[] = [];

/** What `npm start` does with the demo enabled, on `database` and a fresh port. */
async function startDemo(
  database = newDatabaseName(),
  env: Record<string, string> = {},
): Promise<DemoServer> {
  const server = await startTestServer({ DEMO_SEED: 'true', ...env }, { database, demo: true });
  const demo: DemoServer = {
    ...server,
    seed: await seedDemo(server.services),
    stop: async () => {
      running.splice(running.indexOf(demo), 1);
      await server.stop();
    },
  };
  running.push(demo);
  return demo;
}

afterEach(async () => {
  for (const demo of [...running].reverse()) {
    await demo.services.db.dropDatabase().catch(() => {});
    await demo.stop();
  }
});

const password = (demo: DemoServer, username: string) =>
  demo.seed.admins.find((admin) => admin.username === username)!.initialPassword;

async function storedDemoClient(demo: DemoServer) {
  const record = await demo.services.db
    .collection(collectionName('Client'))
    .findOne({ _id: DEMO_CLIENT_ID as never });
  return JSON.parse((record as unknown as { data: string }).data) as {
    redirect_uris: string[];
    post_logout_redirect_uris: string[];
  };
}

/** Opens `/demo/login` in `browser` and follows it to the provider's sign-in page. */
async function openDemoLogin(demo: DemoServer, browser: Browser): Promise<Page> {
  return asPage(await browser.visit(`${demo.issuer}/demo/login`));
}

/** The state of the authorization request that `/demo/login` starts, without following it. */
async function startedState(demo: DemoServer, browser: Browser): Promise<string> {
  const response = await browser.request(`${demo.issuer}/demo/login`);
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location')!).searchParams.get('state')!;
}

/** An account of the demo tenant with a password of its own, so no change step follows. */
async function demoAccount(demo: DemoServer, permissions = ['meldeverfahren']) {
  const username = `user${randomBytes(3).toString('hex')}`;
  const { account } = await demo.services.accounts.create(
    {
      tenantId: DEMO_TENANT.id,
      username,
      givenName: 'Erika',
      familyName: 'Mustermann',
      permissions,
      roles: [],
    },
    system,
  );
  const own = `Kennwort-${randomBytes(4).toString('hex')}x!1`;
  await demo.services.accounts.changePassword(
    account._id,
    { newPassword: own, confirmation: own },
    system,
  );
  return { tenant: DEMO_TENANT.id, username, password: own };
}

/** The claims table of the demo page, claim name → shown value. */
function shownClaims(page: Page): Record<string, string> {
  return Object.fromEntries(
    page.document
      .querySelectorAll('table.claims tbody tr')
      .map((row) => [
        row.querySelector('th')!.textContent.trim(),
        row.querySelector('td')!.textContent.trim(),
      ]),
  );
}

/** A GET of `path` on the loopback `port`, with a Host header or source address of its own. */
const rawGet = (
  port: number,
  path: string,
  options: { host?: string; localAddress?: string } = {},
) => rawRequest(`http://127.0.0.1:${port}${path}`, options);

/** An address of this machine that is not loopback, to send a request from. */
function otherAddress(): string {
  const address = Object.values(os.networkInterfaces())
    .flat()
    .find((candidate) => candidate?.family === 'IPv4' && !candidate.internal)?.address;
  if (!address) throw new Error('this machine has no IPv4 address besides loopback');
  return address;
}

const loginLink = (page: Page) => page.document.querySelector('a[href="/demo/login"]');

describe('demo seed', () => {
  it('follows the current issuer with the demo client after a restart on another port', async () => {
    const database = newDatabaseName();
    const first = await startDemo(database);
    await first.stop();

    const second = await startDemo(database);
    expect(second.issuer).not.toBe(first.issuer);
    expect(await storedDemoClient(second)).toMatchObject({
      redirect_uris: [`${second.issuer}/demo/callback`],
      post_logout_redirect_uris: [`${second.issuer}/demo`],
    });
    const login = await openDemoLogin(second, new Browser());
    expect(text(login)).not.toContain(messages.invalidRedirectUri);
    expect(login.document.querySelector('#username')).not.toBeNull();
  });

  it('creates the demo client and admins when a first start stopped after the tenant', async () => {
    const database = newDatabaseName();
    const interrupted = await startDemo(database);
    await interrupted.services.db.collection('accounts').deleteMany({});
    await interrupted.services.db.collection(collectionName('Client')).deleteMany({});
    await interrupted.stop();

    const restart = await startDemo(database);
    expect(restart.seed.admins.map((admin) => admin.username)).toEqual(['admin1', 'admin2']);
    expect(await restart.services.accounts.findByUsername(DEMO_TENANT.id, 'admin2')).toMatchObject({
      roles: ['local_admin'],
      state: 'active',
    });
    expect(await storedDemoClient(restart)).toMatchObject({
      redirect_uris: [`${restart.issuer}/demo/callback`],
    });
  });

  it('creates only the missing demo admin and returns only its one-time password', async () => {
    const database = newDatabaseName();
    const first = await startDemo(database);
    expect(first.seed.admins).toHaveLength(2);
    await first.services.db.collection('accounts').deleteOne({ username: 'admin2' });
    await first.stop();

    const restart = await startDemo(database);
    expect(restart.seed.admins).toEqual([
      { username: 'admin2', initialPassword: expect.any(String) },
    ]);
    await restart.stop();

    const again = await startDemo(database);
    expect(again.seed.admins).toEqual([]);
    expect(await again.services.db.collection('tenants').countDocuments()).toBe(1);
  });

  it('gives the demo admins invented e-mail addresses', async () => {
    const demo = await startDemo();
    expect(await demo.services.accounts.findByUsername(DEMO_TENANT.id, 'admin1')).toMatchObject({
      email: 'admin1@demo-kommune.example',
    });
    expect(await demo.services.accounts.findByUsername(DEMO_TENANT.id, 'admin2')).toMatchObject({
      email: 'admin2@demo-kommune.example',
    });
  });
});

describe('demo on loopback only', () => {
  it('seeds nothing for an issuer that is not loopback and refuses the demo pages', async () => {
    const port = await freePort();
    const demo = await startDemo(newDatabaseName(), {
      PORT: String(port),
      ISSUER: `https://idp.example.test:${port}`,
      TRUST_PROXY: '1',
    });
    expect(demo.seed).toEqual({ tenant: DEMO_TENANT, admins: [], url: undefined });
    expect(await demo.services.clients.exists(DEMO_CLIENT_ID)).toBe(false);
    expect(await demo.services.db.collection('accounts').countDocuments()).toBe(0);

    const page = await rawGet(port, '/demo/login', { host: `idp.example.test:${port}` });
    expect(page.status).toBe(403);
    expect(page.body).toContain('Die Demo-Anwendung ist nur auf dem Rechner erreichbar');
    const discovery = await rawGet(port, '/.well-known/openid-configuration', {
      host: `idp.example.test:${port}`,
    });
    expect(discovery.status).toBe(200);
  });

  it('refuses the demo pages to a request from another address', async () => {
    const demo = await startDemo();
    const port = Number(new URL(demo.issuer).port);
    expect((await rawGet(port, '/demo')).status).toBe(200);

    const page = await rawGet(port, '/demo/login', { localAddress: otherAddress() });
    expect(page.status).toBe(403);
    expect(page.body).toContain('Die Demo-Anwendung ist nur auf dem Rechner erreichbar');
  });
});

describe('demo relying party', () => {
  it('signs a demo admin in and shows the e-mail claim and readable German times', async () => {
    const demo = await startDemo();
    const browser = new Browser();
    const login = await openDemoLogin(demo, browser);
    const change = asPage(
      await browser.submit(login, {
        tenant: 'Demo-Kommune',
        username: 'admin1',
        password: password(demo, 'admin1'),
      }),
    );
    const page = asPage(
      await browser.submit(change, {
        new_password: 'Rhein-Kennwort-1!',
        new_password_confirm: 'Rhein-Kennwort-1!',
      }),
    );

    expect(page.status).toBe(200);
    expect(new URL(page.url).pathname).toBe('/demo/callback');
    const claims = shownClaims(page);
    expect(claims.email).toBe('admin1@demo-kommune.example');
    const germanTime = /^(\d+) \((\d{2})\.(\d{2})\.(\d{4}), (\d{2}):(\d{2}):(\d{2}) MES?Z\)$/;
    for (const name of ['exp', 'iat']) {
      const [, seconds, day, month, year] = germanTime.exec(claims[name] ?? '') ?? [];
      expect(seconds).toBeDefined();
      const date = new Date(Number(seconds) * 1000);
      const berlin = new Intl.DateTimeFormat('de-DE', {
        timeZone: 'Europe/Berlin',
        day: '2-digit',
        month: '2-digit',
        year: 'numeric',
      }).format(date);
      expect(`${day}.${month}.${year}`).toBe(berlin);
    }
  });

  it('completes the sign-ins of two tabs that both opened /demo/login', async () => {
    const demo = await startDemo();
    const person = await demoAccount(demo);
    const browser = new Browser();
    const firstTab = await openDemoLogin(demo, browser);
    const secondTab = await openDemoLogin(demo, browser);

    const first = asPage(await browser.submit(firstTab, person));
    expect(text(first)).not.toContain('server_error');
    expect(shownClaims(first).preferred_username).toBe(person.username);

    const second = asPage(await browser.submit(secondTab, person));
    expect(shownClaims(second).preferred_username).toBe(person.username);
  });

  it('keeps the last five pending sign-ins and tells a forgotten one to start again', async () => {
    const demo = await startDemo();
    const browser = new Browser();
    const states = [];
    for (let tab = 0; tab < 6; tab += 1) states.push(await startedState(demo, browser));

    const iss = encodeURIComponent(demo.issuer);
    const forgotten = asPage(
      await browser.visit(`${demo.issuer}/demo/callback?code=abc&state=${states[0]}&iss=${iss}`),
    );
    expect(forgotten.status).toBe(400);
    expect(text(forgotten)).toContain('Diese Anmeldung ist der Demo-Anwendung nicht bekannt');
    expect(text(forgotten)).not.toContain('server_error');
    expect(loginLink(forgotten)).not.toBeNull();

    const kept = asPage(
      await browser.visit(`${demo.issuer}/demo/callback?code=abc&state=${states[1]}&iss=${iss}`),
    );
    expect(kept.status).toBe(400);
    expect(text(kept)).toContain('Der Anmeldecode wurde vom Identitätsanbieter abgelehnt');
  });

  it('tells a callback with an unknown state to start again, in German, never server_error', async () => {
    const demo = await startDemo();
    const page = asPage(
      await new Browser().visit(`${demo.issuer}/demo/callback?code=abc&state=unbekannt`),
    );

    expect(page.status).toBe(400);
    expect(new URL(page.url).pathname).toBe('/demo/callback');
    expect(text(page)).toContain('Diese Anmeldung ist der Demo-Anwendung nicht bekannt');
    expect(text(page)).not.toContain('server_error');
    expect(loginLink(page)).not.toBeNull();
  });

  it('shows an error the provider sent to the callback instead of redirecting to /demo', async () => {
    const demo = await startDemo();
    const page = asPage(
      await new Browser().visit(`${demo.issuer}/demo/callback?error=access_denied&state=x`),
    );

    expect(page.status).toBe(400);
    expect(new URL(page.url).pathname).toBe('/demo/callback');
    expect(text(page)).toContain('Das Konto hat keine der Berechtigungen');
    expect(loginLink(page)).not.toBeNull();
  });

  it('shows access_denied for an account without permissions in German on the demo page', async () => {
    const demo = await startDemo();
    const person = await demoAccount(demo, []);
    const browser = new Browser();
    const page = asPage(await browser.submit(await openDemoLogin(demo, browser), person));

    expect(page.status).toBe(400);
    expect(new URL(page.url).pathname).toBe('/demo/callback');
    expect(text(page)).toContain('Das Konto hat keine der Berechtigungen');
  });

  it('shows a failed token exchange in German on the demo page', async () => {
    const demo = await startDemo();
    const browser = new Browser();
    const state = await startedState(demo, browser);
    const iss = encodeURIComponent(demo.issuer);
    const page = asPage(
      await browser.visit(`${demo.issuer}/demo/callback?code=falsch&state=${state}&iss=${iss}`),
    );

    expect(page.status).toBe(400);
    expect(text(page)).toContain('Der Anmeldecode wurde vom Identitätsanbieter abgelehnt');
    expect(text(page)).toContain('invalid_grant');
    expect(loginLink(page)).not.toBeNull();
  });
});
