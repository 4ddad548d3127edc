import type { RedisOptions } from 'ioredis';
import type { DataSource } from 'typeorm';
import type { DeadLetterHandler } from '../dead-letter/dead-letter';
import type { Logger, LoggerOptions } from '../observability/logger';

/** Retry policy of the apply worker. */
export interface RetryOptions {
  /** Attempts per job before its changes are split and the failing ones dead-lettered. @defaultValue 20 (about 7 minutes with the default delays) */
  attempts?: number;
  /** First backoff delay in ms; each later attempt doubles it. @defaultValue 200 */
  delay?: number;
  /** Upper bound of one backoff delay in ms. @defaultValue 30000 */
  maxDelay?: number;
  /** Fraction of each delay that is randomized (0–1), so retries of many jobs spread out. @defaultValue 0.2 */
  jitter?: number;
}

/** How captured changes are written to the outbox. */
export interface CaptureOptions {
  /**
   * PostgreSQL primaries: run the outbox INSERT as a named prepared statement
   * on the transaction's connection, so the server plans it once per
   * connection instead of once per commit (about a quarter of a small
   * transaction's time). Turn it off behind a pooler in transaction mode that
   * does not keep prepared statements (PgBouncer before 1.21, or without
   * `max_prepared_statements`): there a prepared statement can reach a server
   * connection that never saw it, and the application's commit fails.
   * @defaultValue true
   */
  preparedStatements?: boolean;
}

/** How the relay moves outbox rows to the queues. */
export interface RelayOptions {
  /** Outbox rows claimed per transaction. @defaultValue 2000 */
  batchSize?: number;
  /** Changes carried by one job (one target transaction on apply; 1,000-row statements are where both engines are fastest). @defaultValue 1000 */
  jobSize?: number;
  /** Poll interval of the relay loop in ms (MySQL primaries, and the safety net on PostgreSQL). @defaultValue 1000 */
  pollInterval?: number;
  /**
   * Relay right after each commit in the application process, for the lowest
   * latency (busy applications relay their commits in batches, at most one
   * claim transaction per 5 ms). `false` leaves relaying to `dualwrite worker`
   * (LISTEN/NOTIFY on PostgreSQL, polling on MySQL) and keeps its work out of
   * the application; only then do outbox INSERTs NOTIFY the workers (with
   * `true`, the workers' polling picks up what a crashed application left).
   * @defaultValue true
   */
  afterCommit?: boolean;
}

/** Dead-letter queue options. */
export interface DeadLetterOptions {
  /**
   * Seconds after which dead letters are removed automatically; 0 keeps them
   * until replayed or discarded. @defaultValue 0
   */
  retention?: number;
  /** Calls of `onDeadLetter` per letter before it gives up (the letter stays). @defaultValue 10 */
  handlerAttempts?: number;
}

/** Worker options (the `dualwrite worker` process). */
export interface WorkerOptions {
  /** Jobs applied concurrently per target. @defaultValue 2 */
  concurrency?: number;
  /** How long a delete's tombstone protects the row from late, older upserts, in seconds. @defaultValue 604800 (7 days) */
  tombstoneRetention?: number;
  /**
   * How long (ms) a worker holds a job without renewing its lock; a job of a
   * worker that died is handed to another worker after about this long.
   * @defaultValue 30000
   */
  lockDuration?: number;
}

/**
 * The reconciler, which finds and repairs drift between the primary and each
 * target (scheduled in `dualwrite worker`; `dualwrite reconcile` runs it on
 * demand), and `dualwrite backfill`.
 */
export interface ReconcileOptions {
  /**
   * Milliseconds between scheduled runs in `dualwrite worker` (a BullMQ job
   * scheduler: one run at a time across all workers); `0` turns scheduling off.
   * @defaultValue 3600000 (1 hour)
   */
  every?: number;
  /**
   * Whether scheduled runs repair the drift they confirm. Repairs re-emit the
   * primary's current rows through the outbox, so a newer write always wins.
   * @defaultValue true
   */
  repair?: boolean;
  /** Target duration of one chunk's checksum, in ms; chunk sizes adapt to it. @defaultValue 200 */
  chunkTime?: number;
  /**
   * The replication lag window, in ms: a difference is confirmed only when a
   * second look, at least this long after the first, still sees it and no
   * change of the key is in flight (in the outbox or the target's queue).
   * @defaultValue 250
   */
  lagWindow?: number;
  /** Statement timeout of the reconciler's and backfill's queries, in ms. @defaultValue 30000 */
  statementTimeout?: number;
  /**
   * Lock wait timeout of their locking reads, in ms: short, so that in a
   * conflict with the application the reconciler is the one that gives up
   * (and retries the keys later). @defaultValue 1000
   */
  lockTimeout?: number;
}

