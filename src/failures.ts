/**
 * One clear line for the failures an operator can fix (configuration, database, keys,
 * files); undefined for faults, which keep their stack.
 */
import { ConfigError } from './config.ts';
import { EmbeddedDatabaseError } from './db/embedded.ts';
import { FerretDBError } from './db/ferretdb.ts';
import { KeyFileError } from './oidc/keys.ts';

const fixable = [ConfigError, FerretDBError, KeyFileError, EmbeddedDatabaseError];

export function operatorMessage(error: unknown): string | undefined {
  if (fixable.some((kind) => error instanceof kind)) return (error as Error).message;
  const name = (error as Error | undefined)?.name;
  if (
    name === 'MongoServerSelectionError' ||
    name === 'MongooseServerSelectionError' ||
    name === 'MongoParseError' ||
    name === 'MongoNetworkError'
  ) {
    return `cannot reach the database (MONGODB_URI): ${(error as Error).message}`;
  }
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') {
    return 'the port is already in use; set PORT to a free port';
  }
  return undefined;
}
