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
  ])('refuses %j with exactly one clear problem', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(new ConfigError(`invalid configuration: ${problem}`));
  });

  it('ignores empty variables it does not know', () => {
    expect(loadConfig({ EDITOR: '' }).port).toBe(3000);
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
