import { DualWriteError } from '../errors/dual-write-error';
import { DEFAULTS, type DualWriteConfig, type ResolvedConfig } from './dual-write-config';

const TOP_LEVEL_KEYS = new Set(['primary', 'targets', 'redis', 'queuePrefix', 'strict', 'capture', 'relay', 'retry', 'worker', 'logger', 'onDeadLetter', 'deadLetter', 'reconcile', 'observability']);
const TARGET_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

function invalid(option: string, message: string): DualWriteError {
  return new DualWriteError('CONFIG_INVALID', `Invalid "${option}" in the dual-write config: ${message}`, { option });
}

function isDataSource(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'options' in value && typeof (value as { initialize?: unknown }).initialize === 'function';
}

/** What to say about a value that should have been a DataSource. */
function notADataSource(value: unknown): string {
  if (typeof value === 'object' && value !== null && 'type' in value && !('initialize' in value)) {
    return 'got DataSource options, not a DataSource: wrap them, new DataSource({ type: ..., ... }).';
  }
  return `expected a TypeORM DataSource (new DataSource({ type: "postgres", ... })), got ${describeValue(value)}.`;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return `an object with keys [${Object.keys(value).join(', ')}]`;
  return JSON.stringify(value) ?? typeof value;
}

/** `unknown option; did you mean "retry"? known: …` */
function unknownOption(key: string, known: readonly string[]): string {
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase()) ?? known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  return `unknown option${near ? `; did you mean "${near}"?` : '.'} Known: ${known.join(', ')}.`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function checkLogger(logger: unknown): void {
  const fromEnv = process.env.DUALWRITE_LOG_LEVEL;
  const usesEnv = logger === undefined || (typeof logger === 'object' && logger !== null && !('child' in logger) && (logger as { level?: unknown }).level === undefined);
  if (usesEnv && fromEnv !== undefined && fromEnv !== '' && !LOG_LEVELS.includes(fromEnv)) {
    throw new DualWriteError(
      'CONFIG_INVALID',
      `The environment variable DUALWRITE_LOG_LEVEL is "${fromEnv}"; expected one of ${LOG_LEVELS.join(', ')}.`,
      { option: 'DUALWRITE_LOG_LEVEL' },
    );
  }
  if (logger === undefined) return;
  if (typeof logger !== 'object' || logger === null) throw invalid('logger', `expected a pino logger or { level }, got ${describeValue(logger)}.`);
  if (typeof (logger as { child?: unknown }).child === 'function') return;
  for (const key of Object.keys(logger)) {
    if (key !== 'level' && key !== 'pretty') throw invalid(`logger.${key}`, `${unknownOption(key, ['level', 'pretty'])} (Pass a pino logger for anything more.)`);
  }
  const pretty = (logger as { pretty?: unknown }).pretty;
  if (pretty !== undefined && typeof pretty !== 'boolean') throw invalid('logger.pretty', `expected true or false, got ${describeValue(pretty)}.`);
  const level = (logger as { level?: unknown }).level;
  if (level !== undefined && (typeof level !== 'string' || !LOG_LEVELS.includes(level))) {
    throw invalid('logger.level', `expected one of ${LOG_LEVELS.join(', ')}, got ${describeValue(level)}.`);
  }
}

function checkRedis(redis: unknown): void {
  if (redis === undefined || redis === null || (typeof redis !== 'string' && typeof redis !== 'object') || Array.isArray(redis)) {
    throw invalid('redis', `expected ioredis connection options ({ host, port }) or a redis:// URL, got ${describeValue(redis)}.`);
  }
  if (typeof redis === 'string') {
    let protocol: string;
    try {
      protocol = new URL(redis).protocol;
    } catch {
      throw invalid('redis', 'expected a URL like redis://host:6379/0 (or rediss:// for TLS), or ioredis options ({ host, port }).');
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      throw invalid('redis', `a Redis URL starts with redis:// or rediss://, not ${protocol}//.`);
    }
    return;
  }
  const { host, port } = redis as { host?: unknown; port?: unknown };
  if (host !== undefined && typeof host !== 'string') throw invalid('redis.host', `expected a host name, got ${describeValue(host)}.`);
  if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535)) {
    throw invalid('redis.port', `expected a port number from 1 to 65535, got ${describeValue(port)}.`);
  }
}

function positiveInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw invalid(option, `expected a positive whole number, got ${JSON.stringify(value)}.`);
  }
  return value;
}

function nonNegativeInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw invalid(option, `expected a whole number of at least 0, got ${JSON.stringify(value)}.`);
  }
  return value;
}

function booleanOption(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(option, `expected true or false, got ${JSON.stringify(value)}.`);
  return value;
}

function section<T extends object>(option: string, value: unknown, keys: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(option, `expected an object, got ${describeValue(value)}.`);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw invalid(`${option}.${key}`, unknownOption(key, keys));
  }
  return value as Partial<T>;
}

/**
 * Checks a config's shape and fills in defaults. Every error names the option
 * and says what it expects.
 */
export function resolveConfig(config: DualWriteConfig): ResolvedConfig {
  if (typeof config !== 'object' || config === null) {
    throw new DualWriteError('CONFIG_INVALID', 'The dual-write config must be an object: export default defineDualWrite({ primary, targets, redis }).');
  }
  for (const key of Object.keys(config)) {
    if (!TOP_LEVEL_KEYS.has(key)) throw invalid(key, unknownOption(key, [...TOP_LEVEL_KEYS]));
  }
  if (!isDataSource(config.primary)) throw invalid('primary', notADataSource(config.primary));
  if (typeof config.targets !== 'object' || config.targets === null || Array.isArray(config.targets) || Object.keys(config.targets).length === 0) {
    throw invalid('targets', `expected an object of named target DataSources, e.g. { reporting: reportingDataSource }, got ${describeValue(config.targets)}.`);
  }
  for (const [name, target] of Object.entries(config.targets)) {
    if (!TARGET_NAME.test(name)) {
      throw invalid(`targets.${name}`, 'a target name starts with a letter and holds only letters, digits, "_" and "-" (at most 64).');
    }
    if (!isDataSource(target)) throw invalid(`targets.${name}`, notADataSource(target));
    if (target === config.primary) throw invalid(`targets.${name}`, 'a target cannot be the primary DataSource itself.');
  }
  checkRedis(config.redis);
  checkLogger(config.logger);
  if (config.queuePrefix !== undefined && (typeof config.queuePrefix !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(config.queuePrefix))) {
    throw invalid('queuePrefix', 'expected a non-empty string of letters, digits, "_", "." and "-".');
  }
  if (config.strict !== undefined && typeof config.strict !== 'boolean') throw invalid('strict', 'expected true or false.');

  const capture = section<NonNullable<DualWriteConfig['capture']>>('capture', config.capture, ['preparedStatements']);
  const relay = section<NonNullable<DualWriteConfig['relay']>>('relay', config.relay, ['batchSize', 'jobSize', 'pollInterval', 'afterCommit']);
  const retry = section<NonNullable<DualWriteConfig['retry']>>('retry', config.retry, ['attempts', 'delay', 'maxDelay', 'jitter']);
  const worker = section<NonNullable<DualWriteConfig['worker']>>('worker', config.worker, ['concurrency', 'tombstoneRetention', 'lockDuration']);
  const deadLetter = section<NonNullable<DualWriteConfig['deadLetter']>>('deadLetter', config.deadLetter, ['retention', 'handlerAttempts']);
  if (config.onDeadLetter !== undefined && typeof config.onDeadLetter !== 'function') {
    throw invalid('onDeadLetter', 'expected a function (letter, context) => Promise<void>.');
  }
  const retention = deadLetter.retention ?? DEFAULTS.deadLetter.retention;
  if (typeof retention !== 'number' || !Number.isInteger(retention) || retention < 0) {
    throw invalid('deadLetter.retention', 'expected a whole number of seconds (0 keeps dead letters forever).');
  }
  const reconcile = section<NonNullable<DualWriteConfig['reconcile']>>('reconcile', config.reconcile, [
    'every', 'repair', 'chunkTime', 'lagWindow', 'statementTimeout', 'lockTimeout',
  ]);
  const every = reconcile.every ?? DEFAULTS.reconcile.every;
  if (typeof every !== 'number' || !Number.isInteger(every) || every < 0) {
    throw invalid('reconcile.every', 'expected a whole number of milliseconds (0 turns scheduled runs off).');
  }
  if (reconcile.repair !== undefined && typeof reconcile.repair !== 'boolean') throw invalid('reconcile.repair', 'expected true or false.');
  const observability = section<NonNullable<DualWriteConfig['observability']>>('observability', config.observability, ['metricsPort', 'thresholds']);
  const thresholds = section<NonNullable<NonNullable<DualWriteConfig['observability']>['thresholds']>>(
    'observability.thresholds', observability.thresholds, ['lagMs', 'deadLetters', 'outboxAgeMs'],
  );
  const metricsPort = observability.metricsPort ?? DEFAULTS.observability.metricsPort;
  if (typeof metricsPort !== 'number' || !Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) {
    throw invalid('observability.metricsPort', 'expected a port number from 1 to 65535, or 0 to turn the metrics server off.');
  }
  const jitter = retry.jitter ?? DEFAULTS.retry.jitter;
  if (typeof jitter !== 'number' || jitter < 0 || jitter > 1) throw invalid('retry.jitter', `expected a number from 0 to 1, got ${describeValue(jitter)}.`);
  const delay = positiveInt('retry.delay', retry.delay, DEFAULTS.retry.delay);
  const maxDelay = positiveInt('retry.maxDelay', retry.maxDelay, Math.max(delay, DEFAULTS.retry.maxDelay));
  if (maxDelay < delay) throw invalid('retry.maxDelay', `${maxDelay} is smaller than retry.delay (${delay}); the cap of the backoff must be at least its first delay.`);

  return {
    ...config,
    queuePrefix: config.queuePrefix ?? DEFAULTS.queuePrefix,
    strict: config.strict ?? false,
    capture: {
      preparedStatements: booleanOption('capture.preparedStatements', capture.preparedStatements, DEFAULTS.capture.preparedStatements),
    },
    relay: {
      batchSize: positiveInt('relay.batchSize', relay.batchSize, DEFAULTS.relay.batchSize),
      jobSize: positiveInt('relay.jobSize', relay.jobSize, DEFAULTS.relay.jobSize),
      pollInterval: positiveInt('relay.pollInterval', relay.pollInterval, DEFAULTS.relay.pollInterval),
      afterCommit: booleanOption('relay.afterCommit', relay.afterCommit, DEFAULTS.relay.afterCommit),
    },
    retry: {
      attempts: positiveInt('retry.attempts', retry.attempts, DEFAULTS.retry.attempts),
      delay,
      maxDelay,
      jitter,
    },
    worker: {
      concurrency: positiveInt('worker.concurrency', worker.concurrency, DEFAULTS.worker.concurrency),
      tombstoneRetention: positiveInt('worker.tombstoneRetention', worker.tombstoneRetention, DEFAULTS.worker.tombstoneRetention),
      lockDuration: positiveInt('worker.lockDuration', worker.lockDuration, DEFAULTS.worker.lockDuration),
    },
    reconcile: {
      every,
      repair: reconcile.repair ?? DEFAULTS.reconcile.repair,
      chunkTime: positiveInt('reconcile.chunkTime', reconcile.chunkTime, DEFAULTS.reconcile.chunkTime),
      lagWindow: positiveInt('reconcile.lagWindow', reconcile.lagWindow, DEFAULTS.reconcile.lagWindow),
      statementTimeout: positiveInt('reconcile.statementTimeout', reconcile.statementTimeout, DEFAULTS.reconcile.statementTimeout),
      lockTimeout: positiveInt('reconcile.lockTimeout', reconcile.lockTimeout, DEFAULTS.reconcile.lockTimeout),
    },
    observability: {
      metricsPort,
      thresholds: {
        lagMs: nonNegativeInt('observability.thresholds.lagMs', thresholds.lagMs, DEFAULTS.observability.thresholds.lagMs),
        deadLetters: nonNegativeInt('observability.thresholds.deadLetters', thresholds.deadLetters, DEFAULTS.observability.thresholds.deadLetters),
        outboxAgeMs: nonNegativeInt('observability.thresholds.outboxAgeMs', thresholds.outboxAgeMs, DEFAULTS.observability.thresholds.outboxAgeMs),
      },
    },
    deadLetter: {
      retention,
      handlerAttempts: positiveInt('deadLetter.handlerAttempts', deadLetter.handlerAttempts, DEFAULTS.deadLetter.handlerAttempts),
    },
  };
}
