/**
 * The password policy: one small rule after another, each answering with the text key of
 * the rule it found broken. The sign-in page, self-service, the admin UI and the CLI all
 * ask this module; none of them has rules of its own.
 *
 * Beyond the mandated composition rules, the policy refuses what an attacker tries first
 * (NIST SP 800-63B §3.1.1.2, ASVS 5.0 6.2.4 and 6.2.11): the most common passwords, and
 * words a person near the account would guess — its username and names, the authority,
 * this procedure, and a season or month with a year (what a 180-day expiry breeds).
 */
import { readFileSync } from 'node:fs';

import { preparePassword, usernameKey } from './normalize.ts';

export interface PasswordPolicySettings {
  minLength: number;
  maxLength: number;
}

/** What the policy knows about the account; names and tenant are optional (CLI, tests). */
export interface PasswordContext {
  username: string;
  givenName?: string;
  familyName?: string;
  tenantId?: string;
  tenantName?: string;
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

/**
 * Lower case, German umlauts spelled out, other accents removed: `Flüag`, `FLUEAG` and
 * `flueag` read alike, as they do to a person guessing.
 */
export function fold(text: string): string {
  return text
    .normalize('NFC')
    .toLowerCase()
    .replace(/ä/g, 'ae')
    .replace(/ö/g, 'oe')
    .replace(/ü/g, 'ue')
    .replace(/ß/g, 'ss')
    .normalize('NFKD')
    .replace(/\p{M}/gu, '');
}

const leet: Record<string, string> = {
  '@': 'a',
  '4': 'a',
  '3': 'e',
  '0': 'o',
  $: 's',
  '5': 's',
  '7': 't',
  '+': 't',
  '!': 'i',
  '|': 'l',
};

/** The folded password and its readings with digits and signs taken as letters (`P@$$w0rd`). */
function readings(password: string): string[] {
  const folded = fold(password);
  const unleet = (one: string) =>
    [...folded].map((c) => (c === '1' ? one : (leet[c] ?? c))).join('');
  return [...new Set([folded, unleet('i'), unleet('l')])];
}

let commonPasswords: Set<string> | undefined;

/** The shipped list (config/common-passwords.txt, see its NOTICE), loaded on first use. */
function common(): Set<string> {
  commonPasswords ??= new Set(
    readFileSync(new URL('../../config/common-passwords.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line !== ''),
  );
  return commonPasswords;
}

// Digits, signs and spaces that people add at either end to pass composition rules.
const decoration = /^[^\p{L}]+|[^\p{L}]+$/gu;

/** True when the password, or its core without added digits and signs, is a common one. */
function isCommon(password: string): boolean {
  const list = common();
  const lower = password.normalize('NFC').toLowerCase();
  const core = lower.replace(decoration, '');
  const candidates = [lower, core, ...readings(core)];
  for (const reading of readings(password)) candidates.push(reading.replace(decoration, ''));
  return candidates.some((candidate) => candidate.length > 0 && list.has(candidate));
}

/** True when any reading of the password contains one of `words` (folded, ≥ `min` long). */
function containsAny(password: string, words: Array<string | undefined>, min = 3): boolean {
  const needles = words
    .filter((word): word is string => word !== undefined)
    .map(fold)
    .filter((word) => word.length >= min);
  if (needles.length === 0) return false;
  return readings(password).some((reading) => needles.some((needle) => reading.includes(needle)));
}

/** The parts of a name: `Müller-Lüdenscheidt` has two, each guessable alone. */
const nameParts = (name: string | undefined) => (name ?? '').split(/[^\p{L}\p{M}]+/u);

// Words of tenant names that say nothing about one authority ("Stadt Bonn" → "bonn").
const genericTenantWords = new Set(['stadt', 'gemeinde', 'kreis', 'markt', 'hansestadt']);

const tenantWords = (context: PasswordContext) => [
  ...nameParts(context.tenantName).filter((part) => !genericTenantWords.has(fold(part))),
  context.tenantId,
];

const serviceWords = ['flueag', 'fluag', 'meldeverfahren', 'zahlungsmitteilung'];

const seasonsAndMonths = [
  ...['fruehling', 'fruehjahr', 'sommer', 'herbst', 'winter'],
  ...['spring', 'summer', 'autumn', 'fall'],
  ...['januar', 'jaenner', 'februar', 'maerz', 'april', 'mai', 'juni', 'juli', 'august'],
  ...['september', 'oktober', 'november', 'dezember'],
  ...['january', 'february', 'march', 'may', 'june', 'july', 'october', 'december'],
];
// The word must start a word of its own, so that `Domain2020` or `Email-24` pass.
const season = `(?<![a-z])(?:${seasonsAndMonths.join('|')})`;
const seasonWithYear = new RegExp(
  // A four-digit year anywhere, or two digits right before or after the word ("Sommer24!").
  `(?=.*${season})(?=.*(?:19|20)\\d\\d)|${season}[^a-z\\d]*\\d{2}|\\d{2}[^a-z\\d]*${season}`,
);

/** Each rule with its reason key, in the order the page lists them. */
export const passwordRules: ReadonlyArray<readonly [string, Rule]> = [
  ['password.too_short', (pw, s) => [...pw].length >= s.minLength],
  ['password.too_long', (pw, s) => [...pw].length <= s.maxLength],
  ['password.needs_letter', (pw) => letter.test(pw)],
  ['password.needs_digit', (pw) => digit.test(pw)],
  ['password.needs_special', (pw) => special.test(pw)],
  ['password.invalid_characters', (pw) => !control.test(pw)],
  ['password.equals_username', (pw, _s, c) => usernameKey(pw) !== usernameKey(c.username)],
  [
    'password.contains_username',
    (pw, _s, c) => usernameKey(pw) === usernameKey(c.username) || !containsAny(pw, [c.username]),
  ],
  [
    'password.contains_name',
    (pw, _s, c) => !containsAny(pw, [...nameParts(c.givenName), ...nameParts(c.familyName)]),
  ],
  ['password.contains_tenant', (pw, _s, c) => !containsAny(pw, tenantWords(c), 4)],
  ['password.contains_service', (pw) => !containsAny(pw, serviceWords)],
  ['password.season_year', (pw) => !seasonWithYear.test(fold(pw))],
  ['password.common', (pw) => !isCommon(pw)],
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
