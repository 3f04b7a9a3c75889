/**
 * Property-based testing of what people and programs send: arbitrary values for form
 * fields, query parameters and JSON properties, and the checks every answer must pass —
 * never a 5xx, never internals, always a German page or a problem / OAuth error document.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

import { expect } from '@jest/globals';
import fc from 'fast-check';
import { parse } from 'node-html-parser';

/**
 * Options for `fc.assert`: a fixed seed per property (from its title), so every run tries
 * the same values and a failure names a seed and path that reproduce it; `FC_SEED` tries
 * other values.
 */
export function runs(title: string, numRuns: number): fc.Parameters<unknown> {
  const fromTitle = createHash('sha256').update(title).digest().readInt32BE(0);
  const seed = process.env.FC_SEED === undefined ? fromTitle : Number(process.env.FC_SEED);
  return { numRuns, seed, endOnFailure: false };
}

const codePoint = (min: number, max: number) =>
  fc.integer({ min, max }).map((code) => String.fromCharCode(code));

/** C0 and C1 controls, NUL included. */
const control = fc.oneof(codePoint(0x00, 0x1f), codePoint(0x7f, 0x9f));
/** Zero-width, bidirectional and other invisible format characters. */
const invisible = fc.constantFrom(
  '\u200b',
  '\u200c',
  '\u200d',
  '\u2060',
  '\ufeff',
  '\u00ad',
  '\u061c',
  '\u202a',
  '\u202b',
  '\u202d',
  '\u202e',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
);
const combiningMark = codePoint(0x0300, 0x036f);

/** Letters with zero-width and bidi characters in between. */
const invisibleMix = fc.string({
  unit: fc.oneof(invisible, fc.constantFrom('a', 'ü', 'ß', '1', '.')),
  minLength: 1,
  maxLength: 30,
});
/** A letter under a pile of combining marks ("Zalgo" text). */
const markPile = fc
  .tuple(fc.constantFrom('a', 'Z', 'ö', ''), fc.string({ unit: combiningMark, minLength: 3 }))
  .map(([base, marks]) => `${base}${marks}`);
/** Strings with unpaired UTF-16 surrogates (sent as U+FFFD or raw bytes by the transport). */
const loneSurrogates = fc
  .tuple(fc.string({ maxLength: 5 }), codePoint(0xd800, 0xdfff), fc.string({ maxLength: 5 }))
  .map(([before, surrogate, after]) => `${before}${surrogate}${after}`);
/** Values that mean something to a parser, a database or a template. */
const meaningful = fc.constantFrom(
  '',
  ' ',
  ' \t\n ',
  '\u00a0\u3000',
  '0',
  '-1',
  '1e309',
  'NaN',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  'toString',
  '$where',
  '{"$gt":""}',
  '.*',
  '(a+)+$',
  '<script>alert(1)</script>',
  '"><img src=x>',
  '{{7*7}}',
  '<%= it %>',
  '../../etc/passwd',
  '%00',
  '%',
  '%zz',
  'ß',
  'İ',
  'ǅ',
  'ﬀ',
  '😀',
  '👩‍👩‍👧',
);
/** Lengths around the limits of our fields, cursors and ids. */
const sized = fc
  .tuple(
    fc.constantFrom(12, 24, 100, 101, 255, 256, 257, 300, 301, 1024, 1025, 4000),
    fc.constantFrom('a', 'f', '0', 'ä', 'ß', '\u200b', '😀', 'e\u0301'),
  )
  .map(([length, unit]) => unit.repeat(length));

/** A string as an attacker or a careless program would send it, up to a few kB. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: control, maxLength: 20 }) },
  { weight: 2, arbitrary: invisibleMix },
  { weight: 2, arbitrary: markPile },
  { weight: 2, arbitrary: loneSurrogates },
  { weight: 3, arbitrary: meaningful },
  { weight: 2, arbitrary: sized },
);

/**
 * A string small enough for a query string: Node answers requests with more than 16 kB of
 * headers with 431 before any of our code runs.
 */
