/**
 * Steps that many integration tests share: open the sign-in page, sign in through the real
 * form, obtain tokens, and read the stored state that the pages do not show.
 */
import { parse } from 'node-html-parser';

import {
  asPage,
  asRedirect,
  authorizationRequest,
  Browser,
  exchange,
  type Authorization,
  type Page,
} from './browser.ts';
import type { Installation, TestAccount, TestClient, TestServer } from './server.ts';

export const DAY = 86_400_000;

/** The German sentences the tests look for (interactions/texts/de.json). */
export const messages = {
  loginFailed:
    'Die Anmeldung ist fehlgeschlagen. Bitte prüfen Sie Kommune / Behörde, Benutzername und Kennwort.',
  locked: 'Konto gesperrt — bitte wenden Sie sich an Ihre lokalen Administratoren.',
  deactivated: 'Ihr Konto ist deaktiviert — bitte wenden Sie sich an Ihre lokalen Administratoren.',
  retired: 'Ihr Konto wurde endgültig deaktiviert und kann nicht mehr angemeldet werden.',
  initialExpired: 'Ihr Einmal-Kennwort ist abgelaufen',
  sessionEnded: 'Ihre Sitzung ist beendet. Bitte melden Sie sich erneut an.',
  passwordChangeTitle: 'Neues Kennwort festlegen',
  passwordExpired: 'Ihr Kennwort ist abgelaufen, es gilt 180 Tage.',
  fieldRequired: 'Bitte füllen Sie dieses Feld aus.',
  fieldTooLong: 'Die Eingabe ist zu lang.',
  fieldInvalid: 'Die Eingabe enthält unzulässige Zeichen.',
  fieldNotValid: 'Die Eingabe ist ungültig.',
  csrfInvalid: 'Das Formular ist abgelaufen oder wurde nicht von dieser Seite gesendet.',
  tooLarge: 'Die Eingabe ist zu groß.',
  invalidRedirectUri:
    'Die Rücksprungadresse der Anwendung ist nicht registriert. Aus Sicherheitsgründen wird nicht weitergeleitet.',
  unavailable:
    'Der Anmeldedienst ist vorübergehend nicht verfügbar. Bitte versuchen Sie es in einigen Minuten erneut.',
} as const;

export interface SignInPage {
  browser: Browser;
  authorization: Authorization;
  login: Page;
}

/**
 * Starts an authorization request in `browser`, as a link on the relying party's site does,
 * and returns the page it leads to.
 */
export async function openSignIn(
  client: TestClient,
  params: Record<string, string> = {},
  browser = new Browser(),
): Promise<SignInPage> {
  const authorization = await authorizationRequest(client, params);
  const login = asPage(await browser.visit(authorization.url.href, undefined, {}, 'cross-site'));
  return { browser, authorization, login };
}

/** The sign-in form's fields for `person`, with `password` replaced when given. */
export const credentials = (
  person: Pick<TestAccount, 'tenantId' | 'username' | 'password'>,
  password = person.password,
) => ({
  tenant: person.tenantId,
  username: person.username,
  password,
});

/** Signs `person` in through the form and exchanges the code; `params` extend the request. */
export async function signInForTokens(
  client: TestClient,
  person: TestAccount,
  params: Record<string, string> = {},
  browser = new Browser(),
) {
  const { authorization, login } = await openSignIn(client, params, browser);
  const callback = asRedirect(await browser.submit(login, credentials(person), client.redirectUri));
  const tokens = await exchange(client, authorization, callback);
  return { browser, authorization, callback, tokens };
}

/** The account document as stored. */
export async function storedAccount(test: Installation, accountId: string) {
  const account = await test.services.db
    .collection('accounts')
    .findOne({ _id: accountId as never });
  if (!account) throw new Error(`account ${accountId} is not stored`);
  return account as unknown as {
    state: string;
    password: {
      hash: string;
      changedAt: Date;
      mustChange: boolean;
      initialExpiresAt: Date | null;
      history: string[];
    };
    lockout: { count: number; failures: string[]; lockedAt: Date | null };
    lastLoginAt: Date | null;
  };
}

/** Sets fields of the stored account directly, as time or another process would have. */
export async function updateAccount(
  test: TestServer,
  accountId: string,
  set: Record<string, unknown>,
): Promise<void> {
  const { matchedCount } = await test.services.db
    .collection('accounts')
    .updateOne({ _id: accountId as never }, { $set: set });
  if (matchedCount !== 1) throw new Error(`account ${accountId} is not stored`);
}

/** Audit events matching `filter`, oldest first. */
export function auditEvents(test: Installation, filter: Record<string, unknown>) {
  return test.services.db.collection('audit_events').find(filter).sort({ at: 1, _id: 1 }).toArray();
}

/** The payload of a JWT, unverified (the tests read what the provider put in). */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
    string,
    unknown
  >;
}

/** The form's hidden fields (the CSRF token) and its absolute action URL. */
export function formOf(page: Page, selector = 'form') {
  const form = page.document.querySelector(selector);
  if (!form) throw new Error(`no form on ${page.url}`);
  const hidden = Object.fromEntries(
    form
      .querySelectorAll('input[type=hidden]')
      .map((input) => [input.getAttribute('name')!, input.getAttribute('value') ?? '']),
  );
  return { action: new URL(form.getAttribute('action') ?? page.url, page.url).href, hidden };
}

/**
 * Posts `body` as it stands (a raw urlencoded string, so fields may repeat or be malformed)
 * to the form of `page`, and returns the answer without following redirects.
 */
export async function postRaw(
  browser: Browser,
  page: Page,
  body: string | Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' },
): Promise<Page & { location: string | null }> {
  const { action } = formOf(page);
  const response = await browser.request(action, { method: 'POST', headers, body });
  const html = await response.text();
  return {
    url: action,
    status: response.status,
    html,
    document: parse(html),
    location: response.headers.get('location'),
  };
}

/** URL-encodes `pairs` in order, keeping repeated names. */
export function encodeForm(pairs: Array<[string, string]>): string {
  const body = new URLSearchParams();
  for (const [name, value] of pairs) body.append(name, value);
  return body.toString();
}
