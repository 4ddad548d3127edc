import pino, { type Logger } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear in a log line. */
export const REDACT_PATHS = [
  'password', '*.password', '*.*.password',
  'connectionString', '*.connectionString',
  'url', '*.url',
  'row', '*.row', 'changes[*].row',
];

/**
 * The library's logger: the user's pino logger when given one, else a new one
 * at `level` (default `info`, or `DUALWRITE_LOG_LEVEL`). Row images and
 * credentials are redacted.
 */
export function createLogger(logger?: Logger | { level?: string }): Logger {
  if (logger && typeof (logger as Logger).child === 'function') {
    return (logger as Logger).child({ lib: 'dualwrite' });
  }
  const level = (logger as { level?: string } | undefined)?.level ?? process.env.DUALWRITE_LOG_LEVEL ?? 'info';
  return pino({ level, base: { lib: 'dualwrite' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}
