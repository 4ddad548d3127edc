import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { redisOptionsOf } from '../queue/redis-connection';
import type { ReconcileContext } from './reconcile-context';
import { reconcile } from './reconciler';

/**
 * The queue of scheduled reconcile runs. A target (apply queue) name cannot
 * contain `.`, so no target's queue can be this one.
 */
export const RECONCILE_QUEUE = 'dualwrite.reconcile';
const SCHEDULER_ID = 'reconcile';
const JOB_NAME = 'reconcile';

export interface ReconcileSchedulerOptions {
  /** ms between runs; 0 removes the schedule. @defaultValue config `reconcile.every` */
  every?: number;
  /** Repair what the runs confirm. @defaultValue config `reconcile.repair` */
  repair?: boolean;
}

interface ReconcileJobData {
  repair: boolean;
}

/**
 * Schedules reconcile runs of every entity × target with a BullMQ job
 * scheduler, and processes them in this process. With several workers, each
 * run is processed by exactly one of them; a run of a worker that dies is
 * taken over by another and resumes from its last chunk. Start it after the
 * apply workers (it uses the target DataSources they opened), close it
 * before them.
 *
 * @example
 * ```ts
 * const scheduler = await startReconcileScheduler(dw);
 * // ...
 * await scheduler.close();
 * ```
 */
export async function startReconcileScheduler(
  ctx: ReconcileContext,
  options: ReconcileSchedulerOptions = {},
): Promise<{ close(): Promise<void> }> {
  const every = options.every ?? ctx.config.reconcile.every;
  const repair = options.repair ?? ctx.config.reconcile.repair;
  const queue = new Queue<ReconcileJobData>(RECONCILE_QUEUE, { connection: ctx.redis, prefix: ctx.config.queuePrefix });
  queue.on('error', () => undefined);
  if (every === 0) {
    await queue.removeJobScheduler(SCHEDULER_ID);
    await queue.close();
    return { close: async () => undefined };
  }
  // Keep an existing schedule with the same settings: restarting workers must not postpone runs.
  const existing = await queue.getJobScheduler(SCHEDULER_ID);
  if (!existing || Number(existing.every) !== every || existing.template?.data?.repair !== repair) {
    await queue.upsertJobScheduler(
      SCHEDULER_ID,
      { every, startDate: Date.now() + every },
      { name: JOB_NAME, data: { repair }, opts: { removeOnComplete: 50, removeOnFail: 50, attempts: 1 } },
    );
  }
  const log = ctx.logger.child({ component: 'reconcile-scheduler' });
  const worker = new Worker<ReconcileJobData>(
    RECONCILE_QUEUE,
    async (job: Job<ReconcileJobData>) => {
      const reports = await reconcile(ctx, { repair: job.data.repair });
      const drift = reports.reduce((n, r) => n + r.missing + r.extra + r.changed, 0);
      return { reports: reports.length, drift, repaired: reports.reduce((n, r) => n + r.repaired, 0) };
    },
    {
      connection: redisOptionsOf(ctx.config.redis) as ConnectionOptions,
      prefix: ctx.config.queuePrefix,
      concurrency: 1,
      lockDuration: ctx.config.worker.lockDuration,
      stalledInterval: Math.max(1000, Math.floor(ctx.config.worker.lockDuration / 2)),
    },
  );
  worker.on('error', (error) => log.error({ err: error }, 'reconcile scheduler error'));
  worker.on('failed', (job, error) => log.error({ err: error, job: job?.id }, 'scheduled reconcile run failed; the next one resumes it'));
  return {
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}
