/**
 * String preparation after RFC 8265 (PRECIS): usernames are compared in the
 * UsernameCaseMapped profile, passwords in the OpaqueString profile.
 */

// U+FF01..U+FF5E are the fullwidth forms of ASCII U+0021..U+007E (RFC 8265 §3.3.1 width mapping).
const fullwidthAscii = /[\uFF01-\uFF5E]/g;
// Every Unicode space separator other than U+0020 (RFC 8265 §4.2.1 additional mapping).
const nonAsciiSpace = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g;

const usernameAllowed = /^[\p{L}\p{M}\p{Nd}._@-]+$/u;
// More combining marks on one letter than a name needs after composition (NFC leaves at
// most two on the letters of the languages written here, e.g. Vietnamese ệ = ê + dot).
const markPile = /\p{M}{3,}/u;

/** Trimmed and width-mapped (RFC 8265 §3.3.1): fullwidth ASCII becomes ASCII. */
const widthMapped = (raw: string) =>
  raw.trim().replace(fullwidthAscii, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));

/** The comparison key of a username: trimmed, width-mapped, NFC, lower case (ß stays ß). */
export function usernameKey(raw: string): string {
  return widthMapped(raw).normalize('NFC').toLowerCase().normalize('NFC');
}

/** The username as it is displayed: trimmed, width-mapped and composed, case kept. */
export function usernameDisplay(raw: string): string {
  return widthMapped(raw).normalize('NFC');
}

/** Reason code when `raw` cannot be a username, or undefined when it can. */
export function usernameProblem(raw: string): string | undefined {
  const key = usernameKey(raw);
  if (key.length === 0) return 'username.required';
  if ([...key].length > 64) return 'username.too_long';
  if (!usernameAllowed.test(key)) return 'username.invalid_characters';
  // The IdentifierClass of RFC 8264 (§9.17) disallows compatibility characters such as the
  // ligature ﬀ or the superscript ², which look like other names: a name must be its own
  // compatibility form.
  if (key.normalize('NFKC') !== key) return 'username.invalid_characters';
  if (markPile.test(key)) return 'username.invalid_characters';
  return undefined;
}

/** A password prepared for hashing and comparison (OpaqueString: spaces mapped, NFC). */
export function preparePassword(raw: string): string {
  return raw.replace(nonAsciiSpace, ' ').normalize('NFC');
}

/** The key under which a tenant name is looked up: trimmed, NFC, lower case. */
export function nameKey(raw: string): string {
  return raw.trim().replace(/\s+/g, ' ').normalize('NFC').toLowerCase();
}
