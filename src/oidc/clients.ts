/**
 * Registered relying parties. They are stored as the provider's `Client` model, which the
 * provider looks up through the adapter for every client id it does not know statically
 * (DOC#clients), so a client added by the CLI works without a restart.
 */
import { randomBytes } from 'node:crypto';

import type { Db } from 'mongodb';
import { z } from 'zod';

import { permissions } from '../accounts/model.ts';
import type { AuditTrail, RequestContext } from '../audit/trail.ts';
import { AppError, conflict } from '../errors.ts';
import { parseInput, visibleText } from '../validation.ts';
import { MongoAdapter } from './adapter.ts';

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/** True for the host names of this machine, the only ones plain-http redirect URIs may use. */
export const isLoopbackHost = (hostname: string) => loopbackHosts.has(hostname);

/**
 * Every authorization request carries the URI, percent-encoded, in its own URL, which servers
 * and proxies limit to a few kB; no relying party needs a longer one.
 */
const MAX_REDIRECT_URI_LENGTH = 2000;

/**
 * The first problem of a redirect URI, as RFC 6749 §3.1.2 and OAuth 2.0 Security BCP
 * (RFC 9700) §4.1 want it: absolute, compared exactly (so no wildcard, which an RP might
 * mistake for a pattern), no fragment, no user info, https (plain http only for loopback
 * during development, or under the issuer's own origin for the provider's own console).
 * Applies to post-logout redirect URIs alike.
 */
function redirectUriProblem(value: string, ownOrigin?: string): string | undefined {
  if (value.length > MAX_REDIRECT_URI_LENGTH) return 'redirect_uri.too_long';

  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'redirect_uri.invalid';
  }
  // The URL parser forgives what exact matching does not: "https:cb", spaces, tabs.
  const spelledOut = value.toLowerCase().startsWith(`${url.protocol}//`);
  if (!spelledOut || /[\s\p{Cc}]/u.test(value)) return 'redirect_uri.invalid';

  // The parser decodes "%2A" in the host to "*", so both spellings are checked.
  if (value.includes('*') || url.href.includes('*')) return 'redirect_uri.wildcard';
  if (url.hash || value.includes('#')) return 'redirect_uri.fragment';
  if (url.username || url.password) return 'redirect_uri.userinfo';
  const secure =
    url.protocol === 'https:' ||
    (url.protocol === 'http:' && (isLoopbackHost(url.hostname) || url.origin === ownOrigin));
  return secure ? undefined : 'redirect_uri.insecure';
}

/**
 * The algorithms a client may register for its ID tokens. ES256 is the default; RS256 is
 * there because OpenID Connect requires it (Discovery 1.0 §3), for clients that cannot do
 * better; PS256 is RSA as BSI TR-02102-1 recommends it.
 */
export const idTokenSigningAlgs = ['ES256', 'PS256', 'RS256'] as const;

/** The registration schemas; `ownOrigin` is the issuer's, given only for its own console. */
function clientSchemas(ownOrigin?: string) {
  const redirectUri = z.string().superRefine((value, context) => {
    const problem = redirectUriProblem(value, ownOrigin);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  });
  const newClient = z.object({
    clientId: z
      .string({ error: 'client_id.required' })
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'client_id.invalid'),
    // Shown on the sign-in page ("Anmeldung für: …"), so held to the rules of tenant names.
    clientName: visibleText('client_name', 100).optional(),
    redirectUris: z.array(redirectUri).min(1, 'redirect_uri.required'),
    postLogoutRedirectUris: z.array(redirectUri).default([]),
    public: z.boolean().default(false),
    adminApi: z.boolean().default(false),
    idTokenSigningAlg: z.enum(idTokenSigningAlgs, { error: 'id_token_alg.unknown' }).optional(),
  });
  return {
    newClient,
    redirectUris: newClient.pick({ redirectUris: true, postLogoutRedirectUris: true }),
  };
}

const relyingPartySchemas = clientSchemas();

/**
 * The scopes a client registered for the admin API may ask for, as its `scope` metadata
 * (the library then refuses any other static scope with invalid_scope). Only such a client
 * gets the `admin` scope (grants.ts): a relying party must not obtain admin powers over an
 * authority just because a local admin signed in to it.
 */
