/**
 * The process logger. Redaction happens here, once, so no call site can leak a password,
 * token, cookie or secret by logging a whole object.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

const redactedPaths = [
  'password',
  '*.password',
  'new_password',
  '*.new_password',
  'new_password_confirm',
  '*.new_password_confirm',
  'initialPassword',
  '*.initialPassword',
  'client_secret',
  '*.client_secret',
  'token',
  '*.token',
  'access_token',
  'refresh_token',
  'id_token',
  'headers.cookie',
  'headers.authorization',
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
];

export type { Logger };

/** Creates the root logger (on stdout by default); children carry request and account context. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'flueag-idp' },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
