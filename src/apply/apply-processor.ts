import type { Job } from 'bullmq';
import type { DeadLetterFailure } from '../dead-letter/dead-letter';
import { classifyError, type Classified } from '../errors/classify-error';
import { DualWriteError } from '../errors/dual-write-error';
import type { Logger } from '../observability/logger';
import type { Change } from '../outbox/change';
import type { ApplyJobData } from '../queue/apply-job';
import { checkApplyJob, type CheckedApplyJob } from '../queue/check-apply-job';
import type { ApplyOutcome, ChangeApplier } from './change-applier';

/** What a processed job did: the applier's counts plus what went to the dead-letter queue. */
export interface JobOutcome extends ApplyOutcome {
  deadLettered: number;
}

/** When and how often the job that carried a dead-lettered change was tried. */
export interface FailureHistory {
  /** Apply attempts of the job, the failing one included. */
  attempts: number;
  /** When an attempt of the job first failed (ms since the epoch). */
  firstFailedAt: number;
}

/** Moves one change to the dead-letter queue. */
export type DeadLetterSink = (change: Change, failure: DeadLetterFailure, history: FailureHistory) => Promise<void>;

/**
 * Transient reasons that say the TARGET cannot be reached or is not serving,
 * whatever the changes are: splitting a batch cannot isolate such a failure,
 * only multiply it (each split is another connection attempt, which can take a
 * connect timeout each when the host is unreachable).
 */
const TARGET_LEVEL = new Set(['connection', 'server-restarting', 'too-many-connections', 'resources', 'system']);

/**
 * Processes one apply job. A transient failure is thrown back to BullMQ,
 * which retries the job with backoff. A permanent failure, or any failure on
 * the job's last attempt, isolates the poison: the batch is split in halves,
 * each half applied on its own, recursively, so every change that can apply
 * is applied and only a change that fails ALONE becomes a dead letter
 * (DESIGN §3.5). Halves applied before a retry are skipped by the version
 * gate on the next attempt. On the last attempt, a half that fails because
 * the target itself is unreachable is dead-lettered whole, without splitting.
 */
export async function processApplyJob(
  job: Job<ApplyJobData, JobOutcome>,
  applier: ChangeApplier,
  deadLetter: DeadLetterSink,
  logger: Logger,
  /** The job's data as `checkApplyJob` reads it, where the caller has read it already. */
  checked: CheckedApplyJob = checkApplyJob(job.data, job.id),
): Promise<JobOutcome> {
  const attempt = job.attemptsMade + 1;
  const lastAttempt = attempt >= (job.opts.attempts ?? 1);
  // A malformed change (a corrupted or foreign job) is kept as a dead letter at once; the rest apply.
  const { changes, rejected } = checked;
  for (const { change, code, message } of rejected) {
    const error = new DualWriteError(code, message, { entity: change.entity });
    await deadLetter(change, failureOf(classifyError(error), error), { attempts: attempt, firstFailedAt: Date.now() });
  }
  if (changes.length === 0) return { applied: 0, skipped: 0, deadLettered: rejected.length };
  try {
    return { ...(await applier.apply(changes)), deadLettered: rejected.length };
  } catch (error) {
    const history: FailureHistory = { attempts: attempt, firstFailedAt: job.data.firstFailedAt ?? Date.now() };
    const classified = classifyError(error);
    // Which changes (first and last id) of which entities: enough to find them in the queue and the outbox trace.
    const scope = {
      job: job.id,
      attempt,
      changes: changes.length,
      firstChange: changes[0].id,
      lastChange: changes[changes.length - 1].id,
      entities: [...new Set(changes.map((c) => c.entity))],
      failure: classified,
    };
    try {
      if (classified.class === 'transient' && !lastAttempt) {
        logger.warn(scope, `apply failed, will retry: ${messageOf(error)}`);
        throw error;
      }
      logger.warn(
        scope,
        `apply failed ${classified.class === 'permanent' ? 'permanently' : 'on its last attempt'}; isolating the failing changes: ${messageOf(error)}`,
      );
      const total: JobOutcome = { applied: 0, skipped: 0, deadLettered: rejected.length };
      await isolate(changes, error, { applier, deadLetter, lastAttempt, history, total });
      return total;
    } catch (retried) {
      // Whatever sends the job back to BullMQ for another attempt (a transient
      // failure, also one met while isolating) keeps the time of the FIRST failure.
      if (job.data.firstFailedAt === undefined) {
        await job.updateData({ ...job.data, firstFailedAt: history.firstFailedAt }).catch(() => undefined);
      }
      throw retried;
    }
  }
}