/**
 * Thresholds of `dualwrite status`: it exits 1 when any measured value is
 * greater than its threshold (CLI flags `--max-lag-ms`, `--max-dead-letters`,
 * `--max-outbox-age-ms` override these).
 */
export interface StatusThresholds {
  /** Largest replication lag estimate of any target, in ms (see docs/observability.md). @defaultValue 60000 */
  lagMs?: number;
  /** Largest number of dead letters of any target. @defaultValue 0 (any dead letter fails the check) */
  deadLetters?: number;
  /** Largest age of the oldest outbox row on the primary, in ms. @defaultValue 60000 */
  outboxAgeMs?: number;
}

/** Metrics and health checks. */
export interface ObservabilityOptions {
  /**
   * Port on which `dualwrite worker` (`dw.startWorker()`) serves Prometheus
   * metrics at `/metrics`; `0` turns the server off. @defaultValue 0
   */
  metricsPort?: number;
  thresholds?: StatusThresholds;
}

/** The configuration `defineDualWrite` takes and `DualWrite.start` runs. */
export interface DualWriteConfig {
  /** The application's primary DataSource (PostgreSQL or MySQL/MariaDB). Writes to it are captured. */
  primary: DataSource;
  /** Target DataSources by name; the names are what `@Replicate({ to })` refers to. */
  targets: Record<string, DataSource>;
  /** Redis connection options (ioredis options or a `redis://` URL) for the BullMQ queues. */
  redis: RedisOptions | string;
  /** Key prefix of every queue in Redis. @defaultValue 'dualwrite' */
  queuePrefix?: string;
  /**
   * Throw instead of warning when a write to a replicated entity cannot be
   * captured (QueryBuilder/Repository `update`/`delete` or raw SQL whose keys
   * the driver did not return). @defaultValue false
   */
  strict?: boolean;
  capture?: CaptureOptions;
  relay?: RelayOptions;
  retry?: RetryOptions;
  worker?: WorkerOptions;
  reconcile?: ReconcileOptions;
  /**
   * Called exactly once per dead letter (a change that can never apply to a
   * target); `@Replicate({ onDeadLetter })` overrides it per entity.
   * `context.transaction` runs a compensating write on the primary.
   * @defaultValue none: dead letters are only kept and logged
   */
  onDeadLetter?: DeadLetterHandler;
  deadLetter?: DeadLetterOptions;
  observability?: ObservabilityOptions;
  /**
   * A pino logger, or options for the library's own one: `level`, and
   * `pretty: true` for readable lines in development (needs `pino-pretty`;
   * `DUALWRITE_LOG_PRETTY=1` does the same). @defaultValue pino JSON lines at level `info`
   */
  logger?: Logger | LoggerOptions;
}

/** `DualWriteConfig` with every default applied; what the runtime reads. */
export interface ResolvedConfig extends DualWriteConfig {
  queuePrefix: string;
  strict: boolean;
  capture: Required<CaptureOptions>;
  relay: Required<RelayOptions>;
  retry: Required<RetryOptions>;
  worker: Required<WorkerOptions>;
  reconcile: Required<ReconcileOptions>;
  deadLetter: Required<DeadLetterOptions>;
  observability: { metricsPort: number; thresholds: Required<StatusThresholds> };
}

export const DEFAULTS = {
  queuePrefix: 'dualwrite',
  capture: { preparedStatements: true },
  relay: { batchSize: 2000, jobSize: 1000, pollInterval: 1000, afterCommit: true },
  retry: { attempts: 20, delay: 200, maxDelay: 30_000, jitter: 0.2 },
  worker: { concurrency: 2, tombstoneRetention: 7 * 24 * 3600, lockDuration: 30_000 },
  reconcile: { every: 3_600_000, repair: true, chunkTime: 200, lagWindow: 250, statementTimeout: 30_000, lockTimeout: 1000 },
  deadLetter: { retention: 0, handlerAttempts: 10 },
  observability: { metricsPort: 0, thresholds: { lagMs: 60_000, deadLetters: 0, outboxAgeMs: 60_000 } },
} as const;

/**
 * Declares the dual-write setup; the default export of `ormconfig.ts`.
 * It only checks the shape here; `DualWrite.start` validates the rest.
 */
export function defineDualWrite(config: DualWriteConfig): DualWriteConfig {
  return config;
}
