/**
 * `npm start`: configuration, database (the embedded FerretDB unless MONGODB_URI is set),
 * services, the HTTP server, and the demo (its missing parts created, how to use it printed
 * on every start). SIGINT and SIGTERM close the server, then the database, also when they
 * arrive during start-up; SIGHUP makes the server read a changed key file now.
 */
import { loadConfig, type Config } from './config.ts';
import { DEMO_ADMINS, seedDemo, type DemoSeed } from './demo/seed.ts';
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
  // SIGHUP reads the key file at once instead of at the next KEYS_RELOAD_SECONDS.
  process.on('SIGHUP', () => void server.reloadKeys());
  // Seeded only once the server listens, so that the printed passwords are never lost to a
  // start that fails afterwards.
  const demo = config.seedDemo ? await seedDemo(services) : undefined;

  log.info(
    {
      event: 'server.started',
      issuer: config.issuer,
      url: server.url,
      metrics_url: server.metricsUrl,
      embedded_database: config.mongodbUri === undefined,
    },
    'flueag-idp is listening',
  );
  if (demo) printDemo(config, demo);
  lifecycle.ready();
}

/**
 * How to try the demo, on every start: the one-time passwords of the admins created in this
 * start (only those exist in clear text), else how to issue a new one. Nothing else secret
 * is printed, so not the MONGODB_URI either, which may hold credentials.
 */
function printDemo(config: Config, demo: DemoSeed) {
  if (!demo.url) {
    process.stdout.write(
      `\nNo demo: it runs only with a loopback ISSUER (http://localhost:…), not ${config.issuer}. Set DEMO_SEED=false to turn it off.\n\n`,
    );
    return;
  }

  const embedded = config.mongodbUri === undefined;
  const sameData = embedded ? 'same DATA_DIR' : 'same MONGODB_URI';
  const created = demo.admins.map(
    (admin) => `  Benutzername  ${admin.username}   Einmal-Kennwort  ${admin.initialPassword}`,
  );
  const usernames = DEMO_ADMINS.map((admin) => admin.username).join(' or ');
  const lines = [
    '',
    'Demo ready. Sign in through the demo application:',
    `  open          ${demo.url}`,
    `  Kommune       ${demo.tenant.name} (or its key ${demo.tenant.id})`,
    ...(created.length > 0
      ? [
          ...created,
          '',
          'The one-time passwords are shown only now; at the first sign-in you choose your own.',
        ]
      : [
          `  Benutzername  ${usernames}, with your own password (or the unused one-time password)`,
          '',
        ]),
    `Lost a password? Issue a new one-time password (in a second terminal, ${sameData}):`,
    `  npx flueag-idp account reset-password --tenant ${demo.tenant.id} --username admin1`,
    embedded
      ? `The demo's data lives in ${config.dataDir}; remove that directory to start afresh.`
      : "The demo's data lives in the database of MONGODB_URI.",
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
