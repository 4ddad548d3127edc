import type { Job } from 'bullmq';
import type { DeadLetterFailure } from '../dead-letter/dead-letter';
import { classifyError } from '../errors/classify-error';
import type { Logger } from '../observability/logger';
import type { Change } from '../outbox/change';
import type { ApplyJobData } from '../queue/apply-job';
import type { ApplyOutcome, ChangeApplier } from './change-applier';

/** What a processed job did: the applier's counts plus what went to the dead-letter queue. */
export interface JobOutcome extends ApplyOutcome {
  deadLettered: number;
}

/** Moves one change to the dead-letter queue. */
export type DeadLetterSink = (change: Change, failure: DeadLetterFailure, job: Job<ApplyJobData, JobOutcome>) => Promise<void>;

/**
 * Processes one apply job. A transient failure is thrown back to BullMQ,
 * which retries the job with backoff. A permanent failure, or any failure on
 * the job's last attempt, isolates the poison: the batch is split in halves,
 * each half applied on its own, recursively, so every change that can apply
 * is applied and only a change that fails ALONE becomes a dead letter
 * (DESIGN §3.5). Halves applied before a retry are skipped by the version
 * gate on the next attempt.
 */
export async function processApplyJob(
  job: Job<ApplyJobData, JobOutcome>,
  applier: ChangeApplier,
  deadLetter: DeadLetterSink,
  logger: Logger,
): Promise<JobOutcome> {
  const changes = job.data.changes;
  const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  try {
    return { ...(await applier.apply(changes)), deadLettered: 0 };
  } catch (error) {
    const classified = classifyError(error);
    if (classified.class === 'transient' && !lastAttempt) {
      if (job.data.firstFailedAt === undefined) await job.updateData({ ...job.data, firstFailedAt: Date.now() }).catch(() => undefined);
      logger.warn({ job: job.id, attempt: job.attemptsMade + 1, failure: classified }, `apply failed, will retry: ${(error as Error).message}`);
      throw error;
    }
    logger.warn({ job: job.id, changes: changes.length, failure: classified }, `apply failed ${classified.class === 'permanent' ? 'permanently' : 'on its last attempt'}; isolating the failing changes`);
    const total: JobOutcome = { applied: 0, skipped: 0, deadLettered: 0 };
    await isolate(changes, error, job, applier, deadLetter, lastAttempt, total);
    return total;
  }
}

async function isolate(
  changes: readonly Change[],
  error: unknown,
  job: Job<ApplyJobData, JobOutcome>,
  applier: ChangeApplier,
  deadLetter: DeadLetterSink,
  lastAttempt: boolean,
  total: JobOutcome,
): Promise<void> {
  if (changes.length === 1) {
    const c = classifyError(error);
    await deadLetter(changes[0], { class: c.class, reason: c.reason, code: c.code, message: (error as Error)?.message ?? String(error) }, job);
    total.deadLettered += 1;
    return;
  }
  const middle = Math.ceil(changes.length / 2);
  for (const half of [changes.slice(0, middle), changes.slice(middle)]) {
    try {
      const outcome = await applier.apply(half);
      total.applied += outcome.applied;
      total.skipped += outcome.skipped;
    } catch (halfError) {
      // A transient failure while isolating is retried like any other,
      // unless the job has no attempts left.
      if (classifyError(halfError).class === 'transient' && !lastAttempt) throw halfError;
      await isolate(half, halfError, job, applier, deadLetter, lastAttempt, total);
    }
  }
}
