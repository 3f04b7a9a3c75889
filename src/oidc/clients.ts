/**
 * Registered relying parties. They are stored as the provider's `Client` model, which the
 * provider looks up through the adapter for every client id it does not know statically
 * (DOC#clients), so a client added by the CLI works without a restart.
 */
import { randomBytes } from 'node:crypto';

import type { Db } from 'mongodb';
import { z } from 'zod';

import type { AuditTrail, RequestContext } from '../audit/trail.ts';
import { conflict } from '../errors.ts';
import { parseInput } from '../validation.ts';
import { MongoAdapter } from './adapter.ts';

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * A redirect URI as RFC 6749 §3.1.2 and OAuth 2.0 Security BCP §4.1 want it: absolute,
 * no fragment, https (plain http only for loopback during development), no user info.
 */
const redirectUri = z.string().superRefine((value, context) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    context.addIssue({ code: 'custom', message: 'redirect_uri.invalid' });
    return;
  }
  const problem =
    url.hash || value.includes('#')
      ? 'redirect_uri.fragment'
      : url.username || url.password
        ? 'redirect_uri.userinfo'
        : url.protocol === 'https:' || (url.protocol === 'http:' && loopbackHosts.has(url.hostname))
          ? undefined
          : 'redirect_uri.insecure';
  if (problem) context.addIssue({ code: 'custom', message: problem });
});

const newClientSchema = z.object({
  clientId: z
    .string({ error: 'client_id.required' })
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'client_id.invalid'),
  clientName: z.string().trim().min(1).max(100).optional(),
  redirectUris: z.array(redirectUri).min(1, 'redirect_uri.required'),
  postLogoutRedirectUris: z.array(redirectUri).default([]),
  public: z.boolean().default(false),
});

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
  async add(input: unknown, context: RequestContext): Promise<RegisteredClient> {
    const client = parseInput(newClientSchema, input);
    if (await this.#adapter.find(client.clientId)) throw conflict('client.exists');

    const clientSecret = client.public ? undefined : randomBytes(32).toString('base64url');
    await this.#adapter.upsert(client.clientId, {
      client_id: client.clientId,
      ...(client.clientName === undefined ? {} : { client_name: client.clientName }),
      redirect_uris: client.redirectUris,
      post_logout_redirect_uris: client.postLogoutRedirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(clientSecret === undefined
        ? { token_endpoint_auth_method: 'none' }
        : { client_secret: clientSecret, token_endpoint_auth_method: 'client_secret_basic' }),
    });
    await this.#audit.record(context, {
      tenantId: null,
      action: 'client.created',
      outcome: 'success',
      target: { clientId: client.clientId },
      details: { public: client.public, redirect_uris: client.redirectUris },
    });
    return { clientId: client.clientId, clientSecret };
  }

  async exists(clientId: string): Promise<boolean> {
    return (await this.#adapter.find(clientId)) !== undefined;
  }
}
