import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';

import { text } from '../support/browser.ts';
import { signInToConsole } from '../support/console.ts';
import { createAccount, startTestServer, type TestServer } from '../support/server.ts';
import { createTenant } from '../support/server.ts';

let server: TestServer;
let tenantId: string;

beforeAll(async () => {
  server = await startTestServer();
  tenantId = (await createTenant(server)).id;
});
afterAll(() => server.close());

describe('the admin console', () => {
  test('a local admin signs in and sees the accounts of the tenant', async () => {
    const admin = await createAccount(server, tenantId, { roles: ['local_admin'] });
    await createAccount(server, tenantId, { username: 'm.muster', familyName: 'Muster' });
    const { page } = await signInToConsole(server, admin);
    expect(page.url).toMatch(/\/admin\/accounts$/);
    expect(text(page)).toContain('2 Konten gefunden.');
    expect(text(page)).toContain('Muster, Erika');
  });
});
