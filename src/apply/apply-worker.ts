import { Worker, type ConnectionOptions, type Job, type JobJson } from 'bullmq';
import type { DataSource } from 'typeorm';
import { LEDGER_COLUMNS, LEDGER_TABLE } from '../../migrations/table-names';
import type { ResolvedConfig } from '../config/dual-write-config';
import { dialectFor } from '../dialect/dialect-for';
import { tableColumnNames } from '../dialect/table-columns';
import { DualWriteError } from '../errors/dual-write-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { Logger } from '../observability/logger';
import { applyQueueName, type ApplyJobData } from '../queue/apply-job';
import { checkApplyJob } from '../queue/check-apply-job';
import { redisOptionsOf } from '../queue/redis-connection';
import type { DualWriteEvents } from '../observability/dual-write-events';
import { startApplySpans } from '../observability/tracing';
import { backoffDelay } from './backoff';
import type { DeadLetterQueue } from '../dead-letter/dead-letter-queue';
import { startDeadLetterNotifier } from '../dead-letter/dead-letter-notifier';
import { deadLetterFailedJob, processApplyJob, type DeadLetterSink, type JobOutcome } from './apply-processor';
import { ChangeApplier } from './change-applier';

export interface ApplyWorkerOptions {
  /** Only these targets. @defaultValue every configured target */
  targets?: string[];
  /** Jobs applied at once per target. @defaultValue config `worker.concurrency` */
  concurrency?: number;
}

/**
 * The apply side of `dualwrite worker`: one BullMQ worker per target whose
 * jobs go through a ChangeApplier (see `processApplyJob`: transient failures
 * retry with exponential backoff and jitter, permanent ones and exhausted
 * attempts isolate the poison change into the dead-letter queue), and, when a
 * dead-letter handler is configured, the workers that call it.
 */
export class ApplyWorker {
  private constructor(
    private readonly workers: Array<Worker<ApplyJobData, JobOutcome> | Worker>,
    private readonly timers: NodeJS.Timeout[],
    private readonly opened: DataSource[],
    private readonly appliers: ChangeApplier[],
  ) {}

  static async start(
    config: ResolvedConfig,
    entities: ReadonlyMap<string, ReplicatedEntity>,
    logger: Logger,
    deadLetters: DeadLetterQueue,
    events: DualWriteEvents,
    options: ApplyWorkerOptions = {},
  ): Promise<ApplyWorker> {
    const names = servedTargets(config, options);
    const opened: DataSource[] = [];
    const workers: Array<Worker<ApplyJobData, JobOutcome> | Worker> = [];
    const timers: NodeJS.Timeout[] = [];
    const appliers: ChangeApplier[] = [];
    try {
      for (const name of names) {
        const dataSource = config.targets[name];
        const dialect = dialectFor(dataSource, { target: name });
        if (!dataSource.isInitialized) {
          await initializeTarget(dataSource, name);
          opened.push(dataSource);
        }
        await assertLedgerExists(dataSource, name);
        const concurrency = options.concurrency ?? config.worker.concurrency;
        const applier = new ChangeApplier(name, dataSource, dialect, entities, logger.child({ target: name }), concurrency);
        appliers.push(applier);
        workers.push(createWorker(config, name, applier, deadLetters, events, logger, concurrency));
        const notifier = startDeadLetterNotifier(config, entities, name, logger);
        if (notifier) workers.push(notifier);
        timers.push(schedulePurge(dataSource, dialect, config.worker.tombstoneRetention, logger, name));
      }
    } catch (error) {
      await Promise.all(workers.map((w) => w.close(true)));
      timers.forEach(clearInterval);
      await Promise.all(appliers.map((a) => a.close().catch(() => undefined)));
      await Promise.all(opened.map((ds) => ds.destroy().catch(() => undefined)));
      throw error;
    }
    if (config.deadLetter.retention > 0) timers.push(scheduleDeadLetterPurge(deadLetters, names, config.deadLetter.retention, logger));
    return new ApplyWorker(workers, timers, opened, appliers);
  }

  /** Finishes in-flight jobs, then stops; jobs not started stay queued for other workers. */
  async close(): Promise<void> {
    this.timers.forEach(clearInterval);
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all(this.appliers.map((a) => a.close().catch(() => undefined)));
    await Promise.all(this.opened.map((ds) => ds.destroy().catch(() => undefined)));
  }
}

