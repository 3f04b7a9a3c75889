/**
 * Signing keys as relying parties see them: the algorithms of ID tokens and JWT access
 * tokens, the public JWKS, and the three steps of a key rotation (`keys rotate`, `keys
 * activate`, `keys retire`) run by the CLI against two running servers of one installation,
 * which pick up the changed key file without a restart.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';

import { activateKeys, rotationTimes, stageKeys } from '../../src/oidc/key-rotation.ts';
import {
  loadKeyMaterial,
  newKeyMaterial,
  saveKeyMaterial,
  type KeyHistory,
} from '../../src/oidc/keys.ts';
import { Browser, rawRequest } from '../support/browser.ts';
import { authorize, signIn, verifyIdToken } from '../support/conformance.ts';
import { startLoadBalancer, type LoadBalancer } from '../support/load-balancer.ts';
import {
  createAccount,
  createClient,
  createTenant,
  newDatabaseName,
  startTestServer,
  system,
  type TestAccount,
  type TestClient,
  type TestServer,
} from '../support/server.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

let balancer: LoadBalancer;
let keysDir: string;
let keysFile: string;
let env: Record<string, string>;
let first: TestServer;
let second: TestServer;
const logs = new Map<TestServer, Record<string, unknown>[]>();
let client: TestClient;
let person: TestAccount;
let resource: string;

/** A log destination that keeps the parsed lines. */
function logInto(lines: Record<string, unknown>[]) {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
}

beforeAll(async () => {
  balancer = await startLoadBalancer();
  keysDir = await mkdtemp(path.join(os.tmpdir(), 'flueag-rotation-'));
  keysFile = path.join(keysDir, 'keys.json');
  await saveKeyMaterial(keysFile, newKeyMaterial());
  // Servers read the key file every second; staged keys may sign after a minute.
  env = {
    ISSUER: balancer.url,
    KEYS_FILE: keysFile,
    KEYS_RELOAD_SECONDS: '1',
    KEYS_PUBLISH_SECONDS: '60',
    LOG_LEVEL: 'info',
  };
  const database = newDatabaseName();
  const firstLog: Record<string, unknown>[] = [];
  const secondLog: Record<string, unknown>[] = [];
  first = await startTestServer(env, { database, log: logInto(firstLog) });
  second = await startTestServer(env, { database, log: logInto(secondLog) });
  logs.set(first, firstLog).set(second, secondLog);
  balancer.target = first.server.url;
  client = await createClient(first);
  person = await createAccount(first, (await createTenant(first)).id);
  resource = first.services.config.reportingApiResource;
});

afterAll(async () => {
  await second?.stop();
  await first?.close();
  await balancer?.close();
  await rm(keysDir, { recursive: true, force: true });
});

/** `flueag-idp --json keys …` with the servers' configuration, as the operator runs it. */
function keys(...args: string[]) {
  return new Promise<{ code: number; json: Record<string, unknown> }>((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/flueag-idp.js'), '--json', 'keys', ...args],
      { env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, cwd: root },
      (error, stdout) =>
        resolve({
          code: error ? Number(error.code ?? 1) : 0,
          json: JSON.parse(stdout) as Record<string, unknown>,
        }),
    );
  });
}

/** The JWKS one server publishes (asked directly, not through the load balancer). */
async function jwksOf(test: TestServer): Promise<JSONWebKeySet> {
  const response = await rawRequest(`${test.server.url}/jwks`, {
    host: new URL(balancer.url).host,
    accept: 'application/json',
  });
  expect(response.status).toBe(200);
  return JSON.parse(response.body) as JSONWebKeySet;
}

const kidsOf = async (test: TestServer) => (await jwksOf(test)).keys.map((key) => String(key.kid));

/** Whether `token` verifies against the JWKS that `test` publishes now. */
async function verifiesAt(test: TestServer, token: string): Promise<boolean> {
  try {
    await jwtVerify(token, createLocalJWKSet(await jwksOf(test)), { issuer: balancer.url });
    return true;
  } catch {
    return false;
  }
}

/** Waits until `condition` holds, checking every 100 ms, for at most 10 s. */
async function eventually(condition: () => Promise<boolean> | boolean): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the condition did not come true within 10 s');
}

/** Waits until `test` has logged that it took keys into use whose signers include `kid`. */
const signsWith = (test: TestServer, kid: string) =>
  eventually(() =>
    logs
      .get(test)!
      .some(
        (line) => line.event === 'keys.reloaded' && (line.signing_kids as string[]).includes(kid),
      ),
  );

