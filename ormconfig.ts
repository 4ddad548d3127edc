/**
 * The demo's dual-write config, and a reference of every option. `dualwrite`
 * verbs load this file by default (`--config` points elsewhere).
 *
 * Connection settings come from the environment so the same file runs
 * anywhere; the defaults fit the local services of a development machine.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { defineDualWrite } from 'typeorm-dualwrite';
import { Customer, Order } from './examples/entities';

const env = process.env;
const pg = { host: env.PGHOST ?? '127.0.0.1', port: Number(env.PGPORT ?? 5432), username: env.PGUSER ?? 'postgres', password: env.PGPASSWORD };
const maria = { host: env.MYSQL_HOST ?? '127.0.0.1', port: Number(env.MYSQL_PORT ?? 3306), username: env.MYSQL_USER ?? 'root', password: env.MYSQL_PASSWORD ?? '' };

/** The application's own DataSource: writes to it are captured. */
export const primary = new DataSource({
  type: 'postgres',
  ...pg,
  database: env.DEMO_PRIMARY_DB ?? 'dualwrite_demo',
  entities: [Customer, Order],
  synchronize: true, // demo only: use migrations in production
});

/** A MariaDB reporting replica. The demo creates its tables from the same entities. */
export const reporting = new DataSource({
  type: 'mariadb',
  ...maria,
  database: env.DEMO_REPORTING_DB ?? 'dualwrite_demo',
  entities: [Customer, Order],
  synchronize: true,
});

/** A PostgreSQL analytics store; orders land in `orders_replica` there (see @Replicate({ table })). */
export const analytics = new DataSource({
  type: 'postgres',
  ...pg,
  database: env.DEMO_ANALYTICS_DB ?? 'dualwrite_demo_analytics',
});

export default defineDualWrite({
  primary,
  // Names used by @Replicate({ to: [...] }).
  targets: { reporting, analytics },
  // ioredis options or a redis:// URL; BullMQ's queues live here.
  redis: { host: env.REDIS_HOST ?? '127.0.0.1', port: Number(env.REDIS_PORT ?? 6379) },
  // Key prefix of every queue. Default 'dualwrite'.
  queuePrefix: env.DEMO_QUEUE_PREFIX ?? 'dualwrite-demo',
  // Throw instead of warn on writes whose keys cannot be captured. Default false.
  strict: false,
  // PostgreSQL: the outbox INSERT as a prepared statement (true); false behind a pooler in
  // transaction mode without prepared statements (PgBouncer < 1.21 or no max_prepared_statements).
  capture: { preparedStatements: true },
  // Outbox rows claimed per relay transaction (2000), changes per job (1000), loop poll ms (1000),
  // relay right after each commit in this process (true; false leaves it to the worker).
  relay: { batchSize: 2000, jobSize: 1000, pollInterval: 1000, afterCommit: true },
  // Attempts per job before failing changes are dead-lettered (20), first backoff ms (200),
  // backoff cap ms (30000), ±jitter fraction (0.2).
  retry: { attempts: 20, delay: 200, maxDelay: 30_000, jitter: 0.2 },
  // Jobs at once per target (2), tombstone retention s (7 days), job lock ms (30000).
  worker: { concurrency: 2, tombstoneRetention: 7 * 24 * 3600, lockDuration: 30_000 },
  // Called once per dead letter (a change that can never apply); see README "Dead letters".
  onDeadLetter: async (letter, ctx) => {
    ctx.logger.error({ letter: letter.id, failure: letter.failure }, 'a change could not reach its target');
  },
  // Dead letters kept forever unless a retention in seconds is set (0); handler calls per letter (10).
  deadLetter: { retention: 0, handlerAttempts: 10 },
  // Scheduled drift check in the worker: every ms (3600000; 0 = off), repair (true), per-chunk time
  // target ms (200), lag window ms (250), statement timeout ms (30000), lock timeout ms (1000).
  reconcile: { every: 3_600_000, repair: true, chunkTime: 200, lagWindow: 250, statementTimeout: 30_000, lockTimeout: 1000 },
  // Prometheus /metrics port of the worker (0 = off); `dualwrite status` thresholds.
  observability: { metricsPort: Number(env.DEMO_METRICS_PORT ?? 0), thresholds: { lagMs: 60_000, deadLetters: 0, outboxAgeMs: 60_000 } },
  // A pino logger, or { level }. Default level 'info' (or DUALWRITE_LOG_LEVEL).
  logger: { level: env.DUALWRITE_LOG_LEVEL ?? 'warn' },
});
