/**
 * Every URL the provider hands out is built from the request's host: only the issuer's
 * host is served, so a forged Host header cannot plant foreign endpoints in discovery.
 */
import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { rawRequest } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let test: TestServer;

beforeAll(async () => {
  test = await startTestServer();
});
afterAll(() => test.close());

/** A request to the test server that names `host` as its Host. */
const requestAs = (
  host: string,
  path: string,
  options: { method?: string; accept?: string; body?: string } = {},
) => rawRequest(`${test.issuer}${path}`, { accept: 'application/json', ...options, host });

describe('host of a request', () => {
  it('serves discovery with endpoints on the issuer host', async () => {
    const response = await requestAs(
      new URL(test.issuer).host,
      '/.well-known/openid-configuration',
    );
    const discovery = JSON.parse(response.body) as Record<string, string>;
    expect(response.status).toBe(200);
    for (const endpoint of ['jwks_uri', 'token_endpoint', 'authorization_endpoint']) {
      expect(discovery[endpoint]?.startsWith(`${test.issuer}/`)).toBe(true);
    }
  });

  it('redirects a request for a foreign host to the issuer instead of building URLs from it', async () => {
    const response = await requestAs('evil.example', '/.well-known/openid-configuration');
    expect(response.status).toBe(308);
    expect(response.headers.location).toBe(`${test.issuer}/.well-known/openid-configuration`);
    expect(response.body).not.toContain('evil.example/');
  });

  it('refuses a token request for a foreign host with an OAuth error (421)', async () => {
    const response = await requestAs('evil.example', '/token', {
      method: 'POST',
      body: 'grant_type=authorization_code&code=x',
    });
    expect(response.status).toBe(421);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_request' });
  });

  it('refuses a form post for a foreign host with a German page', async () => {
    const response = await requestAs('evil.example', '/interaction/abc/login', {
      method: 'POST',
      accept: 'text/html',
      body: 'username=x',
    });
    expect(response.status).toBe(421);
    expect(response.body).toContain('Diese Adresse gehört nicht zu diesem Anmeldedienst.');
  });

  it('answers health probes under any host name', async () => {
    expect((await requestAs('10.0.0.7:3000', '/healthz')).status).toBe(200);
    expect((await requestAs('10.0.0.7:3000', '/readyz')).status).toBe(200);
  });
});

describe('request target', () => {
  /** One raw HTTP/1.1 request with `target` as it is, and the answer's status line and body. */
  const requestTarget = (target: string) =>
    new Promise<{ status: string; body: string }>((resolve, reject) => {
      const { hostname, port, host } = new URL(test.issuer);
      const socket = net.connect(Number(port), hostname, () =>
        socket.end(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
      );
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      socket.on('end', () =>
        resolve({ status: answer.split('\r\n')[0]!, body: answer.split('\r\n\r\n')[1] ?? '' }),
      );
      socket.on('error', reject);
    });

  it('answers an absolute target that is no URL with a German 400 page, never a 500', async () => {
    for (const target of ['http://[', 'http://a b/', 'https://[::1/x']) {
      const answer = await requestTarget(target);
      expect([target, answer.status]).toEqual([target, 'HTTP/1.1 400 Bad Request']);
      expect(answer.body).toContain('lang="de"');
    }
    expect((await requestTarget('/healthz')).status).toBe('HTTP/1.1 200 OK');
  });
});
