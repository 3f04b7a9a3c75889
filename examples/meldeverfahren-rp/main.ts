/**
 * Starts the example relying party from environment variables:
 *
 *   ISSUER=http://localhost:3000 CLIENT_ID=meldeverfahren CLIENT_SECRET=… \
 *     node examples/meldeverfahren-rp/main.ts
 */
import { startRelyingParty } from './app.ts';

const port = Number(process.env.PORT ?? 4000);
const required = (name: string) => {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`meldeverfahren-rp: set ${name}\n`);
    process.exit(2);
  }
  return value;
};

const running = await startRelyingParty({
  issuer: required('ISSUER'),
  clientId: required('CLIENT_ID'),
  clientSecret: process.env.CLIENT_SECRET || undefined,
  baseUrl: process.env.BASE_URL ?? `http://localhost:${port}`,
  apiResource: process.env.REPORTING_API_RESOURCE ?? 'urn:flueag:meldeverfahren-api',
  port,
  host: process.env.HOST ?? '127.0.0.1',
});
process.stdout.write(`example relying party on ${running.url}\n`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void running.close().then(() => process.exit(0)));
}
