import { rm } from 'node:fs/promises';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__ferretdb?.stop();
  if (process.env.FLUEAG_TEST_DIR)
    await rm(process.env.FLUEAG_TEST_DIR, { recursive: true, force: true });
}
