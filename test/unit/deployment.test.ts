/**
 * The container image and the compose deployment, checked by reading them, since no
 * container engine runs the tests: what they pass must be a valid configuration, what they
 * run and copy must exist, and the image must need no development dependency.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';

import { loadConfig } from '../../src/config.ts';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Instruction {
  keyword: string;
  argument: string;
}

/** The instructions of a Dockerfile, line continuations joined, comments left out. */
function dockerfile(): Instruction[] {
  return read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), argument: rest.join(' ') };
    });
}

/** The instructions of the last stage, the one that becomes the image. */
function runtimeStage(): Instruction[] {
  const all = dockerfile();
  const last = all.map((i) => i.keyword).lastIndexOf('FROM');
  return all.slice(last);
}

/** `KEY=value` pairs of the ENV instructions of a stage. */
function imageEnvironment(stage: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { argument } of stage.filter((i) => i.keyword === 'ENV')) {
    for (const [, key, value] of argument.matchAll(/([A-Z_]+)=(\S+)/g)) env[key!] = value!;
  }
  return env;
}

interface ComposeService {
  build?: unknown;
  image?: string;
  environment?: Record<string, string>;
  command?: string[];
  volumes?: string[];
}

const compose = parse(read('compose.yaml'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const providerServices = Object.entries(compose.services).filter(([, s]) => s.build);

describe('Dockerfile', () => {
  it('runs Node of the project version, as a non-root user, with a health check', () => {
    const manifest = JSON.parse(read('package.json')) as {
      devDependencies: Record<string, string>;
    };
    expect(read('Dockerfile')).toContain(
      `ARG NODE_VERSION=${manifest.devDependencies.node ?? 'missing'}`,
    );
    const stage = runtimeStage();
    expect(stage[0]!.argument).toMatch(/^node:\$\{NODE_VERSION\}-bookworm-slim\b/);
    const user = stage.filter((i) => i.keyword === 'USER').at(-1)?.argument;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(stage.find((i) => i.keyword === 'HEALTHCHECK')?.argument).toContain('/healthz');
  });

  it('starts an entry point that exists and copies only files that exist', () => {
    const stage = runtimeStage();
    const command = JSON.parse(stage.find((i) => i.keyword === 'CMD')!.argument) as string[];
    expect(command[0]).toBe('node');
    expect(existsSync(path.join(root, command[1]!))).toBe(true);
    for (const { argument } of stage.filter((i) => i.keyword === 'COPY')) {
      if (argument.startsWith('--from=')) continue;
      const sources = argument.split(/\s+/).slice(0, -1);
      for (const source of sources)
        expect([source, existsSync(path.join(root, source))]).toEqual([source, true]);
    }
  });

  it('installs production dependencies only, and the runtime needs no other', () => {
    expect(read('Dockerfile')).toMatch(/npm ci --omit=dev/);
    const copied = runtimeStage()
      .filter((i) => i.keyword === 'COPY' && !i.argument.startsWith('--from='))
      .flatMap((i) => i.argument.split(/\s+/).slice(0, -1));
    const { files, packages } = importGraph(['src/main.ts', 'bin/flueag-idp.js']);

    const manifest = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    expect([...packages]).toEqual(expect.arrayContaining(['oidc-provider', 'mongoose', 'argon2']));
    expect(files.size).toBeGreaterThan(30);
    for (const name of packages)
      expect([name, name in manifest.dependencies]).toEqual([name, true]);
    for (const file of files) {
      expect([file, copied.some((dir) => file === dir || file.startsWith(`${dir}/`))]).toEqual([
        file,
        true,
      ]);
    }
  });
});

describe('compose.yaml', () => {
  it('runs two provider instances built from the Dockerfile', () => {
    expect(providerServices.map(([name]) => name)).toEqual(['idp-1', 'idp-2']);
  });

  it('passes them a configuration the schema accepts', () => {
    const base = imageEnvironment(runtimeStage());
    for (const [, service] of providerServices) {
      const config = loadConfig({ ...base, ...service.environment });
      expect(config).toMatchObject({
        issuer: 'https://idp.localhost',
        trustedProxyHops: 1,
        seedDemo: false,
        port: 3000,
        dataDir: '/var/lib/flueag-idp',
        metrics: { host: '0.0.0.0', port: 9464 },
      });
      expect(config.mongodbUri).toMatch(/replicaSet=rs0/);
    }
  });

  it('gives both instances one data directory, hence one key file', () => {
    const volumes = providerServices.map(([, s]) => s.volumes);
    expect(volumes[0]).toEqual(['idp-data:/var/lib/flueag-idp']);
    expect(volumes[1]).toEqual(volumes[0]);
  });

  it('points MONGODB_URI, the replica set init and the proxy at services that exist', () => {
    // A seed list of several hosts, which WHATWG URL does not parse.
    const [, hostList, query] = /^mongodb:\/\/([^/]+)\/[^?]*\?(.*)$/.exec(
      providerServices[0]![1].environment!.MONGODB_URI!,
    )!;
    const mongoHosts = hostList!.split(',').map((host) => host.split(':')[0]!);
    expect(mongoHosts).toHaveLength(3);
    for (const host of mongoHosts) expect(compose.services[host]?.image).toMatch(/^mongo:/);

    const init = read('deploy/mongo-init.js');
    for (const host of mongoHosts) expect(init).toContain(`host: '${host}:27017'`);
    expect(init).toContain(`_id: '${new URLSearchParams(query).get('replicaSet')}'`);

    const caddyfile = read('deploy/Caddyfile');
    const upstreams = /reverse_proxy ([^{]+)\{/.exec(caddyfile)![1]!.trim().split(/\s+/);
    expect(upstreams).toEqual(providerServices.map(([name]) => `${name}:3000`));
    expect(caddyfile).toContain(`${new URL('https://idp.localhost').host} {`);
    expect(compose.services.proxy!.volumes).toContain('./deploy/Caddyfile:/etc/caddy/Caddyfile:ro');
  });

  it('has the systemd unit run the entry point with node itself, where SIGTERM reaches it', () => {
    const unit = read('deploy/flueag-idp.service');
    const [, command, entry] = /^ExecStart=(\S+) (\S+)$/m.exec(unit)!;
    expect(path.basename(command!)).toBe('node');
    expect(existsSync(path.join(root, entry!))).toBe(true);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    // Longer than the server's own 10 s for requests in flight.
    expect(Number(/^TimeoutStopSec=(\d+)s$/m.exec(unit)![1])).toBeGreaterThan(10);
  });

  it('keeps the instances in rotation while the shared database is away, and adds no HSTS', () => {
    const directives = read('deploy/Caddyfile')
      .split('\n')
      .map((line) => line.replace(/#.*$/, '').trim())
      .filter((line) => line !== '');
    // Every /readyz fails at once when the one database is away; Caddy would then answer
    // with an empty 503 of its own instead of the instances' pages, discovery and JWKS.
    expect(directives).toContain('health_uri /healthz');
    // The instances send Strict-Transport-Security over TLS; browsers take only the first.
    expect(directives.filter((line) => /strict-transport-security/i.test(line))).toEqual([]);
  });
});

/**
 * Every project file and every package reachable through static and dynamic imports from
 * `entries`, relative to the project root.
 */
function importGraph(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = read(file);
    const specifiers = [
      // Type-only imports are erased before the code runs.
      ...source.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?from\s+'([^']+)'/gms),
      ...source.matchAll(/^\s*import\s+'([^']+)'/gm),
      ...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
    ].map((match) => match[1]!);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) {
        pending.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)));
      } else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
        const parts = specifier.split('/');
        packages.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
      }
    }
  }
  return { files, packages };
}