export const queryValue = hostileString.filter((value) => Buffer.byteLength(value) <= 2000);

/** 100 kB of one character: more than any body limit of ours. */
export const hugeString = fc
  .constantFrom('x', 'ä', '\u200b', '😀', '%')
  .map((unit) => unit.repeat(Math.ceil(100_000 / unit.length)));

/** One field of a form or a query string, in every shape the urlencoded format allows. */
export type FieldValue =
  | { kind: 'absent' }
  | { kind: 'text'; values: string[] }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'bracketed'; key: string; value: string };

/**
 * A field's value: absent, one string, the field repeated (an array after parsing),
 * bracketed (`name[]`, `name[key]`: an object to `qs`), or raw bytes that need not be UTF-8.
 */
export function fieldValue(text = hostileString): fc.Arbitrary<FieldValue> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant({ kind: 'absent' as const }) },
    { weight: 8, arbitrary: text.map((value) => ({ kind: 'text' as const, values: [value] })) },
    {
      weight: 2,
      arbitrary: fc
        .array(text, { minLength: 2, maxLength: 3 })
        .map((values) => ({ kind: 'text' as const, values })),
    },
    {
      weight: 2,
      arbitrary: fc
        .uint8Array({ minLength: 1, maxLength: 24 })
        .map((bytes) => ({ kind: 'bytes' as const, bytes })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({
          key: fc.constantFrom('', '0', 'a', '__proto__', 'constructor', 'length', '$gt'),
          value: text,
        })
        .map(({ key, value }) => ({ kind: 'bracketed' as const, key, value })),
    },
  );
}

/** Percent-encodes every byte of `value` (lone surrogates become U+FFFD, as in browsers). */
const percent = (value: string | Uint8Array) =>
  [...(typeof value === 'string' ? Buffer.from(value, 'utf8') : value)]
    .map((byte) => `%${byte.toString(16).padStart(2, '0')}`)
    .join('');

/** The urlencoded pairs of `fields`, in order, for a body or a query string. */
export function encodeFields(fields: Record<string, FieldValue>): string {
  const pairs: string[] = [];
  for (const [name, field] of Object.entries(fields)) {
    if (field.kind === 'text')
      for (const value of field.values) pairs.push(`${name}=${percent(value)}`);
    if (field.kind === 'bytes') pairs.push(`${name}=${percent(field.bytes)}`);
    if (field.kind === 'bracketed')
      pairs.push(`${name}%5B${percent(field.key)}%5D=${percent(field.value)}`);
  }
  return pairs.join('&');
}

/** The one string a field holds, if it holds exactly one (raw bytes read as UTF-8). */
export const single = (field: FieldValue) =>
  field.kind === 'text' && field.values.length === 1
    ? field.values[0]
    : field.kind === 'bytes'
      ? Buffer.from(field.bytes).toString()
      : undefined;

/** A JSON value of the wrong type, or of the right type with a hostile content. */
export const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1e308, -1e308, 0.5, Number.MAX_SAFE_INTEGER + 2) },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, hostileString, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

const texts = (language: string) =>
  Object.values(
    JSON.parse(
      readFileSync(new URL(`../../interactions/texts/${language}.json`, import.meta.url), 'utf8'),
    ) as Record<string, string>,
  );
const fold = (value: string) => value.replace(/\s+/g, ' ').trim();
const escape = (value: string) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sentence = `(?:${texts('de')
  .map((value) => escape(fold(value)).replace(/\\\{\w+\\\}/g, '.+?'))
  .sort((a, b) => b.length - a.length)
  .join('|')})`;
/** One or more German texts of the product, joined by a blank or by "label: text". */
const germanTexts = new RegExp(`^${sentence}(?:(?:: | )${sentence})*$`, 's');

/** True when `value` is made of the product's German texts only. */
export const isGerman = (value: string) => germanTexts.test(fold(value));

