import pino, { stdSerializers, type DestinationStream, type Logger } from 'pino';
import { DualWriteError } from '../errors/dual-write-error';
import { redactSecrets } from './redact-secrets';

export type { Logger };

/** Options of the library's own logger (`logger` in the config, when it is not a pino logger). */
export interface LoggerOptions {
  /** @defaultValue `DUALWRITE_LOG_LEVEL`, else `info` */
  level?: string;
  /**
   * Human-readable, colored lines for development (needs the `pino-pretty`
   * package). `DUALWRITE_LOG_PRETTY=1` turns it on too.
   * @defaultValue false: one JSON object per line
   */
  pretty?: boolean;
}

/**
 * Paths pino blanks out wherever they appear in a log line: credentials, and
 * row images (a row's values belong in the databases, not in logs).
 */
export const REDACT_PATHS = [
  'password', '*.password', '*.*.password',
  'connectionString', '*.connectionString',
  'url', '*.url',
  'authorization', '*.authorization', 'headers.authorization',
  'row', '*.row', 'changes[*].row', 'change.row', 'letter.change.row',
];

/** Errors are logged with their message and stack, with credentials in either taken out. */
function errorSerializer(error: unknown): unknown {
  const serialized = stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  if (!serialized || typeof serialized !== 'object') return serialized;
  const out: Record<string, unknown> = { ...serialized };
  for (const key of ['message', 'stack', 'detail', 'sql']) {
    if (typeof out[key] === 'string') out[key] = redactSecrets(out[key] as string);
  }
  return out;
}

/** pino-pretty as a synchronous stream; a clear error when it is not installed. */
function prettyStream(source: 'logger.pretty' | 'DUALWRITE_LOG_PRETTY', destination?: DestinationStream): DestinationStream | undefined {
  let factory: (options: Record<string, unknown>) => DestinationStream;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    factory = require('pino-pretty') as typeof factory;
  } catch {
    const message = `${source === 'logger.pretty' ? '"logger.pretty: true"' : 'DUALWRITE_LOG_PRETTY=1'} needs the pino-pretty package, which is not installed. Run \`npm install --save-dev pino-pretty\`, or turn pretty logs off.`;
    if (source === 'logger.pretty') throw new DualWriteError('CONFIG_INVALID', message, { option: 'logger.pretty' });
    process.stderr.write(`typeorm-dualwrite: ${message} Logging JSON lines instead.\n`);
    return undefined;
  }
  return factory({
    colorize: destination === undefined && Boolean(process.stdout.isTTY),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,lib',
    sync: true,
    ...(destination ? { destination } : {}),
  });
}

function envFlag(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/**
 * The library's logger: the user's pino logger when given one (as a child
 * with `lib: 'dualwrite'`), else a new one at `level` (default `info`, or
 * `DUALWRITE_LOG_LEVEL`), pretty when asked. Log lines carry `change`,
 * `entity` and `target` where they concern one; row images, passwords,
 * connection strings and URLs are redacted, also inside error messages.
 */
/** `destination` (default stdout) is where the lines go; tests pass their own. */
export function createLogger(logger?: Logger | LoggerOptions, destination?: DestinationStream): Logger {
  if (logger && typeof (logger as Logger).child === 'function') {
    return (logger as Logger).child({ lib: 'dualwrite' });
  }
  const options = (logger ?? {}) as LoggerOptions;
  const level = options.level ?? process.env.DUALWRITE_LOG_LEVEL ?? 'info';
  const pretty =
    options.pretty === true
      ? prettyStream('logger.pretty', destination)
      : options.pretty === undefined && envFlag(process.env.DUALWRITE_LOG_PRETTY)
        ? prettyStream('DUALWRITE_LOG_PRETTY', destination)
        : undefined;
  const pinoOptions = {
    level,
    base: { lib: 'dualwrite' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: errorSerializer },
  };
  const stream = pretty ?? destination;
  return stream ? pino(pinoOptions, stream) : pino(pinoOptions);
}
