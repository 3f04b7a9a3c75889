/**
 * Faults of the database and the end of the process (docs/operations.md, "Database
 * failover"): the database killed while requests are under way, every surface while it is
 * down, its return on the same port and files, and SIGTERM of the real process.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';

import { freePort, startFerretDB, type FerretDBProcess } from '../../src/db/ferretdb.ts';
import { Housekeeping } from '../../src/db/housekeeping.ts';
import { asPage, authorizationRequest, Browser, type Page } from '../support/browser.ts';
import { postForm, signInToConsole } from '../support/console.ts';
import {
  credentials,
  formOf,
  messages,
  openSignIn,
  signInForTokens,
  storedAccount,
  type SignInPage,
} from '../support/flows.ts';
import { sample, scrape } from '../support/metrics.ts';
import {
  createAccount,
  createClient,
  createTenant,
  startTestServer,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

/** No request may take longer than this while the database is down. */
const ANSWER_BOUND_MS = 20_000;
/** Readiness and a full sign-in must be back this soon after the database listens again. */
const RECOVERY_BOUND_MS = 30_000;

const root = path.resolve(import.meta.dirname, '../..');
const passwordForm = 'form[action="/account/password"]';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  status: number;
  retryAfter: string | null;
  type: string;
  body: string;
  ms: number;
}

/** Sends a request and reads its whole answer, timed. */
async function answer(request: () => Promise<Response>): Promise<Answer> {
  const started = performance.now();
  const response = await request();
  const body = await response.text();
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    type: response.headers.get('content-type') ?? '',
    body,
    ms: performance.now() - started,
  };
}

