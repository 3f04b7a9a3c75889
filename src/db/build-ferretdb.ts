/** `npm run ferretdb:build`: builds the pinned FerretDB into .tools/bin if it is missing. */
import { ensureFerretDB, FerretDBError } from './ferretdb.ts';

try {
  const binary = await ensureFerretDB((message) => process.stdout.write(`${message}\n`));
  process.stdout.write(`FerretDB ready: ${binary}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof FerretDBError ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
