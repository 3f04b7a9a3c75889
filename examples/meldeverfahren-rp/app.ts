/**
 * An example relying party: the FlüAG-Meldeverfahren web application and its reporting API
 * in one small process, built on openid-client. The web part signs people in with the
 * authorization code flow and PKCE, asks for a JWT access token for the API (RFC 8707
 * `resource`), shows who signed in for which authority, calls the API with the token,
 * refreshes it, and signs out through the provider (RP-initiated logout).
 *
 * Sessions live in this process's memory, which is enough for an example; a real
 * application keeps them in its own store, as the identity provider does.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';

import * as oidc from 'openid-client';

import { AccessDenied, accessTokenVerifier } from './api.ts';

export interface Settings {
  /** The identity provider's issuer URL. */
  issuer: string;
  clientId: string;
  /** Unset for a public client. */
  clientSecret: string | undefined;
  /** This application's base URL; `/callback` and `/` must be registered at the provider. */
  baseUrl: string;
  /** The reporting API's resource indicator (the provider's REPORTING_API_RESOURCE). */
  apiResource: string;
  port: number;
  host: string;
}

interface Session {
  pending?: { state: string; nonce: string; verifier: string };
  claims?: oidc.IDToken;
  idToken?: string;
  accessToken?: string;
  refreshToken?: string;
}

const SCOPE = 'openid profile email meldeverfahren zahlungsmitteilungen offline_access';
const COOKIE = 'meldeverfahren_session';

export interface RunningRelyingParty {
  url: string;
  close(): Promise<void>;
}

