/** Starts one FerretDB for the whole run; each test file uses databases of its own. */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { startFerretDB, type FerretDBProcess } from '../../src/db/ferretdb.ts';

declare global {
  var __ferretdb: FerretDBProcess | undefined;
}

export default async function globalSetup(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flueag-test-'));
  globalThis.__ferretdb = await startFerretDB(dir);
  process.env.FLUEAG_TEST_MONGODB = globalThis.__ferretdb.uri;
  process.env.FLUEAG_TEST_DIR = dir;
}
