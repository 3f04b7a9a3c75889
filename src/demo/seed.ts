/**
 * The demo of the embedded default: on an empty database, one tenant, the demo relying
 * party and two local admins with one-time passwords, printed once.
 */
import type { RequestContext } from '../audit/trail.ts';
import type { Services } from '../services.ts';
import { DEMO_CLIENT_ID, demoRedirectUris } from './relying-party.ts';

export interface DemoCredentials {
  tenant: { id: string; name: string };
  admins: Array<{ username: string; initialPassword: string }>;
}

const system: RequestContext = { actor: { kind: 'system' } };

/** Seeds the demo when no tenant exists yet; returns the credentials, or undefined. */
export async function seedDemo(services: Services): Promise<DemoCredentials | undefined> {
  const { tenants, accounts, clients, config, connection } = services;
  if ((await connection.db!.collection('tenants').countDocuments({}, { limit: 1 })) > 0)
    return undefined;

  // 05999999: an NRW-shaped key that no real municipality has.
  const tenant = { id: '05999999', name: 'Demo-Kommune' };
  await tenants.add({ id: tenant.id, name: tenant.name, kind: 'gemeinde', parent: null }, system);
  if (!(await clients.exists(DEMO_CLIENT_ID))) {
    const uris = demoRedirectUris(config.issuer);
    await clients.add(
      {
        clientId: DEMO_CLIENT_ID,
        clientName: 'Demo-Anwendung',
        redirectUris: [uris.redirectUri],
        postLogoutRedirectUris: [uris.postLogoutRedirectUri],
        public: true,
      },
      system,
    );
  }

  const people = [
    { username: 'admin1', givenName: 'Anna', familyName: 'Admin' },
    { username: 'admin2', givenName: 'Bernd', familyName: 'Beispiel' },
  ];
  const admins = [];
  for (const person of people) {
    const { initialPassword } = await accounts.create(
      {
        tenantId: tenant.id,
        ...person,
        permissions: ['meldeverfahren', 'zahlungsmitteilungen'],
        roles: ['local_admin'],
      },
      system,
    );
    admins.push({ username: person.username, initialPassword });
  }
  return { tenant, admins };
}
