/**
 * The demo of the embedded default: one tenant, the demo relying party and two local admins
 * with one-time passwords. Every start with the demo enabled and a loopback issuer creates
 * whichever of them is missing (so the next start completes a first one that was cut short)
 * and points the demo client at the current issuer.
 */
import type { RequestContext } from '../audit/trail.ts';
import { AppError } from '../errors.ts';
import type { Services } from '../services.ts';
import { DEMO_CLIENT_ID, demoRedirectUris, isLoopbackIssuer } from './relying-party.ts';

export interface DemoSeed {
  tenant: { id: string; name: string };
  /** The demo admins created in this start, with their one-time passwords; often none. */
  admins: Array<{ username: string; initialPassword: string }>;
  /** The demo application; undefined when the issuer is not loopback, so nothing was seeded. */
  url: string | undefined;
}

// 05999999: an NRW-shaped key that no real municipality has.
export const DEMO_TENANT = { id: '05999999', name: 'Demo-Kommune' };

/** The demo admins; `example` addresses (RFC 2606) so the `email` scope has something. */
export const DEMO_ADMINS = [
  { username: 'admin1', givenName: 'Anna', familyName: 'Admin' },
  { username: 'admin2', givenName: 'Bernd', familyName: 'Beispiel' },
].map((person) => ({ ...person, email: `${person.username}@demo-kommune.example` }));

const system: RequestContext = { actor: { kind: 'system' } };

/**
 * Creates the missing parts of the demo; returns what a person needs to try it. Only for a
 * loopback issuer: elsewhere demo admins with both permissions would be real accounts of a
 * reachable provider, so nothing is created there.
 */
export async function seedDemo(services: Services): Promise<DemoSeed> {
  if (!isLoopbackIssuer(services.config.issuer)) {
    return { tenant: DEMO_TENANT, admins: [], url: undefined };
  }
  await ensureTenant(services);
  await ensureClient(services);

  const admins = [];
  for (const person of DEMO_ADMINS) {
    const initialPassword = await ensureAdmin(services, person);
    if (initialPassword !== undefined) admins.push({ username: person.username, initialPassword });
  }
  return { tenant: DEMO_TENANT, admins, url: `${services.config.issuer}/demo` };
}

/** Adding an identical tenant again is a no-op in the directory, so this only adds. */
async function ensureTenant({ tenants }: Services): Promise<void> {
  if (await tenants.find(DEMO_TENANT.id)) return;
  await tenants.add({ ...DEMO_TENANT, kind: 'gemeinde', parent: null }, system);
}

/**
 * Registers the demo client, or points its redirect and post-logout URIs at the current
 * issuer: a restart on another PORT or ISSUER would otherwise send the demo to an address
 * the provider refuses (`invalid_redirect_uri`).
 */
async function ensureClient({ clients, config }: Services): Promise<void> {
  const { redirectUri, postLogoutRedirectUri } = demoRedirectUris(config.issuer);
  if (!(await clients.exists(DEMO_CLIENT_ID))) {
    await clients.add(
      {
        clientId: DEMO_CLIENT_ID,
        clientName: 'Demo-Anwendung',
        redirectUris: [redirectUri],
        postLogoutRedirectUris: [postLogoutRedirectUri],
        public: true,
      },
      system,
    );
    return;
  }

  await clients.setRedirectUris(
    DEMO_CLIENT_ID,
    { redirectUris: [redirectUri], postLogoutRedirectUris: [postLogoutRedirectUri] },
    system,
  );
}

/** Creates the admin unless an account of that name exists; returns a new one-time password. */
async function ensureAdmin(
  { accounts, tenants }: Services,
  person: (typeof DEMO_ADMINS)[number],
): Promise<string | undefined> {
  if (await accounts.findByUsername(DEMO_TENANT.id, person.username)) return undefined;
  if (!(await tenants.find(DEMO_TENANT.id))?.active) return undefined;

  try {
    const { initialPassword } = await accounts.create(
      {
        tenantId: DEMO_TENANT.id,
        ...person,
        permissions: ['meldeverfahren', 'zahlungsmitteilungen'],
        roles: ['local_admin'],
      },
      system,
    );
    return initialPassword;
  } catch (error) {
    // Created meanwhile by a CLI on the same data: it is there, and its password is not ours.
    if (error instanceof AppError && error.code === 'username.taken') return undefined;
    throw error;
  }
}
