import type { Job } from 'bullmq';
import type { DataSource } from 'typeorm';
import { OUTBOX_TABLE } from '../../migrations/table-names';
import { checkApplyJob } from '../queue/check-apply-job';
import type { DeadLetterQueue } from '../dead-letter/dead-letter-queue';
import type { Dialect } from '../dialect/dialect';
import type { ApplyJobData } from '../queue/apply-job';
import { classifyError } from '../errors/classify-error';
import type { QueueSet } from '../queue/queue-set';

/** Job counts of one target's apply queue, by BullMQ state. */
export interface QueueDepth {
  waiting: number;
  prioritized: number;
  delayed: number;
  active: number;
  failed: number;
}

/** The health of one target. */
export interface TargetOverview {
  target: string;
  /**
   * Replication lag estimate, in ms: now − the earliest `capturedAt` of any
   * change in a job that is not applied yet (waiting, prioritized, delayed —
   * i.e. backing off — or active). `0` when the queue holds no such job.
   * Changes still in the outbox are not counted here; see `outbox.oldestAgeMs`.
   */
  lagMs: number;
  /** The `capturedAt` (ms since the epoch) the lag was measured from; `null` when the queue is empty. */
  oldestPendingCapturedAt: number | null;
  queue: QueueDepth;
  /** Dead letters of this target (every state: handler pending, handled, handler failed). */
  deadLetters: number;
  /**
   * Whether the target database answered a query from where the overview was
   * measured (`dualwrite status` checks; the worker's own view is its
   * `dualwrite_target_connected` gauge). Absent when not checked.
   */
  reachable?: boolean;
  /**
   * Why it did not answer: the driver's error code (ECONNREFUSED, 28P01,
   * ER_BAD_DB_ERROR, …) or a timeout; never its message, which names hosts and users.
   */
  unreachableReason?: string;
}

/** What `dualwrite status` shows, and what the worker's gauges sample. */
export interface Overview {
  /** When it was measured, ms since the epoch. */
  at: number;
  outbox: {
    /** Rows in `dualwrite_outbox` on the primary (captured, not yet relayed). */
    count: number;
    /** `captured_at` of the oldest row; `null` when the outbox is empty. */
    oldestCapturedAt: number | null;
    /** now − `oldestCapturedAt`; `0` when the outbox is empty. */
    oldestAgeMs: number;
  };
  targets: TargetOverview[];
}

/** What computing an overview reads from. */
export interface OverviewSources {
  primary: DataSource;
  dialect: Dialect;
  queues: QueueSet;
  deadLetters: DeadLetterQueue;
  targets: readonly string[];
}

const DEAD_LETTER_STATES = ['waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed'] as const;
/** Jobs read per state to find the oldest pending change (job data holds the changes). */
const SCAN_PER_STATE = 20;

export interface OutboxBacklog {
  count: number;
  oldestCapturedAt: number | null;
}

/** COUNT and MIN(captured_at) of the outbox table on the primary. */
export async function outboxBacklog(primary: DataSource, dialect: Dialect): Promise<OutboxBacklog> {
  const rows = (await primary.query(
    `SELECT COUNT(*) AS n, MIN(captured_at) AS oldest FROM ${dialect.quoteTable(OUTBOX_TABLE)}`,
  )) as Array<{ n: number | string; oldest: number | string | null }>;
  const row = rows[0];
  return {
    count: Number(row?.n ?? 0),
    oldestCapturedAt: row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest),
  };
}

/** Dead letters of one target, counted (not loaded). */
export async function deadLetterCount(deadLetters: DeadLetterQueue, target: string): Promise<number> {
  const counts = await deadLetters.queue(target).getJobCounts(...DEAD_LETTER_STATES);
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

function earliestCapture(jobs: ReadonlyArray<Job<ApplyJobData> | undefined>): number | null {
  let earliest: number | null = null;
  for (const job of jobs) {
    if (!job?.data) continue;
    for (const change of checkApplyJob(job.data, job.id).changes) {
      if (typeof change.capturedAt === 'number' && (earliest === null || change.capturedAt < earliest)) earliest = change.capturedAt;
    }
  }
  return earliest;
}

/** One target's queue depth, lag estimate and dead letters. */
export async function targetOverview(sources: OverviewSources, target: string, now: number): Promise<TargetOverview> {
  const queue = sources.queues.get(target);
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'failed');
  const depth: QueueDepth = {
    waiting: counts.waiting ?? 0,
    prioritized: counts.prioritized ?? 0,
    delayed: counts.delayed ?? 0,
    active: counts.active ?? 0,
    failed: counts.failed ?? 0,
  };
  let oldest: number | null = null;
  if (depth.waiting + depth.prioritized + depth.delayed + depth.active > 0) {
    // Oldest first: the waiting list is FIFO, so its first jobs hold the
    // oldest changes; delayed (retrying) and active jobs are few and read in full up to the bound.
    const jobs = await Promise.all(
      (['waiting', 'prioritized', 'delayed', 'active'] as const).map((state) => queue.getJobs([state], 0, SCAN_PER_STATE - 1, true)),
    );
    oldest = earliestCapture(jobs.flat());
  }
  return {
    target,
    lagMs: oldest === null ? 0 : Math.max(0, now - oldest),
    oldestPendingCapturedAt: oldest,
    queue: depth,
    deadLetters: await deadLetterCount(sources.deadLetters, target),
  };
}

/** Measures the outbox backlog and every target's queue, lag and dead letters. */
export async function computeOverview(sources: OverviewSources, now: () => number = Date.now): Promise<Overview> {
  const backlog = await outboxBacklog(sources.primary, sources.dialect);
  const at = now();
  const targets = await Promise.all(sources.targets.map((target) => targetOverview(sources, target, at)));
  return {
    at,
    outbox: {
      count: backlog.count,
      oldestCapturedAt: backlog.oldestCapturedAt,
      oldestAgeMs: backlog.oldestCapturedAt === null ? 0 : Math.max(0, at - backlog.oldestCapturedAt),
    },
    targets,
  };
}

/** How long `probeTarget` waits for a target to answer. */
const PROBE_TIMEOUT_MS = 5000;

/**
 * Opens the target if it is not open, runs `SELECT 1` and closes what it
 * opened: whether the target answers from here, and why not. Waits at most
 * `timeoutMs`; a connection attempt still running then is closed once it settles.
 */
export async function probeTarget(dataSource: DataSource, timeoutMs = PROBE_TIMEOUT_MS): Promise<{ reachable: boolean; reason?: string }> {
  const opens = !dataSource.isInitialized;
  let settled = false;
  const attempt = (async () => {
    if (opens) await dataSource.initialize();
    await dataSource.query('SELECT 1');
  })().finally(() => {
    settled = true;
  });
  const close = async () => {
    if (opens && dataSource.isInitialized) await dataSource.destroy().catch(() => undefined);
  };
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
    return { reachable: true };
  } catch (error) {
    const { code } = classifyError(error);
    return { reachable: false, reason: code ?? (timedOut ? (error as Error).message : `${(error as Error).name ?? 'Error'} without a driver code`) };
  } finally {
    clearTimeout(timer);
    if (settled) await close();
    else void attempt.then(close, close);
  }
}
