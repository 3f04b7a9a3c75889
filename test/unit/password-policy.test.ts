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
    expect(problems('12345678')).toEqual(['password.needs_letter', 'password.needs_special']);
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

  it('makes one-time passwords that satisfy the policy', () => {
    for (let i = 0; i < 200; i += 1) {
      const password = generateInitialPassword();
      expect(password).toHaveLength(16);
      expect(problems(password)).toEqual([]);
    }
  });
});
