import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';

import { ConfigError, loadConfig } from '../../src/config.ts';

describe('configuration', () => {
  it('has the designed defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      issuer: 'http://localhost:3000',
      mongodbUri: undefined,
      seedDemo: true,
      password: { minLength: 8, maxAgeDays: 180, history: 5, initialValidDays: 14 },
      lockout: { maxFailures: 5, autoUnlockMinutes: 0 },
      argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
      ttl: {
        accessToken: 600,
        idToken: 3600,
        refreshToken: 28800,
        session: 28800,
        sessionIdle: 1800,
      },
      keys: { reloadSeconds: 10, publishSeconds: 600 },
    });
  });

  it('keeps the data in the installation directory unless DATA_DIR names another', () => {
    const installation = path.resolve(import.meta.dirname, '../..');
    const elsewhere = process.cwd();
    try {
      process.chdir(os.tmpdir());
      expect(loadConfig({}).dataDir).toBe(path.join(installation, 'var'));
      expect(loadConfig({ DATA_DIR: 'data' }).dataDir).toBe(path.join(os.tmpdir(), 'data'));
    } finally {
      process.chdir(elsewhere);
    }
  });

  it('refuses a session idle limit longer than the session itself', () => {
    expect(() => loadConfig({ SESSION_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '7200' })).toThrow(
      /^invalid configuration: SESSION_IDLE_SECONDS must not exceed SESSION_TTL_SECONDS/,
    );
    expect(
      loadConfig({ SESSION_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '3600' }).ttl.sessionIdle,
    ).toBe(3600);
  });

  it('refuses a publication time of staged keys shorter than two reloads of the key file', () => {
    expect(() => loadConfig({ KEYS_RELOAD_SECONDS: '60', KEYS_PUBLISH_SECONDS: '90' })).toThrow(
      /^invalid configuration: KEYS_PUBLISH_SECONDS must be at least twice KEYS_RELOAD_SECONDS/,
    );
    expect(loadConfig({ KEYS_RELOAD_SECONDS: '60', KEYS_PUBLISH_SECONDS: '120' }).keys).toEqual({
      reloadSeconds: 60,
      publishSeconds: 120,
    });
    expect(loadConfig({ KEYS_RELOAD_SECONDS: '0', KEYS_PUBLISH_SECONDS: '1' }).keys).toEqual({
      reloadSeconds: 0,
      publishSeconds: 1,
    });
  });

  it('names every invalid variable in one message', () => {
    expect(() =>
      loadConfig({ PORT: 'abc', MONGODB_URI: 'postgres://x', ARGON2_MEMORY_KIB: '1024' }),
    ).toThrow(ConfigError);
    try {
      loadConfig({ PORT: 'abc', MONGODB_URI: 'postgres://x', ARGON2_MEMORY_KIB: '1024' });
    } catch (error) {
      expect((error as Error).message).toMatch(/PORT/);
      expect((error as Error).message).toMatch(/MONGODB_URI: must start with mongodb/);
      expect((error as Error).message).toMatch(/ARGON2_MEMORY_KIB/);
    }
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT: must be a whole number'],
    [{ PORT: '70000' }, 'PORT: must be at most 65535'],
    [{ PORT: '' }, 'PORT: is empty; give it a value, or unset it to use the default'],
    [
      { METRICS_PORT: 'foo' },
      'METRICS_PORT: must be a port number from 0 (any free port) to 65535, or off',
    ],
    [
      { METRICS_PORT: '99999' },
      'METRICS_PORT: must be a port number from 0 (any free port) to 65535, or off',
    ],
    [{ METRICS_HOST: '999.1.1.1' }, 'METRICS_HOST: must be a valid IP address or a host name'],
    [{ HOST: '' }, 'HOST: is empty; give it a value, or unset it to use the default'],
    [
      { MONGODB_URI_FILE: '' },
      'MONGODB_URI_FILE: is empty; give it a value, or unset it to use the default',
    ],
    [{ KEYS_PUBLISH_SECONDS: '0' }, 'KEYS_PUBLISH_SECONDS: must be at least 1'],
    [
      { LOG_LEVEL: 'loud' },
      'LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal, silent',
    ],
    // Numbers in decimal digits only, never read as something else.
    [{ PORT: '0x10' }, 'PORT: must be a whole number'],
    [{ PORT: '1e3' }, 'PORT: must be a whole number'],
    [{ PORT: ' 3000 ' }, 'PORT: must be a whole number'],
    [{ PORT: '0' }, 'PORT: must be at least 1'],
    [
      { LOCKOUT_AUTO_UNLOCK_MINUTES: '1' + '0'.repeat(20) },
      'LOCKOUT_AUTO_UNLOCK_MINUTES: must be a whole number',
    ],
    [{ AUDIT_RETENTION_DAYS: '99999' }, 'AUDIT_RETENTION_DAYS: must be at most 36500'],
    [
      { TRUST_PROXY: '99999999999999999999999' },
      'TRUST_PROXY: must be false, true or the number of trusted proxy hops (0 to 10)',
    ],
    // An issuer is an origin that discovery, tokens and cookies can rest on.
    [
      { ISSUER: 'http://localhost:3102/?q=1' },
      'ISSUER: must not carry a query, a fragment or user credentials (OpenID Connect Discovery, section 3)',
    ],
    [
      { ISSUER: 'http://localhost:3102?' },
      'ISSUER: must not carry a query, a fragment or user credentials (OpenID Connect Discovery, section 3)',
    ],
    [
      { ISSUER: 'http://localhost:3102/#frag' },
      'ISSUER: must not carry a query, a fragment or user credentials (OpenID Connect Discovery, section 3)',
    ],
    [
      { ISSUER: 'http://u:p@localhost:3102' },
      'ISSUER: must not carry a query, a fragment or user credentials (OpenID Connect Discovery, section 3)',
    ],
    [
      { ISSUER: 'http://localhost:3102/path' },
      'ISSUER: must be scheme, host and port only: the provider serves at the root of its host',
    ],
    [
      { ISSUER: 'http://idp.example.com' },
      'ISSUER: must be https (behind the TLS proxy) unless its host is this machine: localhost, 127.x.x.x or [::1]',
    ],
    [
      { REPORTING_API_RESOURCE: 'https://api.example/#x' },
      'REPORTING_API_RESOURCE: must not carry a fragment (RFC 8707, section 2)',
    ],
    [
      { REPORTING_API_RESOURCE: 'javascript:alert(1)' },
      'REPORTING_API_RESOURCE: must be an absolute https, http or urn URI',
    ],
    [{ SUPPORT_PHONE: '   ' }, 'SUPPORT_PHONE: must be a telephone number, with digits'],
    [
      { SUPPORT_PHONE: '0211 9449-0\u202e' },
      'SUPPORT_PHONE: must be a telephone number, with digits',
    ],
    [
      { REPORTING_API_RESOURCE: 'https://user:pass@api.example/' },
      'REPORTING_API_RESOURCE: must not carry user credentials',
    ],
    [{ METRICS_TOKEN: ' '.repeat(40) }, 'METRICS_TOKEN: must not contain spaces or line breaks'],
    // Values that contradict each other.
    [
      { PORT: '3101', METRICS_PORT: '3101' },
      'METRICS_PORT: must differ from PORT; /metrics has a listener of its own',
    ],
    [
      { SIGNIN_DELAY_BASE_MS: '10000', SIGNIN_DELAY_MAX_SECONDS: '1' },
      'SIGNIN_DELAY_BASE_MS must not exceed SIGNIN_DELAY_MAX_SECONDS, the longest delay',
    ],
  ])('refuses %j with exactly one clear problem', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(new ConfigError(`invalid configuration: ${problem}`));
  });

  it('ignores empty variables it does not know', () => {
    expect(loadConfig({ EDITOR: '' }).port).toBe(3000);
  });

  it('accepts an http issuer on this machine and an https one behind a proxy', () => {
    for (const issuer of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000'])
      expect(loadConfig({ ISSUER: issuer }).issuer).toBe(issuer);
    expect(loadConfig({ ISSUER: 'https://login.example/', TRUST_PROXY: '1' }).issuer).toBe(
      'https://login.example',
    );
  });

  it('publishes the issuer as URL parsing spells its origin, so relying parties can compare it', () => {
    const spelled = {
      'HTTP://LOCALHOST:3999': 'http://localhost:3999',
      'http://localhost:03999': 'http://localhost:3999',
      'http://localhost:80': 'http://localhost',
      'http://localhost:3999/.': 'http://localhost:3999',
      'http://localhost:3999\\': 'http://localhost:3999',
      'http://0x7f000001:3999': 'http://127.0.0.1:3999',
    };
    for (const [written, published] of Object.entries(spelled))
      expect([written, loadConfig({ ISSUER: written }).issuer]).toEqual([written, published]);
    // An upper-case scheme is https all the same, and needs the TLS proxy.
    expect(() => loadConfig({ ISSUER: 'HTTPS://login.example' })).toThrow(/TRUST_PROXY is false/);
  });

  it('accepts IPv4 and IPv6 addresses and host names to listen on', () => {
    expect(loadConfig({ HOST: '127.0.0.1', METRICS_HOST: '::1' }).metrics.host).toBe('::1');
    expect(loadConfig({ METRICS_HOST: 'localhost' }).metrics.host).toBe('localhost');
  });

  it('does not seed the demo on a configured database unless asked to', () => {
    expect(loadConfig({ MONGODB_URI: 'mongodb://db.example/flueag' }).seedDemo).toBe(false);
    expect(
      loadConfig({ MONGODB_URI: 'mongodb://db.example/flueag', DEMO_SEED: 'true' }).seedDemo,
    ).toBe(true);
  });

  it('trusts proxy hops only when told to', () => {
    expect(loadConfig({}).trustedProxyHops).toBe(0);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustedProxyHops).toBe(1);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustedProxyHops).toBe(2);
    expect(() => loadConfig({ TRUST_PROXY: 'yes please' })).toThrow(/TRUST_PROXY/);
  });

  it('refuses an https issuer without a trusted TLS proxy, whose cookies would lack Secure', () => {
    expect(() => loadConfig({ ISSUER: 'https://login.flueag.nrw.example' })).toThrow(/TRUST_PROXY/);
    expect(
      loadConfig({ ISSUER: 'https://login.flueag.nrw.example', TRUST_PROXY: '1' }).issuer,
    ).toBe('https://login.flueag.nrw.example');
  });
});