export async function startRelyingParty(settings: Settings): Promise<RunningRelyingParty> {
  const config = await oidc.discovery(
    new URL(settings.issuer),
    settings.clientId,
    undefined,
    settings.clientSecret === undefined
      ? oidc.None()
      : oidc.ClientSecretBasic(settings.clientSecret),
    // Plain HTTP only for a provider on this machine (development and tests).
    isLoopback(settings.issuer) ? { execute: [oidc.allowInsecureRequests] } : undefined,
  );
  const metadata = config.serverMetadata();
  const verifyAccessToken = accessTokenVerifier({
    issuer: metadata.issuer,
    jwksUri: new URL(metadata.jwks_uri!),
    audience: settings.apiResource,
  });
  const sessions = new Map<string, Session>();
  const redirectUri = `${settings.baseUrl}/callback`;
  const postLogoutRedirectUri = `${settings.baseUrl}/`;

  const routes: Record<
    string,
    (request: http.IncomingMessage, session: Session) => Promise<Answer>
  > = {
    'GET /': async (_request, session) => page(home(session)),

    'GET /login': async (_request, session) => {
      const pending = {
        state: oidc.randomState(),
        nonce: oidc.randomNonce(),
        verifier: oidc.randomPKCECodeVerifier(),
      };
      session.pending = pending;
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: SCOPE,
        resource: settings.apiResource,
        state: pending.state,
        nonce: pending.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
        code_challenge_method: 'S256',
        ui_locales: 'de',
      });
      return redirect(url.href);
    },

    'GET /callback': async (request, session) => {
      const pending = session.pending;
      if (!pending) return page('<p>Keine Anmeldung begonnen.</p>', 400);
      delete session.pending;
      const current = new URL(request.url!, settings.baseUrl);
      if (current.searchParams.has('error')) {
        // For example access_denied: the account holds neither permission.
        return page(
          `<p>Anmeldung abgelehnt: ${escape(current.searchParams.get('error')!)}</p>`,
          403,
        );
      }
      const tokens = await oidc.authorizationCodeGrant(
        config,
        current,
        {
          pkceCodeVerifier: pending.verifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
        },
        { resource: settings.apiResource },
      );
      Object.assign(session, {
        claims: tokens.claims(),
        idToken: tokens.id_token,
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
      });
      return redirect('/');
    },

    'GET /meldungen': async (_request, session) => {
      if (!session.accessToken) return redirect('/login');
      const answer = await callApi(session.accessToken);
      return page(`<p>API: ${escape(JSON.stringify(answer))}</p><p><a href="/">Zurück</a></p>`);
    },

    'POST /refresh': async (_request, session) => {
      if (!session.refreshToken) return redirect('/login');
      // Refresh tokens rotate: the old one is spent, so keep the new one. Two refreshes of
      // one token at once would revoke the whole grant; a real application serialises them.
      const tokens = await oidc.refreshTokenGrant(config, session.refreshToken, {
        resource: settings.apiResource,
      });
      session.accessToken = tokens.access_token;
      session.refreshToken = tokens.refresh_token;
      return redirect('/');
    },

    'POST /logout': async (_request, session) => {
      const idToken = session.idToken;
      for (const key of Object.keys(session)) delete session[key as keyof Session];
      if (!idToken) return redirect('/');
      const url = oidc.buildEndSessionUrl(config, {
        id_token_hint: idToken,
        post_logout_redirect_uri: postLogoutRedirectUri,
      });
      return redirect(url.href);
    },

    // The reporting API: stateless, it trusts nothing but a valid access token.
    'GET /api/meldungen': async (request) => {
      const claims = await verifyAccessToken(request.headers.authorization, 'meldeverfahren');
      return json({
        tenant_id: claims.tenant_id,
        sub: claims.sub,
        permissions: claims.permissions,
      });
    },
  };

  /** The web part calls its API as any other client would, over HTTP with the bearer token. */
  async function callApi(accessToken: string) {
    const response = await fetch(`${settings.baseUrl}/api/meldungen`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    return { status: response.status, body: (await response.json()) as unknown };
  }

  const server = http.createServer((request, response) => {
    const { id, session, isNew } = sessionOf(request, sessions);
    // `URL.parse` gives null for a request target that is no URL (`http://[`).
    const target = URL.parse(request.url ?? '', settings.baseUrl);
    const route = target && routes[`${request.method} ${target.pathname}`];
    const handled = route
      ? route(request, session)
      : Promise.resolve(page('<p>Nicht gefunden</p>', target ? 404 : 400));
    void handled
      .catch((error: unknown) =>
        error instanceof AccessDenied
          ? json({ error: error.error, error_description: error.message }, error.status, {
              'WWW-Authenticate': `Bearer error="${error.error}"`,
            })
          : page(`<p>Fehler: ${escape(String((error as Error).message ?? error))}</p>`, 500),
      )
      .then((answer) => {
        const headers = { ...answer.headers };
        if (isNew) {
          headers['Set-Cookie'] =
            `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax${settings.baseUrl.startsWith('https:') ? '; Secure' : ''}`;
        }
        response.writeHead(answer.status, headers).end(answer.body);
      });
  });
  await new Promise<void>((resolve) => server.listen(settings.port, settings.host, resolve));

  return {
    url: settings.baseUrl,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function sessionOf(request: http.IncomingMessage, sessions: Map<string, Session>) {
  const presented = new RegExp(`(?:^|; )${COOKIE}=([A-Za-z0-9_-]{22})(?:;|$)`).exec(
    request.headers.cookie ?? '',
  )?.[1];
  const existing = presented === undefined ? undefined : sessions.get(presented);
  if (presented !== undefined && existing)
    return { id: presented, session: existing, isNew: false };
  const id = randomBytes(16).toString('base64url');
  const session: Session = {};
  sessions.set(id, session);
  return { id, session, isNew: true };
}

function home(session: Session): string {
  const claims = session.claims;
  if (!claims) {
    return '<p><a href="/login">Über den Identitätsanbieter anmelden</a></p>';
  }
  const rows = [
    'name',
    'preferred_username',
    'tenant_id',
    'tenant_name',
    'tenant_kind',
    'permissions',
  ]
    .map((name) => `<tr><th>${name}</th><td>${escape(JSON.stringify(claims[name]))}</td></tr>`)
    .join('');
  return [
    `<p>Angemeldet als ${escape(String(claims.name))}.</p>`,
    `<table>${rows}</table>`,
    '<p><a href="/meldungen">Meldungen abrufen (API)</a></p>',
    '<form method="post" action="/refresh"><button>Zugriffstoken erneuern</button></form>',
    '<form method="post" action="/logout"><button>Abmelden</button></form>',
  ].join('\n');
}

const page = (body: string, status = 200): Answer => ({
  status,
  headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' },
  body: `<!doctype html><html lang="de"><meta charset="utf-8"><title>FlüAG-Meldeverfahren (Beispiel)</title><main><h1>FlüAG-Meldeverfahren</h1>${body}</main></html>`,
});

const json = (value: unknown, status = 200, headers: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers },
  body: JSON.stringify(value),
});

const redirect = (location: string): Answer => ({
  status: 303,
  headers: { Location: location, 'Cache-Control': 'no-store' },
  body: '',
});

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function isLoopback(url: string): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(new URL(url).hostname);
}
