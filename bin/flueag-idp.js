#!/usr/bin/env node
// The operator CLI. Node 24 runs the TypeScript sources directly (type stripping).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  // An older Node came first on the PATH (npx from outside the installation): hand over to
  // the Node 24 of the installation, passing on the signals a person or a service sends.
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`flueag-idp: needs Node.js 24; this is ${process.version}\n`);
    process.exit(1);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)));
} else {
  const { run } = await import('../src/cli/main.ts');
  // Exits explicitly: a command is done when `run` returns, whatever timers a driver left.
  process.exit(await run(process.argv.slice(2)));
}