/** Moves a time of the keys in `state` back, as the passing of time would have. */
async function backdateKeys(state: KeyHistory['state'], seconds: number) {
  const material = await loadKeyMaterial(keysFile, false);
  const field = state === 'staged' ? 'stagedAt' : 'retiredAt';
  for (const key of [...material.signingKeys, ...material.cookieKeys]) {
    if (key.state !== state) continue;
    key[field] = new Date(new Date(key[field]!).getTime() - seconds * 1000).toISOString();
  }
  await saveKeyMaterial(keysFile, material);
}

/** A sign-in through `test` with a JWT access token for the reporting API. */
async function tokensFrom(test: TestServer, browser = new Browser()) {
  balancer.target = test.server.url;
  const flow = await authorize(
    client,
    person,
    { scope: 'openid profile meldeverfahren offline_access', resource },
    browser,
  );
  // `resource` at the token endpoint too: the access token is then the API's JWT.
  const tokens = await oidc.authorizationCodeGrant(
    client.config,
    flow.callback,
    {
      pkceCodeVerifier: flow.authorization.verifier,
      expectedState: flow.authorization.state,
      expectedNonce: flow.nonce,
    },
    { resource },
  );
  return { browser, tokens, idKid: kidOf(tokens.id_token!), accessKid: kidOf(tokens.access_token) };
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

describe('signing algorithms', () => {
  it('signs ID tokens and JWT access tokens with ES256 by default, under a kid the JWKS publishes', async () => {
    const { tokens } = await tokensFrom(first);

    expect(decodeProtectedHeader(tokens.id_token!)).toMatchObject({ alg: 'ES256' });
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({
      alg: 'ES256',
      typ: 'at+jwt',
    });
    const jwks = await jwksOf(first);
    const { payload } = await jwtVerify(tokens.access_token, createLocalJWKSet(jwks), {
      issuer: balancer.url,
      audience: resource,
      typ: 'at+jwt',
    });
    expect(payload.sub).toBe(person.account._id);
    await verifyIdToken(first, client, tokens.id_token!);
    const published = jwks.keys.find((key) => key.kid === kidOf(tokens.id_token!));
    expect(published).toMatchObject({ kty: 'EC', crv: 'P-256', use: 'sig' });
  });

  it.each(['PS256', 'RS256'] as const)(
    'signs the ID tokens of a client registered with %s with that algorithm and an RSA-3072 key',
    async (alg) => {
      balancer.target = first.server.url;
      const clientId = `rp-${alg.toLowerCase()}`;
      const uris = {
        redirectUri: 'https://rp.example.test/cb',
        postLogoutRedirectUri: 'https://rp.example.test/logged-out',
      };
      const { clientSecret } = await first.services.clients.add(
        {
          clientId,
          redirectUris: [uris.redirectUri],
          postLogoutRedirectUris: [uris.postLogoutRedirectUri],
          idTokenSigningAlg: alg,
        },
        system,
      );
      const rsaClient: TestClient = {
        ...uris,
        clientId,
        clientSecret,
        config: await oidc.discovery(
          new URL(balancer.url),
          clientId,
          undefined,
          oidc.ClientSecretBasic(clientSecret!),
          { execute: [oidc.allowInsecureRequests] },
        ),
      };

      const { tokens } = await signIn(rsaClient, person);

      expect(decodeProtectedHeader(tokens.id_token!).alg).toBe(alg);
      await verifyIdToken(first, rsaClient, tokens.id_token!);
      const key = (await jwksOf(first)).keys.find((jwk) => jwk.kid === kidOf(tokens.id_token!));
      expect(key?.kty).toBe('RSA');
      expect(Buffer.from(key!.n!, 'base64url').length * 8).toBe(3072);
    },
  );
});

describe('key rotation on two running servers', () => {
  let before: Awaited<ReturnType<typeof tokensFrom>>;
  let oldKids: string[];
  let newKids: string[];

  it('stages new keys that every server publishes, without a restart, while the old ones sign', async () => {
    before = await tokensFrom(first);
    oldKids = await kidsOf(first);
    expect(before.idKid).toBe(before.accessKid);

    const staged = await keys('rotate');

    expect(staged.code).toBe(0);
    newKids = (staged.json.staged as Array<{ id: string; use: string; state: string }>)
      .filter((key) => key.use === 'tokens')
      .map((key) => key.id);
    expect(newKids).toHaveLength(2);
    expect(staged.json).toMatchObject({ restart_required: false, reload_within_seconds: 1 });
    for (const test of [first, second]) {
      await eventually(async () => {
        const published = await kidsOf(test);
        return newKids.every((kid) => published.includes(kid));
      });
    }
    for (const test of [first, second]) {
      expect(await kidsOf(test)).toEqual(expect.arrayContaining([...oldKids, ...newKids]));
      expect(await verifiesAt(test, before.tokens.id_token!)).toBe(true);
      expect(await verifiesAt(test, before.tokens.access_token)).toBe(true);
    }
    const during = await tokensFrom(second);
    expect([during.idKid, during.accessKid]).toEqual([before.idKid, before.idKid]);
  });

  it('publishes no private key member, staged keys included', async () => {
    for (const test of [first, second]) {
      for (const key of (await jwksOf(test)).keys) {
        const present = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'].filter((m) => m in key);
        expect({ kid: key.kid, present }).toEqual({ kid: key.kid, present: [] });
      }
    }
  });

  it('refuses to activate before the staged keys have been published long enough, and says when', async () => {
    const refused = await keys('activate');

    expect(refused.code).toBe(1);
    const error = refused.json.error as { code: string; possible_at: string };
    expect(error.code).toBe('keys.not_yet_published');
    const stagedAt = (await loadKeyMaterial(keysFile, false)).signingKeys.find(
      (key) => key.state === 'staged',
    )!.stagedAt!;
    expect(new Date(error.possible_at).getTime() - new Date(stagedAt).getTime()).toBe(60_000);
  });

  it('activates the staged keys: new tokens carry the new kid, earlier tokens and sessions keep working', async () => {
    await backdateKeys('staged', 60);

    const activated = await keys('activate');

    expect(activated.code).toBe(0);
    const newEc = newKids.find((kid) => kid.startsWith('ec-'))!;
    await signsWith(first, newEc);
    await signsWith(second, newEc);
    for (const test of [first, second]) {
      const after = await tokensFrom(test);
      expect([after.idKid, after.accessKid]).toEqual([newEc, newEc]);
      expect(await verifiesAt(test, after.tokens.id_token!)).toBe(true);
      expect(await verifiesAt(test, before.tokens.id_token!)).toBe(true);
      expect(await verifiesAt(test, before.tokens.access_token)).toBe(true);
    }

    // The browser signed in before the rotation still holds a session, whose cookie was
    // signed with the old cookie key; its refresh token yields tokens under the new key.
    balancer.target = second.server.url;
    const silent = await authorize(client, person, { prompt: 'none' }, before.browser);
    expect(silent.formShown).toBe(false);
    expect(silent.callback.searchParams.get('code')).toEqual(expect.any(String));
    const refreshed = await oidc.refreshTokenGrant(client.config, before.tokens.refresh_token!, {
      resource,
    });
    expect(kidOf(refreshed.id_token!)).toBe(newEc);
  });

  it('refuses to retire the old keys while tokens or sessions they signed may be valid, and says when', async () => {
    const refused = await keys('retire');

    expect(refused.code).toBe(1);
    const error = refused.json.error as { code: string; possible_at: string };
    expect(error.code).toBe('keys.still_verifying');
    const material = await loadKeyMaterial(keysFile, false);
    const retiredAt = material.signingKeys.find((key) => key.jwk.kid === oldKids[0])!.retiredAt!;
    const config = first.services.config;
    // The longest lifetime (the 8-hour session, longer than ID and access tokens), the
    // servers' reload interval and five minutes for clocks that differ.
    expect(rotationTimes(config).retainSeconds).toBe(8 * 3600 + 1 + 300);
    expect(new Date(error.possible_at).getTime() - new Date(retiredAt).getTime()).toBe(
      (8 * 3600 + 1 + 300) * 1000,
    );
    expect(await kidsOf(first)).toEqual(expect.arrayContaining(oldKids));
  });

  it('retires the old keys once that time has passed: the JWKS drops them and their tokens stop verifying', async () => {
    await backdateKeys('retired', rotationTimes(first.services.config).retainSeconds);

    const retired = await keys('retire');

    expect(retired.code).toBe(0);
    expect((retired.json.removed as Array<{ id: string }>).map((key) => key.id)).toEqual(
      expect.arrayContaining(oldKids),
    );
    for (const test of [first, second]) {
      await eventually(async () => !(await kidsOf(test)).some((kid) => oldKids.includes(kid)));
      expect((await kidsOf(test)).sort()).toEqual([...newKids].sort());
      expect(await verifiesAt(test, before.tokens.id_token!)).toBe(false);
      expect(await verifiesAt(test, before.tokens.access_token)).toBe(false);
    }
    const after = await tokensFrom(first, before.browser);
    expect(await verifiesAt(second, after.tokens.id_token!)).toBe(true);
  });
});

describe('a key file generated at the first start', () => {
  it('is the one in use: reading it again changes nothing and logs no reload', async () => {
    const fresh = await startTestServer();
    try {
      expect(await fresh.server.reloadKeys()).toBe(false);
    } finally {
      await fresh.close();
    }
  });
});

describe('a key file that cannot be used', () => {
  it('leaves the keys in use as they are and says so once, until the file is whole again', async () => {
    const published = await kidsOf(first);
    const whole = await readFile(keysFile, 'utf8');
    const failures = (test: TestServer) =>
      logs.get(test)!.filter((line) => line.event === 'keys.reload_failed');
    const before = failures(first).length;

    await writeFile(`${keysFile}.broken`, '{"version": 2, "signingKeys": []}\n', { mode: 0o600 });
    await rename(`${keysFile}.broken`, keysFile);
    await eventually(() => failures(first).length > before);
    await new Promise((resolve) => setTimeout(resolve, 2500));

    expect(failures(first).slice(before)).toEqual([
      expect.objectContaining({
        level: 50,
        problem: expect.stringContaining('is invalid: signingKeys:'),
      }),
    ]);
    expect(await kidsOf(first)).toEqual(published);
    const { tokens } = await tokensFrom(first);
    expect(await verifiesAt(second, tokens.id_token!)).toBe(true);

    await writeFile(keysFile, whole, { mode: 0o600 });
    expect(await first.server.reloadKeys()).toBe(false);
    expect(await kidsOf(first)).toEqual(published);
  });
});

describe('changing keys while requests run', () => {
  it('answers every request that runs while both servers change their keys five times', async () => {
    balancer.target = first.server.url;
    const { tokens } = await tokensFrom(first);
    const times = rotationTimes(first.services.config);
    let changing = true;
    const statuses: number[] = [];
    let refreshToken = tokens.refresh_token!;

    // Straight to the servers, both in turn; the refresh grants go through the balancer.
    const probe = async (path: string) => {
      for (let turn = 0; changing; turn += 1) {
        const test = turn % 2 === 0 ? first : second;
        const response = await rawRequest(`${test.server.url}${path}`, {
          host: new URL(balancer.url).host,
          accept: 'application/json',
        });
        statuses.push(response.status);
      }
    };
    const refresher = async () => {
      while (changing) {
        const refreshed = await oidc.refreshTokenGrant(client.config, refreshToken);
        refreshToken = refreshed.refresh_token!;
        statuses.push(200);
      }
    };
    const load = Promise.allSettled([
      probe('/jwks'),
      probe('/.well-known/openid-configuration'),
      refresher(),
    ]);
    try {
      for (let round = 0; round < 5; round += 1) {
        const now = new Date();
        const current = await loadKeyMaterial(keysFile, false);
        const { material: staged } = stageKeys(current, now, times);
        const { material } = activateKeys(staged, now, times, { force: true });
        await saveKeyMaterial(keysFile, material);
        balancer.target = round % 2 === 0 ? second.server.url : first.server.url;
        // Each server takes the new file into use now, or has just done so on its own.
        await Promise.all([first.server.reloadKeys(), second.server.reloadKeys()]);
        const newEc = material.signingKeys.find(
          (key) => key.state === 'signing' && key.jwk.kty === 'EC',
        )!.jwk.kid;
        for (const test of [first, second]) expect(await kidsOf(test)).toContain(newEc);
      }
    } finally {
      changing = false;
    }
    const outcomes = await load;

    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    const latest = (await loadKeyMaterial(keysFile, false)).signingKeys.find(
      (key) => key.state === 'signing' && key.jwk.kty === 'EC',
    )!.jwk.kid;
    balancer.target = second.server.url;
    const refreshed = await oidc.refreshTokenGrant(client.config, refreshToken);
    expect(kidOf(refreshed.id_token!)).toBe(latest!);
  });
});
