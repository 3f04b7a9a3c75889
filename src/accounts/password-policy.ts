/**
 * The password policy: one small rule after another, each answering with the text key of
 * the rule it found broken. The sign-in page, self-service, the admin UI and the CLI all
 * ask this module; none of them has rules of its own.
 */
import { preparePassword, usernameKey } from './normalize.ts';

export interface PasswordPolicySettings {
  minLength: number;
  maxLength: number;
}

export interface PasswordContext {
  username: string;
}

type Rule = (
  password: string,
  settings: PasswordPolicySettings,
  context: PasswordContext,
) => boolean;

const letter = /\p{L}/u;
const digit = /\p{Nd}/u;
const special = /[^\p{L}\p{M}\p{Nd}\s]/u;
// OpaqueString (RFC 8265 §4.2.2) disallows control characters.
const control = /\p{Cc}/u;

/** Each rule with its reason key, in the order the page lists them. */
export const passwordRules: ReadonlyArray<readonly [string, Rule]> = [
  ['password.too_short', (pw, s) => [...pw].length >= s.minLength],
  ['password.too_long', (pw, s) => [...pw].length <= s.maxLength],
  ['password.needs_letter', (pw) => letter.test(pw)],
  ['password.needs_digit', (pw) => digit.test(pw)],
  ['password.needs_special', (pw) => special.test(pw)],
  ['password.invalid_characters', (pw) => !control.test(pw)],
  ['password.equals_username', (pw, _s, c) => usernameKey(pw) !== usernameKey(c.username)],
];

/** Returns the reason keys of every broken rule; an empty list means the password is fine. */
export function passwordProblems(
  raw: string,
  settings: PasswordPolicySettings,
  context: PasswordContext,
): string[] {
  const password = preparePassword(raw);
  return passwordRules
    .filter(([, holds]) => !holds(password, settings, context))
    .map(([reason]) => reason);
}
