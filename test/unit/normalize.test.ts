import { describe, expect, it } from '@jest/globals';

import {
  preparePassword,
  usernameDisplay,
  usernameKey,
  usernameProblem,
} from '../../src/accounts/normalize.ts';

describe('username comparison (RFC 8265 UsernameCaseMapped)', () => {
  it('treats case, composition and surrounding space as the same name', () => {
    const key = usernameKey('Müller');
    expect(usernameKey('MÜLLER')).toBe(key);
    expect(usernameKey('Mu\u0308ller')).toBe(key);
    expect(usernameKey('  müller ')).toBe(key);
  });

  it('keeps ß and ss apart', () => {
    expect(usernameKey('Weiß')).not.toBe(usernameKey('Weiss'));
    expect(usernameKey('WEIẞ')).toBe(usernameKey('weiß'));
  });

  it('maps fullwidth letters to their ASCII forms', () => {
    expect(usernameKey('ＭＵＥＬＬＥＲ')).toBe('mueller');
  });

  it('refuses compatibility characters and piles of combining marks, which mimic other names', () => {
    expect(usernameProblem('\ufb00oo')).toBe('username.invalid_characters');
    expect(usernameProblem('anna\u00b2')).toBe('username.invalid_characters');
    expect(usernameProblem(`a${'\u0301'.repeat(63)}`)).toBe('username.invalid_characters');
    expect(usernameProblem(`e${'\u0301'.repeat(4)}`)).toBe('username.invalid_characters');
    expect(usernameProblem('x\u0323\u0302\u0303y')).toBe('username.invalid_characters');
    expect(usernameProblem('nguye\u0302\u0303n')).toBeUndefined();
    expect(usernameProblem('ＭＵＥＬＬＥＲ')).toBeUndefined();
    expect(usernameDisplay(' Ｆｕｌｌ ')).toBe('Full');
  });

  it('refuses empty, over-long and spaced names', () => {
    expect(usernameProblem('   ')).toBe('username.required');
    expect(usernameProblem('a'.repeat(65))).toBe('username.too_long');
    expect(usernameProblem('anna beispiel')).toBe('username.invalid_characters');
    expect(usernameProblem('anna\u0000')).toBe('username.invalid_characters');
    expect(usernameProblem('anna.beispiel@koeln')).toBeUndefined();
  });
});

describe('password preparation (RFC 8265 OpaqueString)', () => {
  it('composes and maps non-ASCII spaces, but keeps case', () => {
    expect(preparePassword('Mu\u0308ller\u00a01')).toBe('Müller 1');
    expect(preparePassword('ABC')).toBe('ABC');
  });
});