function createWorker(
  config: ResolvedConfig,
  target: string,
  applier: ChangeApplier,
  deadLetters: DeadLetterQueue,
  events: DualWriteEvents,
  logger: Logger,
  concurrency: number,
): Worker<ApplyJobData, JobOutcome> {
  const log = logger.child({ target });
  const sink: DeadLetterSink = async (change, failure, history) => {
    const now = Date.now();
    const id = await deadLetters.add({ target, change, failure, attempts: history.attempts, firstFailedAt: history.firstFailedAt, lastFailedAt: now });
    log.error({ letter: id, change: change.id, entity: change.entity, failure }, `change ${change.id} dead-lettered: ${failure.message}`);
  };
  const worker = new ApplyJobWorker(
    applyQueueName(target),
    async (job) => {
      // An apply span per traced request in the job, a child of its relay span.
      // Only well-formed changes: a corrupted job's are dead-lettered by processApplyJob.
      const checked = checkApplyJob(job.data, job.id);
      const { changes } = checked;
      const spans = startApplySpans(target, job.id, job.attemptsMade + 1, changes);
      let outcome: JobOutcome;
      try {
        outcome = await spans.run(() => processApplyJob(job, applier, sink, log, checked));
      } catch (error) {
        spans.end(error);
        throw error;
      }
      spans.end(undefined, { 'dualwrite.applied': outcome.applied, 'dualwrite.skipped': outcome.skipped, 'dualwrite.dead_lettered': outcome.deadLettered });
      if (events.listenerCount('applied') > 0) {
        events.emit('applied', { target, changes, ...outcome, queuedAt: job.timestamp, startedAt: job.processedOn ?? Date.now(), finishedAt: Date.now() });
      }
      return outcome;
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
  // A job BullMQ failed without our processor deciding it (it stalled too
  // often, or dead-lettering itself failed on the last attempt): its changes
  // are kept as dead letters rather than left behind in the failed set.
  worker.on('failed', (job: Job<ApplyJobData, JobOutcome> | undefined, error: Error) => {
    if (!job) return;
    deadLetterFailedJob(job, error, sink).catch((sinkError) =>
      log.error({ err: sinkError, job: job.id }, 'could not dead-letter a failed job; it stays in the failed set'),
    );
  });
  return worker;
}

/**
 * BullMQ parses a job's data before any processor sees it: a job whose data
 * is not JSON (damaged, or written by hand) would throw there, stay active and
 * come back after every stall, forever. It is handed to the processor as a job
 * that says so instead, and dead-lettered like any other malformed job.
 */
class ApplyJobWorker extends Worker<ApplyJobData, JobOutcome> {
  protected override createJob(data: JobJson, jobId: string): Job<ApplyJobData, JobOutcome> {
    try {
      return super.createJob(data, jobId);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      return super.createJob({ ...data, data: JSON.stringify({ unreadable: String(data.data).slice(0, 200) }) }, jobId);
    }
  }
}

function scheduleDeadLetterPurge(deadLetters: DeadLetterQueue, targets: string[], retention: number, logger: Logger): NodeJS.Timeout {
  const purge = () =>
    void deadLetters.purgeOlderThan(targets, retention).catch((error) => logger.warn({ err: error }, 'dead-letter purge failed'));
  purge();
  const timer = setInterval(purge, Math.min(3600, Math.max(1, retention / 10)) * 1000);
  timer.unref();
  return timer;
}

/** The targets a worker serves (`--targets`, default all), each checked to be configured. */
export function servedTargets(config: ResolvedConfig, options: ApplyWorkerOptions): string[] {
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
  return names;
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
    // A ledger made by another version would dead-letter every change as a schema error: refuse to start instead.
    const dialect = dialectFor(dataSource, { target: name });
    const columns = await tableColumnNames(queryRunner, dialect, LEDGER_TABLE);
    const wanted = dialect.name === 'mysql' ? [...LEDGER_COLUMNS, 'prior_version'] : [...LEDGER_COLUMNS];
    const missing = columns.size > 0 ? wanted.filter((c) => !columns.has(c)) : [];
    if (missing.length > 0) {
      throw new DualWriteError(
        'LEDGER_MISSING',
        `Target "${name}" has a "${LEDGER_TABLE}" table without the column(s) ${missing.map((c) => `"${c}"`).join(', ')}: it was made by another version of typeorm-dualwrite. ` +
          `Add them as CreateDualWriteLedger1764400000001 (typeorm-dualwrite/migrations) defines them; keep its rows (they hold the versions already applied).`,
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
