import { DualWriteError } from '../errors/dual-write-error';
import { DEFAULTS, type DualWriteConfig, type ResolvedConfig } from './dual-write-config';

const TOP_LEVEL_KEYS = new Set(['primary', 'targets', 'redis', 'queuePrefix', 'strict', 'relay', 'retry', 'worker', 'logger', 'onDeadLetter', 'deadLetter', 'reconcile', 'observability']);
const TARGET_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

function invalid(option: string, message: string): DualWriteError {
  return new DualWriteError('CONFIG_INVALID', `Invalid "${option}" in the dual-write config: ${message}`, { option });
}

function isDataSource(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'options' in value && typeof (value as { initialize?: unknown }).initialize === 'function';
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
  if (typeof value !== 'object' || value === null) throw invalid(option, 'expected an object.');
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw invalid(`${option}.${key}`, `unknown option; known: ${keys.join(', ')}.`);
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
    if (!TOP_LEVEL_KEYS.has(key)) throw invalid(key, `unknown option; known: ${[...TOP_LEVEL_KEYS].join(', ')}.`);
  }
  if (!isDataSource(config.primary)) throw invalid('primary', 'expected a TypeORM DataSource (new DataSource({ type: "postgres", ... })).');
  if (typeof config.targets !== 'object' || config.targets === null || Object.keys(config.targets).length === 0) {
    throw invalid('targets', 'expected an object of named target DataSources, e.g. { reporting: reportingDataSource }.');
  }
  for (const [name, target] of Object.entries(config.targets)) {
    if (!TARGET_NAME.test(name)) {
      throw invalid(`targets.${name}`, 'a target name starts with a letter and holds only letters, digits, "_" and "-" (at most 64).');
    }
    if (!isDataSource(target)) throw invalid(`targets.${name}`, 'expected a TypeORM DataSource.');
    if (target === config.primary) throw invalid(`targets.${name}`, 'a target cannot be the primary DataSource itself.');
  }
  if (config.redis === undefined || config.redis === null || (typeof config.redis !== 'string' && typeof config.redis !== 'object')) {
    throw invalid('redis', 'expected ioredis connection options ({ host, port }) or a redis:// URL.');
  }
  if (config.queuePrefix !== undefined && (typeof config.queuePrefix !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(config.queuePrefix))) {
    throw invalid('queuePrefix', 'expected a non-empty string of letters, digits, "_", "." and "-".');
  }
  if (config.strict !== undefined && typeof config.strict !== 'boolean') throw invalid('strict', 'expected true or false.');

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
  if (typeof jitter !== 'number' || jitter < 0 || jitter > 1) throw invalid('retry.jitter', 'expected a number from 0 to 1.');

  return {
    ...config,
    queuePrefix: config.queuePrefix ?? DEFAULTS.queuePrefix,
    strict: config.strict ?? false,
    relay: {
      batchSize: positiveInt('relay.batchSize', relay.batchSize, DEFAULTS.relay.batchSize),
      jobSize: positiveInt('relay.jobSize', relay.jobSize, DEFAULTS.relay.jobSize),
      pollInterval: positiveInt('relay.pollInterval', relay.pollInterval, DEFAULTS.relay.pollInterval),
      afterCommit: booleanOption('relay.afterCommit', relay.afterCommit, DEFAULTS.relay.afterCommit),
    },
    retry: {
      attempts: positiveInt('retry.attempts', retry.attempts, DEFAULTS.retry.attempts),
      delay: positiveInt('retry.delay', retry.delay, DEFAULTS.retry.delay),
      maxDelay: positiveInt('retry.maxDelay', retry.maxDelay, DEFAULTS.retry.maxDelay),
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
