import { readFileSync } from 'node:fs';

import { describe, expect, it } from '@jest/globals';

import { passwordProblems } from '../../src/accounts/password-policy.ts';
import { generateInitialPassword } from '../../src/accounts/passwords.ts';

const settings = { minLength: 8, maxLength: 256 };
const problems = (password: string, username = 'mkoelsch') =>
  passwordProblems(password, settings, { username });

describe('password policy', () => {
  it('accepts a password with letters, digits and a special character of at least 8 characters', () => {
    expect(problems('Rhein-Ufer-7')).toEqual([]);
    expect(problems('Öl#Käse9')).toEqual([]);
  });

  it('names every broken rule', () => {
    expect(problems('kurz')).toEqual([
      'password.too_short',
      'password.needs_digit',
      'password.needs_special',
    ]);
    expect(problems('12345678')).toEqual([
      'password.needs_letter',
      'password.needs_special',
      'password.common',
    ]);
    expect(problems('!!!!!!!!')).toEqual(['password.needs_letter', 'password.needs_digit']);
  });

  it('counts characters, not UTF-16 code units, and caps the length at 256', () => {
    expect(problems('ä1!ä1!ä')).toContain('password.too_short');
    expect(problems(`a1!${'x'.repeat(253)}`)).toEqual([]);
    expect(problems(`a1!${'x'.repeat(254)}`)).toEqual(['password.too_long']);
  });

  it('refuses control characters (RFC 8265 OpaqueString)', () => {
    expect(problems('Kennwort-1\u0000')).toContain('password.invalid_characters');
    expect(problems('Kennwort-1\u0007')).toContain('password.invalid_characters');
  });

  it('refuses the username, whatever its case', () => {
    expect(problems('Mkoelsch-1', 'MKOELSCH-1')).toEqual(['password.equals_username']);
  });

  it('counts a non-ASCII space as the special character it maps to', () => {
    expect(problems('Kenn\u00a0wort1')).toEqual(problems('Kenn wort1'));
  });

  const person = {
    username: 'mkoelsch',
    givenName: 'Marie-Luise',
    familyName: 'Kölsch',
    tenantId: '05315000',
    tenantName: 'Stadt Köln',
  };
  const contextual = (password: string) => passwordProblems(password, settings, person);

  it('ships at least 10,000 common passwords and refuses them, whatever the case or decoration', () => {
    const list = readFileSync(
      new URL('../../config/common-passwords.txt', import.meta.url),
      'utf8',
    );
    expect(list.split('\n').filter((line) => line !== '').length).toBeGreaterThanOrEqual(10_000);
    for (const password of [
      'Password1!',
      'PASSWORD-123',
      '#Qwerty2024',
      'Hallo123!',
      'Schalke04!',
      'Passwort#1',
      'P@ssw0rd!',
      'Dragon!99',
    ]) {
      expect(problems(password)).toEqual(['password.common']);
    }
  });

  it('refuses the username, the names of the person and of the authority inside the password', () => {
    expect(contextual('xMKOELSCH#9')).toEqual([
      'password.contains_username',
      'password.contains_name',
    ]);
    expect(contextual('mkoe#LSCH9')).toEqual([]);
    expect(contextual('Luise#2020x')).toEqual(['password.contains_name']);
    expect(contextual('koelsch!4u2')).toEqual(['password.contains_name']);
    expect(contextual('Koeln-Rhein7')).toEqual(['password.contains_tenant']);
    expect(contextual('Tür05315000!')).toEqual(['password.contains_tenant']);
  });

  it('refuses the name of the procedure in any spelling', () => {
    for (const password of ['FlüAG-2031x', 'Flueag#7xy', 'Meldeverfahren1!', 'm3ldeverfahren!']) {
      expect(problems(password)).toEqual(['password.contains_service']);
    }
  });

  it('refuses a season or a month with a year, German or English', () => {
    for (const password of [
      'Sommer2024!',
      'Herbst#25',
      'März.2026',
      'December-2025',
      '24Winter!',
    ]) {
      expect(problems(password)).toContain('password.season_year');
    }
  });

  it('does not take a month inside another word for a month', () => {
    expect(problems('Domain#2020x')).toEqual([]);
    expect(problems('Wasserfall-2021')).toEqual([]);
  });

  it('accepts a password that merely resembles nothing in the context', () => {
    expect(contextual('Rhein-Ufer-7')).toEqual([]);
  });

  it('makes one-time passwords that satisfy the policy', () => {
    for (let i = 0; i < 200; i += 1) {
      const password = generateInitialPassword();
      expect(password).toHaveLength(16);
      expect(problems(password)).toEqual([]);
    }
  });
});