interface Isolation {
  applier: ChangeApplier;
  deadLetter: DeadLetterSink;
  lastAttempt: boolean;
  history: FailureHistory;
  total: JobOutcome;
}

async function isolate(changes: readonly Change[], error: unknown, run: Isolation): Promise<void> {
  let classified = classifyError(error);
  // A lost connection while the target answers at once was caused by this batch itself (MariaDB closes the
  // connection of a statement larger than max_allowed_packet): split it like a permanent failure rather than
  // dead-letter every change of the batch as if the target were down.
  const ownConnectionLost = classified.class === 'transient' && classified.reason === 'connection' && (await run.applier.reachable());
  if (ownConnectionLost && changes.length === 1) {
    const tooLarge = await run.applier.tooLarge(changes[0]).catch(() => undefined);
    if (tooLarge) {
      error = new DualWriteError('ROW_TOO_LARGE', tooLarge, { entity: changes[0].entity, target: run.applier.target }, { cause: error });
      classified = classifyError(error);
    }
  }
  if (changes.length === 1 || (classified.class === 'transient' && TARGET_LEVEL.has(classified.reason) && !ownConnectionLost)) {
    const failure = failureOf(classified, error);
    for (const change of changes) {
      await run.deadLetter(change, failure, run.history);
      run.total.deadLettered += 1;
    }
    return;
  }
  const middle = Math.ceil(changes.length / 2);
  for (const half of [changes.slice(0, middle), changes.slice(middle)]) {
    try {
      const outcome = await run.applier.apply(half);
      run.total.applied += outcome.applied;
      run.total.skipped += outcome.skipped;
    } catch (halfError) {
      // A transient failure while isolating is retried like any other,
      // unless the job has no attempts left.
      if (classifyError(halfError).class === 'transient' && !run.lastAttempt) throw halfError;
      await isolate(half, halfError, run);
    }
  }
}

function failureOf(classified: Classified, error: unknown): DeadLetterFailure {
  const failure: DeadLetterFailure = { class: classified.class, reason: classified.reason, message: messageOf(error) };
  if (classified.code !== undefined) failure.code = classified.code;
  return failure;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Dead-letters the changes of a job that BullMQ failed without the processor
 * deciding it: it stalled more often than allowed (its workers kept dying),
 * or the processor itself threw on the last attempt (dead-lettering failed).
 * Called from the worker's `failed` event; retried failures are ignored.
 */
export async function deadLetterFailedJob(job: Job<ApplyJobData, JobOutcome>, error: Error, deadLetter: DeadLetterSink): Promise<number> {
  const stalled = /stalled more than allowable limit/i.test(error.message);
  // On `failed`, BullMQ has already counted the failed attempt in attemptsMade.
  if (!stalled && job.attemptsMade < (job.opts.attempts ?? 1)) return 0;
  const failure: DeadLetterFailure = { class: 'transient', reason: stalled ? 'stalled' : 'unknown', message: error.message };
  // A stalled-out job failed when it was taken the last time, without being
  // tried then: that start is not an attempt.
  const attempts = stalled ? Math.max(1, job.attemptsStarted - 1) : job.attemptsMade;
  const history: FailureHistory = { attempts, firstFailedAt: job.data?.firstFailedAt ?? Date.now() };
  const { changes, rejected } = checkApplyJob(job.data, job.id);
  for (const change of [...changes, ...rejected.map((r) => r.change)]) await deadLetter(change, failure, history);
  return changes.length + rejected.length;
}