/** No internals: no driver error, no system error code, no path, no stack frame. */
const internals = /Mongo|ECONNREFUSED|node_modules|\.ts:\d+|\n\s*at \S+ \(/;

function expectRefusal(refusal: Answer, type: RegExp) {
  expect({ status: refusal.status, type: refusal.type }).toEqual({
    status: 503,
    type: expect.stringMatching(type),
  });
  expect(Number(refusal.retryAfter)).toBeGreaterThan(0);
  expect(refusal.body).not.toMatch(internals);
  expect(refusal.ms).toBeLessThan(ANSWER_BOUND_MS);
}

/** The German page that says the service is temporarily unavailable. */
function expectUnavailablePage(refusal: Answer) {
  expectRefusal(refusal, /^text\/html/);
  expect(refusal.body).toContain(messages.unavailable);
}

/** The RFC 6749 error document of the provider's JSON endpoints. */
function expectUnavailableError(refusal: Answer) {
  expectRefusal(refusal, /^application\/json/);
  expect(JSON.parse(refusal.body)).toMatchObject({ error: 'temporarily_unavailable' });
}

/** The RFC 9457 problem document of the admin API. */
function expectUnavailableProblem(refusal: Answer) {
  expectRefusal(refusal, /^application\/problem\+json/);
  expect(JSON.parse(refusal.body)).toMatchObject({
    status: 503,
    code: 'service.unavailable',
    type: 'urn:flueag-idp:problem:service.unavailable',
    title: 'Vorübergehend nicht verfügbar',
    detail: messages.unavailable,
  });
}

const basic = (client: TestClient) =>
  `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;

/** A form post of the token endpoint family, authenticated as `client`. */
const clientPost = (url: string, client: TestClient, fields: Record<string, string>) =>
  fetch(url, {
    method: 'POST',
    headers: {
      authorization: basic(client),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(fields),
  });

/** Submits the sign-in form of `pending` as `person`, without following the redirect. */
function submitSignIn(pending: SignInPage, person: TestAccount, password = person.password) {
  const { action, hidden } = formOf(pending.login);
  return pending.browser.request(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...hidden, ...credentials(person, password) }),
  });
}

describe('a database that goes away and comes back', () => {
  let dir: string;
  let database: FerretDBProcess;
  let test: TestServer;
  let client: TestClient;
  let tenantId: string;
  let admin: TestAccount;
  let person: TestAccount;
  let staff: TestAccount[];
  let adminToken: string;
  let refreshToken: string;
  let accountConsole: { browser: Browser; page: Page };
  let pendingPage: SignInPage;
  let pendingPost: SignInPage;
  let inFlightSignIns: SignInPage[];

  /** The password `person` changed to right before the database was killed. */
  const confirmedPassword = 'Neu-Kennwort-vor-dem-Ausfall-7!';
  let killedAt: Date | undefined;
  /** An access token of `person`, issued after the database came back. */
  let accessToken: string;
  /** Names that the admin API confirmed, by account id. */
  const confirmedNames = new Map<string, string>();

  const api = (route: string, init: RequestInit = {}) =>
    fetch(`${test.issuer}/admin/api${route}`, {
      ...init,
      headers: {
        accept: 'application/json',
        authorization: `Bearer ${adminToken}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
  const rename = (account: TestAccount, familyName: string) =>
    api(`/accounts/${account.account._id}/name`, {
      method: 'PUT',
      body: JSON.stringify({ givenName: 'Erika', familyName }),
    });

  beforeAll(async () => {
    // A FerretDB of its own: the shared one serves the other test files.
    dir = await mkdtemp(path.join(os.tmpdir(), 'flueag-faults-'));
    database = await startFerretDB(dir);
    test = await startTestServer({}, { databaseServer: database.uri });
    client = await createClient(test, { adminApi: true });
    tenantId = (await createTenant(test)).id;
    admin = await createAccount(test, tenantId, { roles: ['local_admin'] });
    person = await createAccount(test, tenantId);
    // Only renamed, never signed in: their one-time passwords do.
    staff = [];
    for (let i = 0; i < 7; i += 1)
      staff.push(await createAccount(test, tenantId, {}, { initial: true }));

    adminToken = (await signInForTokens(client, admin, { scope: 'openid admin' })).tokens
      .access_token;
    // Of another account: the password change below ends the person's grants.
    const holder = await createAccount(test, tenantId);
    refreshToken = (await signInForTokens(client, holder, { scope: 'openid offline_access' }))
      .tokens.refresh_token!;
    accountConsole = await signInToConsole(test, person, '/account/password');
    pendingPage = await openSignIn(client);
    pendingPost = await openSignIn(client);
    inFlightSignIns = await Promise.all([1, 2, 3, 4].map(() => openSignIn(client)));
  }, 120_000);

  afterAll(async () => {
    if (database && isAlive(database.pid)) process.kill(database.pid, 'SIGCONT');
    await test?.close();
    await database?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers the requests under way when it is killed with their result or 503, never 500', async () => {
    // Confirmed right before the kill: a password change and an admin's rename.
    const changed = await postForm(accountConsole.browser, accountConsole.page, passwordForm, [
      ['current_password', person.password],
      ['new_password', confirmedPassword],
      ['new_password_confirm', confirmedPassword],
    ]);
    expect({ status: changed.status, location: changed.location }).toEqual({
      status: 303,
      location: '/account?done=password_changed',
    });
    expect((await rename(staff[0]!, 'Bestätigt')).status).toBe(200);
    confirmedNames.set(staff[0]!.account._id, 'Bestätigt');

    // Under way: sign-ins, which hash, and two queues of renames; the kill comes the moment
    // the first rename is confirmed, with the other queue's rename on its way.
    const signIns = inFlightSignIns.map((pending) =>
      answer(() => submitSignIn(pending, person, confirmedPassword)),
    );
    const renames: Array<{ account: TestAccount; familyName: string; answer: Answer }> = [];
    const renameInTurn = async (accounts: TestAccount[], prefix: string) => {
      for (const [i, account] of accounts.entries()) {
        if (killedAt !== undefined) return;
        const familyName = `${prefix}${'abc'[i]}`;
        const renamed = await answer(() => rename(account, familyName));
        renames.push({ account, familyName, answer: renamed });
        if (renamed.status === 200 && killedAt === undefined) {
          killedAt = new Date();
          process.kill(database.pid, 'SIGKILL');
        }
      }
    };
    await Promise.all([
      renameInTurn(staff.slice(1, 4), 'Unterwegs'),
      renameInTurn(staff.slice(4, 7), 'Nebenher'),
    ]);
    const signInAnswers = await Promise.all(signIns);

    expect(killedAt).toBeInstanceOf(Date);
    for (const { account, familyName, answer: renamed } of renames) {
      expect([200, 503]).toContain(renamed.status);
      if (renamed.status === 200) confirmedNames.set(account.account._id, familyName);
      else expectRefusal(renamed, /^application\/problem\+json/);
    }
    for (const signIn of signInAnswers) {
      expect([303, 503]).toContain(signIn.status);
      if (signIn.status === 503) expectUnavailablePage(signIn);
    }
    const outcome = ({ status, body }: Answer) =>
      status === 503 ? (JSON.parse(body) as { code: string }).code : status;
    process.stdout.write(
      `database killed under load: renames ${renames.map((r) => outcome(r.answer)).join(' ')}, ` +
        `sign-ins ${signInAnswers.map((r) => r.status).join(' ')}\n`,
    );
  });

  it('answers every surface with 503 and Retry-After while it is down, and stays live', async () => {
    const base = test.issuer;
    const { browser } = accountConsole;
    // Background work meets the missing database too: housekeeping logs it and waits.
    const housekeepingLog: Array<Record<string, unknown>> = [];
    const housekeeping = new Housekeeping(
      test.services.db,
      test.services.audit,
      30,
      pino(
        { level: 'warn' },
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            housekeepingLog.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
            done();
          },
        }),
      ),
    );
    housekeeping.start();

    const [
      healthz,
      readyz,
      discovery,
      jwks,
      authorization,
      interaction,
      signIn,
      adminPage,
      accountPage,
      apiList,
      refresh,
      userinfo,
      introspection,
      revocation,
    ] = await Promise.all([
      answer(() => fetch(`${base}/healthz`)),
      answer(() => fetch(`${base}/readyz`)),
      answer(() => fetch(`${base}/.well-known/openid-configuration`)),
      answer(() => fetch(`${base}/jwks`)),
      answer(async () => new Browser().request((await authorizationRequest(client)).url.href)),
      answer(() => pendingPage.browser.request(pendingPage.login.url)),
      answer(() => submitSignIn(pendingPost, person, confirmedPassword)),
      answer(() => browser.request(`${base}/admin`)),
      answer(() => browser.request(`${base}/account`)),
      answer(() => api(`/tenants/${tenantId}/accounts`)),
      answer(() =>
        clientPost(`${base}/token`, client, {
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
        }),
      ),
      answer(() => fetch(`${base}/me`, { headers: { authorization: `Bearer ${adminToken}` } })),
      answer(() => clientPost(`${base}/token/introspection`, client, { token: adminToken })),
      answer(() => clientPost(`${base}/token/revocation`, client, { token: refreshToken })),
    ]);
    housekeeping.stop();

    // Liveness stays up, so no orchestrator restarts a process that recovers by itself.
    expect(healthz.status).toBe(200);
    expectRefusal(readyz, /^application\/json/);
    // Discovery and the keys need no database.
    expect([discovery.status, jwks.status]).toEqual([200, 200]);
    for (const page of [authorization, interaction, signIn, adminPage, accountPage])
      expectUnavailablePage(page);
    expectUnavailableProblem(apiList);
    for (const error of [refresh, userinfo, introspection, revocation])
      expectUnavailableError(error);

    expect(housekeepingLog).toEqual([
      expect.objectContaining({ event: 'housekeeping.failed', level: 40 }),
    ]);
    const scraped = await scrape(test);
    expect(
      sample(scraped, 'flueag_database_errors_total', { operation: 'heartbeat' }),
    ).toBeGreaterThan(0);
    const ms = (timed: Answer) => Math.round(timed.ms);
    process.stdout.write(
      `answers while the database is down (ms): ${JSON.stringify({
        readyz: ms(readyz),
        authorization: ms(authorization),
        interaction: ms(interaction),
        signIn: ms(signIn),
        adminPage: ms(adminPage),
        apiList: ms(apiList),
        refresh: ms(refresh),
        userinfo: ms(userinfo),
      })}\n`,
    );
  });

  it('refuses a change tried while it is down with an error, not a success', async () => {
    const { action, hidden } = formOf(accountConsole.page, passwordForm);
    const [renamed, changed] = await Promise.all([
      answer(() => rename(staff[0]!, 'WährendDesAusfalls')),
      answer(() =>
        accountConsole.browser.request(action, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            ...hidden,
            current_password: confirmedPassword,
            new_password: 'Im-Ausfall-versucht-9!',
            new_password_confirm: 'Im-Ausfall-versucht-9!',
          }),
        }),
      ),
    ]);
    expectUnavailableProblem(renamed);
    expectUnavailablePage(changed);
  });

  it('works again without a restart once it is back: ready, and a full sign-in to the token', async () => {
    database = await startFerretDB(dir, database.port);
    const listening = performance.now();

    let readyMs: number | undefined;
    while (readyMs === undefined && performance.now() - listening < RECOVERY_BOUND_MS) {
      if ((await fetch(`${test.issuer}/readyz`)).status === 200)
        readyMs = performance.now() - listening;
      else await sleep(50);
    }
    // The first sign-in uses the password confirmed right before the kill.
    const signedIn = await signInForTokens(client, { ...person, password: confirmedPassword });
    const signInMs = performance.now() - listening;
    process.stdout.write(
      `recovery after the database listens again: /readyz 200 after ${Math.round(readyMs ?? NaN)} ms, ` +
        `first full sign-in with tokens after ${Math.round(signInMs)} ms\n`,
    );

    expect(readyMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(signInMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(signedIn.tokens.claims()?.sub).toBe(person.account._id);
    accessToken = signedIn.tokens.access_token;
    // A relying party's refresh token from before the outage works on.
    const refreshed = await answer(() =>
      clientPost(`${test.issuer}/token`, client, {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
      }),
    );
    expect(refreshed.status).toBe(200);
    // So do a console session and a sign-in page opened before it.
    expect((await accountConsole.browser.request(`${test.issuer}/account`)).status).toBe(200);
    const login = await pendingPage.browser.request(pendingPage.login.url);
    expect({
      status: login.status,
      form: (await login.text()).includes('name="password"'),
    }).toEqual({ status: 200, form: true });
  });

  it('still holds every change it confirmed, and none it refused', async () => {
    // The confirmed rename, the one that triggered the kill, and any other confirmed on the way.
    expect(confirmedNames.size).toBeGreaterThanOrEqual(2);
    for (const [accountId, familyName] of confirmedNames)
      expect((await test.services.accounts.find(accountId))?.familyName).toBe(familyName);

    // The password confirmed before the kill signed in above; the one tried later is not set.
    const stored = await storedAccount(test, person.account._id);
    expect(stored.password.changedAt.getTime()).toBeLessThan(killedAt!.getTime());
  });

  it('answers within bounds when it stops answering without closing connections, and recovers', async () => {
    // A frozen process (or a host gone without a reset) keeps the sockets open: only the
    // driver's heartbeat notices, and the commands in flight are failed.
    process.kill(database.pid, 'SIGSTOP');
    try {
      const [userinfo, signInPage] = await Promise.all([
        answer(() =>
          fetch(`${test.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } }),
        ),
        answer(async () => new Browser().request((await authorizationRequest(client)).url.href)),
      ]);
      process.stdout.write(
        `answers while the database is frozen (ms): userinfo ${Math.round(userinfo.ms)}, sign-in page ${Math.round(signInPage.ms)}\n`,
      );
      expectUnavailableError(userinfo);
      expectUnavailablePage(signInPage);
    } finally {
      process.kill(database.pid, 'SIGCONT');
    }
    const thawed = performance.now();
    while ((await fetch(`${test.issuer}/readyz`)).status !== 200) {
      expect(performance.now() - thawed).toBeLessThan(RECOVERY_BOUND_MS);
      await sleep(50);
    }
    const userinfo = await fetch(`${test.issuer}/me`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(userinfo.status).toBe(200);
  });
});

describe('SIGTERM', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-sigterm-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it('finishes the request in flight, refuses new connections, stops FerretDB and exits 0', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      ISSUER: issuer,
      LOG_LEVEL: 'warn',
      METRICS_PORT: '0',
      // A failed sign-in is answered no sooner than this: a request that stays in flight.
      SIGNIN_FAILURE_FLOOR_MS: '4000',
    };
    delete env.MONGODB_URI;
    delete env.DEMO_SEED;
    const child = spawn(process.execPath, [path.join(root, 'src/main.ts')], { env, cwd: root });
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        const collect = (chunk: Buffer) => {
          output += chunk.toString();
          if (/\/demo\n[\s\S]*\n\n/.test(output)) resolve();
        };
        child.stdout.on('data', collect);
        child.stderr.on('data', collect);
        void exited.then((code) => reject(new Error(`exited with ${code}: ${output}`)));
      });
      const instance = JSON.parse(
        await readFile(path.join(dataDir, 'ferretdb', 'instance.json'), 'utf8'),
      ) as { ferretdbPid: number };

      const browser = new Browser();
      const login = asPage(await browser.visit(`${issuer}/demo/login`));
      const started = performance.now();
      const inFlight = browser.submit(login, {
        tenant: '05999999',
        username: 'admin1',
        password: 'Falsches-Kennwort-1!',
      });
      await sleep(500);
      const signalled = performance.now();
      child.kill('SIGTERM');

      let refusedMs: number | undefined;
      while (refusedMs === undefined && performance.now() - signalled < 3_000) {
        if (!(await canConnect(port))) refusedMs = performance.now() - signalled;
        else await sleep(20);
      }
      const refused = asPage(await inFlight);
      const answeredMs = performance.now() - signalled;
      const code = await exited;
      const exitMs = performance.now() - signalled;
      process.stdout.write(
        `SIGTERM with a sign-in in flight (${Math.round(signalled - started)} ms old): ` +
          `new connections refused after ${Math.round(refusedMs ?? NaN)} ms, ` +
          `the request answered after ${Math.round(answeredMs)} ms, exit after ${Math.round(exitMs)} ms\n`,
      );

      expect(refusedMs).toBeLessThan(answeredMs);
      expect(refused.status).toBe(401);
      expect(refused.html).toContain(messages.loginFailed);
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(15_000);
      expect(isAlive(instance.ferretdbPid)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
