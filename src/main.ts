/**
 * `npm start`: configuration, database (the embedded FerretDB unless MONGODB_URI is set),
 * services, the demo on an empty embedded database, and the HTTP server. SIGINT and SIGTERM
 * close the server, then the database.
 */
import { loadConfig, type Config } from './config.ts';
import { openEmbeddedDatabase } from './db/embedded.ts';
import { seedDemo, type DemoCredentials } from './demo/seed.ts';
import { operatorMessage } from './failures.ts';
import { createLogger } from './log.ts';
import { startServer, type RunningServer } from './server.ts';
import { openServices, type Services } from './services.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);

  const embedded =
    config.mongodbUri === undefined
      ? await openEmbeddedDatabase(config.dataDir, 'server')
      : undefined;
  let services: Services;
  let server: RunningServer;
  let demo: DemoCredentials | undefined;
  try {
    services = await openServices(config, log, config.mongodbUri ?? embedded!.uri);
    demo = config.seedDemo ? await seedDemo(services) : undefined;
    server = await startServer(services, {
      port: config.port,
      host: config.host,
      demo: config.seedDemo,
    });
  } catch (error) {
    await embedded?.release();
    throw error;
  }
  log.info(
    {
      event: 'server.started',
      issuer: config.issuer,
      url: server.url,
      embedded_database: embedded !== undefined,
    },
    'flueag-idp is listening',
  );
  if (demo) printDemo(config, demo);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'server.stopping', signal }, 'stopping');
    await server.close();
    await services.close();
    await embedded?.release();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

function printDemo(config: Config, demo: DemoCredentials) {
  const lines = [
    '',
    'Demo ready. Sign in through the demo application:',
    `  open          ${config.issuer}/demo`,
    `  Kommune       ${demo.tenant.name} (or its key ${demo.tenant.id})`,
    ...demo.admins.map(
      (admin) => `  Benutzername  ${admin.username}   Einmal-Kennwort  ${admin.initialPassword}`,
    ),
    '',
    'The one-time passwords are shown only now; at the first sign-in you choose your own.',
    'Lost them? Create another account (in a second terminal):',
    `  npx flueag-idp account create --tenant ${demo.tenant.id} --username … --given-name … --family-name … --permission meldeverfahren --permission zahlungsmitteilungen`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `flueag-idp: ${operatorMessage(error) ?? String((error as Error)?.stack ?? error)}\n`,
  );
  process.exit(1);
});