/** What must never reach a browser or a client: stack traces, internal names, raw codes. */
const internals =
  /\bat [\w$.<>]+ \(|node_modules|\/src\/|\.ts:\d+|\b(?:Type|Reference|Range|Syntax|Mongo\w*|BSON\w*|Zod)Error\b|ECONNREFUSED|\bundefined\b|\[object Object\]|\bNaN\b/;

/** An answer as the property checks see it. */
export interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** Reads a fetch response into an `Answer`. */
export async function answer(response: Response): Promise<Answer> {
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    body: await response.text(),
  };
}

/** Removes what was sent (as text and as a JSON string) from `body` before it is checked. */
function withoutEchoes(body: string, echoed: string[]): string {
  let rest = body;
  for (const value of echoed) {
    for (const form of [value, Buffer.from(value).toString(), JSON.stringify(value).slice(1, -1)])
      if (form !== '') rest = rest.split(form).join(' ');
  }
  return rest;
}

/** No 5xx, and nothing internal in the body besides the `echoed` values that were sent. */
export function expectNoFault(reply: Answer, echoed: string[] = []): void {
  expect(reply.status).toBeLessThan(500);
  expect(withoutEchoes(reply.body, echoed)).not.toMatch(internals);
}

/**
 * A German HTML page whose messages (error summary, field errors, alerts) are German texts
 * of the product, not text keys, English or anything else; `echoed` strings (the submitted
 * values the page shows again) are left out of the check for internals.
 */
export function expectGermanPage(reply: Answer, echoed: string[] = []): void {
  expect(reply.status).toBeLessThan(500);
  expect(reply.contentType).toMatch(/^text\/html/);
  const document = parse(reply.body);
  expect(document.querySelector('html')?.getAttribute('lang')).toBe('de');
  const main = document.querySelector('main');
  expect(main).not.toBeNull();

  const messages = [
    ...document.querySelectorAll('.field-error'),
    ...document.querySelectorAll('.error-summary li, .error-summary p, .error-summary h2'),
    ...document.querySelectorAll('main [role=alert]:not(.error-summary)'),
  ].map((element) => fold(element.textContent));
  for (const message of messages)
    expect({ message, german: isGerman(message) }).toEqual({ message, german: true });

  expect(withoutEchoes(main!.textContent, echoed)).not.toMatch(internals);
}

/** An RFC 9457 problem document in German with a stable code, matching the status. */
export function expectProblem(reply: Answer, echoed: string[] = []): Record<string, unknown> {
  expectNoFault(reply, echoed);
  expect(reply.status).toBeGreaterThanOrEqual(400);
  expect(reply.contentType).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(reply.body) as Record<string, unknown>;
  expect(problem).toMatchObject({
    status: reply.status,
    type: `urn:flueag-idp:problem:${String(problem.code)}`,
  });
  expect(problem.code).toMatch(/^[a-z_]+(\.[a-z_]+)+$/);
  for (const text of [problem.title, problem.detail])
    expect({ text, german: isGerman(String(text)) }).toEqual({ text, german: true });
  for (const [field, entries] of Object.entries(
    (problem.errors ?? {}) as Record<string, Array<{ code: string; message: string }>>,
  )) {
    for (const { code, message } of entries)
      expect({ field, code, german: isGerman(message) }).toEqual({ field, code, german: true });
  }
  return problem;
}

/** An OAuth 2.0 error response (RFC 6749 §5.2): JSON with a registered error code. */
export function expectOAuthError(reply: Answer): void {
  expectNoFault(reply);
  expect([400, 401]).toContain(reply.status);
  expect(reply.contentType).toMatch(/^application\/json/);
  const body = JSON.parse(reply.body) as Record<string, unknown>;
  expect(body.error).toMatch(
    /^(?:invalid_request|invalid_client|invalid_grant|unauthorized_client|unsupported_grant_type|invalid_scope|invalid_target|invalid_token)$/,
  );
  if (body.error_description !== undefined) expect(typeof body.error_description).toBe('string');
}
