/**
 * One clear line for the failures an operator can fix (configuration, database, keys,
 * files); undefined for faults, which keep their stack.
 */
import { ConfigError } from './config.ts';
import { EmbeddedDatabaseError } from './db/embedded.ts';
import { FerretDBError } from './db/ferretdb.ts';
import { describeFileError } from './files.ts';
import { KeyFileError } from './oidc/keys.ts';

const fixable = [ConfigError, FerretDBError, KeyFileError, EmbeddedDatabaseError];

/** True for the driver's errors of a database that cannot be reached or addressed. */
export function isUnreachableDatabase(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  return (
    name === 'MongoServerSelectionError' ||
    name === 'MongooseServerSelectionError' ||
    name === 'MongoParseError' ||
    name === 'MongoNetworkError'
  );
}

export function operatorMessage(error: unknown): string | undefined {
  if (fixable.some((kind) => error instanceof kind)) return (error as Error).message;
  if (isUnreachableDatabase(error)) {
    return `cannot reach the database (MONGODB_URI): ${(error as Error).message}`;
  }
  const failure = error as NodeJS.ErrnoException | undefined;
  if (failure?.code === 'EADDRINUSE') {
    return 'the port is already in use; set PORT to a free port';
  }
  // A file or directory of DATA_DIR or KEYS_FILE that cannot be made or used.
  if (typeof failure?.path === 'string' && typeof failure.syscall === 'string') {
    const creating = ['mkdir', 'open', 'link', 'rename'].includes(failure.syscall);
    return `cannot ${creating ? 'create' : 'use'} ${failure.path}: ${describeFileError(failure, creating ? 'create' : 'read')}; check DATA_DIR and KEYS_FILE`;
  }
  return undefined;
}
