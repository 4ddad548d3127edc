import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { DataSource } from 'typeorm';
import { LEDGER_TABLE } from '../../migrations/table-names';
import type { ResolvedConfig } from '../config/dual-write-config';
import { dialectFor } from '../dialect/dialect-for';
import { classifyError } from '../errors/classify-error';
import { DualWriteError } from '../errors/dual-write-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { Logger } from '../observability/logger';
import { applyQueueName, type ApplyJobData } from '../queue/apply-job';
import { redisOptionsOf } from '../queue/redis-connection';
import { backoffDelay } from './backoff';
import { ChangeApplier, type ApplyOutcome } from './change-applier';

export interface ApplyWorkerOptions {
  /** Only these targets. @defaultValue every configured target */
  targets?: string[];
  /** Jobs applied at once per target. @defaultValue config `worker.concurrency` */
  concurrency?: number;
}

/**
 * The apply side of `dualwrite worker`: one BullMQ worker per target whose
 * jobs go through a ChangeApplier. Transient failures are retried with
 * exponential backoff and jitter; permanent ones fail the job at once
 * (BullMQ's UnrecoverableError) with the classified reason.
 */
export class ApplyWorker {
  private constructor(
    private readonly workers: Worker<ApplyJobData, ApplyOutcome>[],
    private readonly timers: NodeJS.Timeout[],
    private readonly opened: DataSource[],
  ) {}

  static async start(
    config: ResolvedConfig,
    entities: ReadonlyMap<string, ReplicatedEntity>,
    logger: Logger,
    options: ApplyWorkerOptions = {},
  ): Promise<ApplyWorker> {
    const names = options.targets ?? Object.keys(config.targets);
    for (const name of names) {
      if (!config.targets[name]) {
        throw new DualWriteError(
          'TARGET_UNKNOWN',
          `Worker target "${name}" is not configured. Known targets: ${Object.keys(config.targets).join(', ')}.`,
          { target: name, option: '--targets' },
        );
      }
    }
    const opened: DataSource[] = [];
    const workers: Worker<ApplyJobData, ApplyOutcome>[] = [];
    const timers: NodeJS.Timeout[] = [];
    try {
      for (const name of names) {
        const dataSource = config.targets[name];
        const dialect = dialectFor(dataSource, { target: name });
        if (!dataSource.isInitialized) {
          await initializeTarget(dataSource, name);
          opened.push(dataSource);
        }
        await assertLedgerExists(dataSource, name);
        const applier = new ChangeApplier(name, dataSource, dialect, entities, logger.child({ target: name }));
        workers.push(createWorker(config, name, applier, logger, options.concurrency ?? config.worker.concurrency));
        timers.push(schedulePurge(dataSource, dialect, config.worker.tombstoneRetention, logger, name));
      }
    } catch (error) {
      await Promise.all(workers.map((w) => w.close(true)));
      timers.forEach(clearInterval);
      await Promise.all(opened.map((ds) => ds.destroy().catch(() => undefined)));
      throw error;
    }
    return new ApplyWorker(workers, timers, opened);
  }

  /** Finishes in-flight jobs, then stops; jobs not started stay queued for other workers. */
  async close(): Promise<void> {
    this.timers.forEach(clearInterval);
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all(this.opened.map((ds) => ds.destroy().catch(() => undefined)));
  }
}

function createWorker(
  config: ResolvedConfig,
  target: string,
  applier: ChangeApplier,
  logger: Logger,
  concurrency: number,
): Worker<ApplyJobData, ApplyOutcome> {
  const log = logger.child({ target });
  const worker = new Worker<ApplyJobData, ApplyOutcome>(
    applyQueueName(target),
    async (job: Job<ApplyJobData, ApplyOutcome>) => {
      try {
        return await applier.apply(job.data.changes);
      } catch (error) {
        const classified = classifyError(error);
        const message = `${classified.class} ${classified.reason}${classified.code ? ` (${classified.code})` : ''}: ${(error as Error).message}`;
        log.warn({ job: job.id, attempt: job.attemptsMade + 1, failure: classified }, `apply failed: ${message}`);
        if (classified.class === 'permanent') throw new UnrecoverableError(message);
        throw error;
      }
    },
    {
      connection: redisOptionsOf(config.redis) as ConnectionOptions,
      prefix: config.queuePrefix,
      concurrency,
      lockDuration: config.worker.lockDuration,
      // BullMQ's default (1) fails a job, unapplied, the second time its worker dies while holding it.
      maxStalledCount: config.retry.attempts,
      stalledInterval: Math.max(1000, Math.floor(config.worker.lockDuration / 2)),
      settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, config.retry) },
    },
  );
  worker.on('error', (error) => log.error({ err: error }, 'worker error'));
  return worker;
}

async function initializeTarget(dataSource: DataSource, name: string): Promise<void> {
  try {
    await dataSource.initialize();
  } catch (error) {
    throw new DualWriteError(
      'TARGET_UNREACHABLE',
      `Cannot connect to target "${name}" (${(error as Error).message}). Check its DataSource options in "targets.${name}".`,
      { target: name, option: `targets.${name}` },
      { cause: error },
    );
  }
}

async function assertLedgerExists(dataSource: DataSource, name: string): Promise<void> {
  const queryRunner = dataSource.createQueryRunner();
  try {
    if (!(await queryRunner.hasTable(LEDGER_TABLE))) {
      throw new DualWriteError(
        'LEDGER_MISSING',
        `Target "${name}" has no "${LEDGER_TABLE}" table. Run \`dualwrite migrate\` (it creates the version ledger in every target).`,
        { target: name },
      );
    }
  } finally {
    await queryRunner.release();
  }
}

function schedulePurge(
  dataSource: DataSource,
  dialect: ReturnType<typeof dialectFor>,
  retentionSeconds: number,
  logger: Logger,
  target: string,
): NodeJS.Timeout {
  const purge = async () => {
    const statement = dialect.apply.purgeTombstones(LEDGER_TABLE, retentionSeconds);
    try {
      await dataSource.query(statement.sql, statement.params);
    } catch (error) {
      logger.warn({ err: error, target }, 'tombstone purge failed; it runs again later');
    }
  };
  void purge();
  const timer = setInterval(() => void purge(), Math.min(3600, Math.max(1, retentionSeconds / 10)) * 1000);
  timer.unref();
  return timer;
}