export const ADMIN_API_CLIENT_SCOPES = [
  'openid',
  'offline_access',
  'profile',
  'email',
  ...permissions,
  'admin',
];

/** True when the client was registered for the admin API. */
export const mayUseAdminApi = (client: { scope?: string | undefined }) =>
  client.scope?.split(' ').includes('admin') ?? false;

/** Whose redirect URIs a registration is: a relying party's, or the issuer's own console. */
export interface RegistrationOptions {
  /** The issuer's origin, whose URIs may be plain http (only for the provider's console). */
  ownOrigin?: string;
}

const sameList = (stored: unknown, wanted: string[]) =>
  Array.isArray(stored) &&
  stored.length === wanted.length &&
  stored.every((value, index) => value === wanted[index]);

export interface RegisteredClient {
  clientId: string;
  /** Only for confidential clients; shown once. */
  clientSecret: string | undefined;
}

export class ClientRegistry {
  readonly #adapter: MongoAdapter;
  readonly #audit: AuditTrail;

  constructor(db: Db, audit: AuditTrail) {
    this.#adapter = new MongoAdapter(db, 'Client');
    this.#audit = audit;
  }

  /** Registers a first-party client using the code flow with PKCE. */
  async add(
    input: unknown,
    context: RequestContext,
    options: RegistrationOptions = {},
  ): Promise<RegisteredClient> {
    const client = parseInput(this.#schemas(options).newClient, input);
    if (await this.#adapter.find(client.clientId)) throw conflict('client.exists');

    const clientSecret = client.public ? undefined : randomBytes(32).toString('base64url');
    await this.#adapter.upsert(client.clientId, {
      client_id: client.clientId,
      ...(client.clientName === undefined ? {} : { client_name: client.clientName }),
      redirect_uris: client.redirectUris,
      post_logout_redirect_uris: client.postLogoutRedirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(client.adminApi ? { scope: ADMIN_API_CLIENT_SCOPES.join(' ') } : {}),
      ...(client.idTokenSigningAlg === undefined
        ? {}
        : { id_token_signed_response_alg: client.idTokenSigningAlg }),
      ...(clientSecret === undefined
        ? { token_endpoint_auth_method: 'none' }
        : { client_secret: clientSecret, token_endpoint_auth_method: 'client_secret_basic' }),
    });
    await this.#audit.record(context, {
      tenantId: null,
      action: 'client.created',
      outcome: 'success',
      target: { clientId: client.clientId },
      details: {
        public: client.public,
        admin_api: client.adminApi,
        redirect_uris: client.redirectUris,
        ...(client.idTokenSigningAlg === undefined
          ? {}
          : { id_token_signed_response_alg: client.idTokenSigningAlg }),
      },
    });
    return { clientId: client.clientId, clientSecret };
  }

  /**
   * Replaces the redirect and post-logout URIs of a registered client, validated as at
   * registration; returns false when they were already these. The provider caches clients
   * by the hash of their stored metadata, so the next request sees the change.
   */
  async setRedirectUris(
    clientId: string,
    input: { redirectUris: string[]; postLogoutRedirectUris: string[] },
    context: RequestContext,
    options: RegistrationOptions = {},
  ): Promise<boolean> {
    const uris = parseInput(this.#schemas(options).redirectUris, input);
    const stored = await this.#adapter.find(clientId);
    if (!stored) throw new AppError(404, 'client.not_found');
    if (
      sameList(stored.redirect_uris, uris.redirectUris) &&
      sameList(stored.post_logout_redirect_uris, uris.postLogoutRedirectUris)
    ) {
      return false;
    }

    await this.#adapter.upsert(clientId, {
      ...stored,
      redirect_uris: uris.redirectUris,
      post_logout_redirect_uris: uris.postLogoutRedirectUris,
    });
    await this.#audit.record(context, {
      tenantId: null,
      action: 'client.updated',
      outcome: 'success',
      target: { clientId },
      details: {
        redirect_uris: uris.redirectUris,
        post_logout_redirect_uris: uris.postLogoutRedirectUris,
      },
    });
    return true;
  }

  #schemas(options: RegistrationOptions) {
    return options.ownOrigin === undefined ? relyingPartySchemas : clientSchemas(options.ownOrigin);
  }

  async exists(clientId: string): Promise<boolean> {
    return (await this.#adapter.find(clientId)) !== undefined;
  }
}
