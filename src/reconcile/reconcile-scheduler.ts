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
const RECOVERY_JOB = 'recovery';
/** A recovery run retries the targets it could not reach, waiting 1 s, doubling, at most this long (ms). */
const RECOVERY_MAX_DELAY = 30_000;

export interface ReconcileSchedulerOptions {
  /** ms between runs; 0 removes the schedule. @defaultValue config `reconcile.every` */
  every?: number;
  /** Repair what the runs confirm. @defaultValue config `reconcile.repair` */
  repair?: boolean;
  /**
   * Whether this process can reconcile a target now. A worker answers false
   * for a target it is still trying to reach: scheduled runs skip it,
   * recovery runs wait for it. @defaultValue every target is
   */
  targetReady?: (target: string) => boolean;
}

interface ReconcileJobData {
  repair: boolean;
  /** Recovery runs: the targets still to reconcile. */
  targets?: string[];
  /** Recovery runs: why (logged). */
  reason?: string;
}

export interface ReconcileScheduler {
  /** Registers the schedule again if it is missing or different (after Redis lost its data). */
  ensureSchedule(): Promise<void>;
  /**
   * Queues ONE reconcile-with-repair of every entity × target under this id:
   * workers asking with the same id get the same run. It retries targets it
   * cannot reach until they are back.
   */
  requestRecovery(id: string, reason: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Schedules reconcile runs of every entity × target with a BullMQ job
 * scheduler, and processes them (and recovery runs, see `requestRecovery`)
 * in this process. With several workers, each run is processed by exactly
 * one of them; a run of a worker that dies is taken over by another and
 * resumes from its last chunk. Start it after the apply workers (it uses the
 * target DataSources they opened), close it before them.
 *
 * @example
 * ```ts
 * const scheduler = await startReconcileScheduler(dw);
 * // ...
 * await scheduler.close();
 * ```
 */
export async function startReconcileScheduler(ctx: ReconcileContext, options: ReconcileSchedulerOptions = {}): Promise<ReconcileScheduler> {
  const every = options.every ?? ctx.config.reconcile.every;
  const repair = options.repair ?? ctx.config.reconcile.repair;
  const ready = options.targetReady ?? (() => true);
  const queue = new Queue<ReconcileJobData>(RECONCILE_QUEUE, { connection: ctx.redis, prefix: ctx.config.queuePrefix });
  queue.on('error', () => undefined);
  const log = ctx.logger.child({ component: 'reconcile-scheduler' });

  const ensureSchedule = async () => {
    if (every === 0) {
      await queue.removeJobScheduler(SCHEDULER_ID);
      return;
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
  };
  await ensureSchedule();

  const allTargets = () => [...new Set([...ctx.entities.values()].flatMap((e) => [...e.targets.keys()]))];

  const runScheduled = async (job: Job<ReconcileJobData>) => {
    const targets = allTargets();
    const skipped = targets.filter((t) => !ready(t));
    if (skipped.length > 0) log.warn({ targets: skipped }, `scheduled reconcile skips target(s) ${skipped.join(', ')}: not reachable yet`);
    const reports = skipped.length === 0
      ? await reconcile(ctx, { repair: job.data.repair })
      : (await Promise.all(targets.filter((t) => ready(t)).map((target) => reconcile(ctx, { repair: job.data.repair, target })))).flat();
    const drift = reports.reduce((n, r) => n + r.missing + r.extra + r.changed, 0);
    return { reports: reports.length, drift, repaired: reports.reduce((n, r) => n + r.repaired, 0) };
  };

  const runRecovery = async (job: Job<ReconcileJobData>) => {
    const remaining: string[] = [];
    const problems: string[] = [];
    let drift = 0;
    let repaired = 0;
    for (const target of job.data.targets ?? allTargets()) {
      if (!ready(target)) {
        remaining.push(target);
        continue;
      }
      try {
        const reports = await reconcile(ctx, { repair: true, target, restart: true });
        drift += reports.reduce((n, r) => n + r.missing + r.extra + r.changed, 0);
        repaired += reports.reduce((n, r) => n + r.repaired, 0);
      } catch (error) {
        // Unreachable (or failing while it goes down): this target is tried again later, the others are done.
        remaining.push(target);
        problems.push(`${target}: ${(error as Error).message}`);
      }
    }
    if (remaining.length > 0) {
      await job.updateData({ ...job.data, targets: remaining });
      throw new Error(`recovery reconcile waits for target(s) ${remaining.join(', ')} (${problems.join('; ') || 'not reachable yet'}); it tries again with backoff`);
    }
    log.info({ job: job.id, drift, repaired }, `recovery reconcile after ${job.data.reason ?? 'a Redis data loss'} finished: ${repaired} drifted row(s) re-emitted`);
    return { drift, repaired };
  };

  const worker = new Worker<ReconcileJobData>(
    RECONCILE_QUEUE,
    async (job: Job<ReconcileJobData>) => (job.name === RECOVERY_JOB ? runRecovery(job) : runScheduled(job)),
    {
      connection: redisOptionsOf(ctx.config.redis) as ConnectionOptions,
      prefix: ctx.config.queuePrefix,
      concurrency: 1,
      lockDuration: ctx.config.worker.lockDuration,
      // A run whose worker dies is taken over and resumes from its last chunk, however often that
      // happens: BullMQ's default (1) failed a recovery run for good the second time (seen in the chaos soak).
      maxStalledCount: 1_000_000,
      stalledInterval: Math.max(1000, Math.floor(ctx.config.worker.lockDuration / 2)),
      settings: { backoffStrategy: (attemptsMade: number) => Math.min(RECOVERY_MAX_DELAY, 1000 * 2 ** Math.max(0, attemptsMade - 1)) },
    },
  );
  worker.on('error', (error) => log.error({ err: error }, 'reconcile scheduler error'));
  worker.on('failed', (job, error) => {
    if (job?.name === RECOVERY_JOB) log.warn({ err: error, job: job.id, attempt: job.attemptsMade }, error.message);
    else log.error({ err: error, job: job?.id }, 'scheduled reconcile run failed; the next one resumes it');
  });
  return {
    ensureSchedule,
    requestRecovery: async (id, reason) => {
      await queue.add(
        RECOVERY_JOB,
        { repair: true, reason },
        // Kept after it ends, so a worker that notices the same loss later does not run it again.
        { jobId: `recovery-${id}`, attempts: 10_000, backoff: { type: 'custom' }, removeOnComplete: { age: 86_400 }, removeOnFail: { age: 86_400 } },
      );
    },
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}
