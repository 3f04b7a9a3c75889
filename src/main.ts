/**
 * `npm start`: configuration, database (the embedded FerretDB unless MONGODB_URI is set),
 * services, the HTTP server, and the demo on an empty database. SIGINT and SIGTERM close
 * the server, then the database, also when they arrive during start-up.
 */
import { loadConfig, type Config } from './config.ts';
import { seedDemo, type DemoCredentials } from './demo/seed.ts';
import { operatorMessage } from './failures.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger, type Logger } from './log.ts';
import { startServer } from './server.ts';
import { openConfiguredServices } from './services.ts';

let log: Logger | undefined;
const lifecycle = new Lifecycle({
  signalExitCode: 0,
  onSignal: (signal) => log?.info({ event: 'server.stopping', signal }, 'stopping'),
});

async function main(): Promise<void> {
  const config = loadConfig();
  log = createLogger(config.logLevel);

  const services = await openConfiguredServices(config, log, lifecycle, 'server');
  const server = await lifecycle.open(
    startServer(services, { port: config.port, host: config.host, demo: config.seedDemo }),
    (running) => running.close(),
  );
  // Seeded only once the server listens, so that the printed passwords are never lost to a
  // start that fails afterwards.
  const demo = config.seedDemo ? await seedDemo(services) : undefined;

  log.info(
    {
      event: 'server.started',
      issuer: config.issuer,
      url: server.url,
      embedded_database: config.mongodbUri === undefined,
    },
    'flueag-idp is listening',
  );
  if (demo) printDemo(config, demo);
  lifecycle.ready();
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
    'Lost one? Issue a new one-time password (in a second terminal, same DATA_DIR):',
    `  npx flueag-idp account reset-password --tenant ${demo.tenant.id} --username admin1`,
    `The demo's data lives in ${config.dataDir}; remove that directory to start afresh.`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch(async (error: unknown) => {
  process.stderr.write(
    `flueag-idp: ${operatorMessage(error) ?? String((error as Error)?.stack ?? error)}\n`,
  );
  await lifecycle.exit(1);
});
