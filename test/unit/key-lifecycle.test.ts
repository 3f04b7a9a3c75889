/**
 * The key file and the rules of the three rotation steps, without a server: what the file
 * must hold, how a file from before key states is read, and when each step is refused.
 */
import { describe, expect, it } from '@jest/globals';

import {
  activateKeys,
  describeKeys,
  KeyRotationRefused,
  retireKeys,
  stageKeys,
  stampUnknownRetirements,
  type RotationTimes,
} from '../../src/oidc/key-rotation.ts';
import {
  newKeyMaterial,
  newSigningKeys,
  parseKeyMaterial,
  providerCookieKeys,
  providerJwks,
  type KeyMaterial,
} from '../../src/oidc/keys.ts';

const times: RotationTimes = { publishSeconds: 600, retainSeconds: 8 * 3600 + 310 };
const start = new Date('2026-03-02T08:00:00.000Z');
const later = (seconds: number) => new Date(start.getTime() + seconds * 1000);

/** The text of a key file, in the layout `material` would be written in. */
const fileOf = (material: object) => JSON.stringify({ version: 2, ...material });

function refusal(step: () => unknown): KeyRotationRefused {
  try {
    step();
  } catch (error) {
    if (error instanceof KeyRotationRefused) return error;
    throw error;
  }
  throw new Error('the step was not refused');
}

describe('key file', () => {
  it('reads a file from before key states: the first key of each type and the first cookie key sign', () => {
    const [ec, rsa] = newSigningKeys(start);
    const [oldEc, oldRsa] = newSigningKeys(new Date('2025-01-01'));
    const legacy = {
      jwks: { keys: [ec, rsa, oldEc, oldRsa] },
      cookieKeys: ['n'.repeat(43), 'o'.repeat(43)],
      fingerprintKey: 'f'.repeat(43),
    };

    const material = parseKeyMaterial(JSON.stringify(legacy), 'keys.json');

    expect(material.signingKeys.map((key) => [key.jwk.kid, key.state, key.retiredAt])).toEqual([
      [ec!.kid, 'signing', null],
      [rsa!.kid, 'signing', null],
      [oldEc!.kid, 'retired', null],
      [oldRsa!.kid, 'retired', null],
    ]);
    expect(providerCookieKeys(material)).toEqual(legacy.cookieKeys);
    expect(providerJwks(material).keys.map((key) => key.kid)).toEqual(
      legacy.jwks.keys.map((key) => key!.kid),
    );
    expect(describeKeys(material, times).find((view) => view.id === oldEc!.kid)).toMatchObject({
      state: 'retired',
      since: null,
      nextStepAt: null,
    });
  });

  it('counts the retirement of such keys from the first step that rewrites the file', () => {
    const [ec, rsa] = newSigningKeys(start);
    const [oldEc] = newSigningKeys(start);
    const material = parseKeyMaterial(
      JSON.stringify({
        jwks: { keys: [ec, rsa, oldEc] },
        cookieKeys: ['n'.repeat(43)],
        fingerprintKey: 'f'.repeat(43),
      }),
      'keys.json',
    );

    expect(stampUnknownRetirements(material, start)).toBe(true);
    expect(stampUnknownRetirements(material, later(60))).toBe(false);

    const refused = refusal(() => retireKeys(material, later(60), times));
    expect(refused.code).toBe('keys.still_verifying');
    expect(refused.possibleAt).toBe(later(times.retainSeconds).toISOString());
  });

  it('refuses a file the provider could not sign with, naming the problem', () => {
    const material = newKeyMaterial(start);
    const twoSigners = structuredClone(material);
    twoSigners.signingKeys.push({ ...twoSigners.signingKeys[0]!, jwk: newSigningKeys()[0]! });
    const noCookieSigner = structuredClone(material);
    noCookieSigner.cookieKeys[0]!.state = 'retired';
    const repeated = structuredClone(material);
    repeated.signingKeys[1]!.jwk.kid = repeated.signingKeys[0]!.jwk.kid;

    expect(() => parseKeyMaterial(fileOf(twoSigners), 'keys.json')).toThrow(
      'key file keys.json is invalid: it needs exactly one signing EC key, not 2',
    );
    expect(() => parseKeyMaterial(fileOf(noCookieSigner), 'keys.json')).toThrow(
      'key file keys.json is invalid: it needs exactly one signing cookie key, not 0',
    );
    expect(() => parseKeyMaterial(fileOf(repeated), 'keys.json')).toThrow(
      'key file keys.json is invalid: it repeats a kid',
    );
    expect(() => parseKeyMaterial('{"version":2}', 'keys.json')).toThrow(
      /^key file keys.json is invalid: signingKeys: /,
    );
  });
});

describe('rotation steps', () => {
  const staged = (material: KeyMaterial) => stageKeys(material, start, times).material;

  it('stages keys after the signing ones, so that they only verify, and only one set at a time', () => {
    const material = newKeyMaterial(start);

    const result = stageKeys(material, start, times);

    expect(result.staged.map((key) => [key.use, key.alg, key.state])).toEqual([
      ['tokens', 'ES256', 'staged'],
      ['tokens', 'PS256 RS256', 'staged'],
      ['cookies', 'HMAC', 'staged'],
    ]);
    const order = providerJwks(result.material).keys.map((key) => key.kid);
    expect(order.slice(0, 2)).toEqual(material.signingKeys.map((key) => key.jwk.kid));
    expect(providerCookieKeys(result.material)[0]).toBe(material.cookieKeys[0]!.secret);
    expect(refusal(() => stageKeys(result.material, later(1), times)).code).toBe(
      'keys.already_staged',
    );
  });

  it('activates staged keys only after their publication time, unless forced', () => {
    const material = staged(newKeyMaterial(start));

    const early = refusal(() => activateKeys(material, later(599), times));
    const result = activateKeys(material, later(600), times);
    const forced = activateKeys(material, later(1), times, { force: true });

    expect(early.code).toBe('keys.not_yet_published');
    expect(early.possibleAt).toBe(later(600).toISOString());
    expect(result.activated.map((key) => key.state)).toEqual(['signing', 'signing', 'signing']);
    expect(result.retired.map((key) => [key.state, key.since])).toEqual([
      ['retired', later(600).toISOString()],
      ['retired', later(600).toISOString()],
      ['retired', later(600).toISOString()],
    ]);
    const signers = providerJwks(result.material).keys.slice(0, 2);
    expect(signers.map((key) => key.kid)).toEqual(result.activated.slice(0, 2).map((k) => k.id));
    expect(forced.activated).toHaveLength(3);
    expect(refusal(() => activateKeys(result.material, later(601), times)).code).toBe(
      'keys.nothing_staged',
    );
  });

  it('removes retired keys only once nothing they signed is valid, and keeps the rest', () => {
    const active = activateKeys(staged(newKeyMaterial(start)), later(600), times).material;
    const due = later(600 + times.retainSeconds);

    const early = refusal(() => retireKeys(active, new Date(due.getTime() - 1000), times));
    const result = retireKeys(active, due, times);
    const forced = retireKeys(active, later(601), times, { force: true });

    expect(early.code).toBe('keys.still_verifying');
    expect(early.possibleAt).toBe(due.toISOString());
    expect(result.removed).toHaveLength(3);
    expect(result.material.signingKeys.map((key) => key.state)).toEqual(['signing', 'signing']);
    expect(result.material.cookieKeys.map((key) => key.state)).toEqual(['signing']);
    expect(forced.removed).toHaveLength(3);
    expect(retireKeys(result.material, due, times).removed).toEqual([]);
  });
});
