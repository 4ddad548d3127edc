/**
 * processApplyJob and deadLetterFailedJob with a scripted applier and a job
 * stand-in (no services): the decisions the real-service tests cannot force
 * at will.
 *
 * Proves: the split finds exactly the changes that fail alone (one or several
 * among 1,000) in a logarithmic number of applies; a transient failure before
 * the last attempt throws for a retry and dead-letters nothing, and keeps the
 * time of the FIRST failure, also when it is met while isolating; on the last
 * attempt a transient failure is isolated like a permanent one, but an
 * unreachable target is not split (one apply, every change a letter); a job
 * BullMQ failed itself (stalled out, or the processor threw on the last
 * attempt) dead-letters its changes with the attempts actually made, and a
 * failure that will be retried dead-letters nothing.
 */
import type { Job } from 'bullmq';
import pino from 'pino';
import { LogSink } from '../../support/harness';
import { deadLetterFailedJob, processApplyJob, type DeadLetterSink, type FailureHistory, type JobOutcome } from '../../../src/apply/apply-processor';
import type { ChangeApplier } from '../../../src/apply/change-applier';
import type { DeadLetterFailure } from '../../../src/dead-letter/dead-letter';
import type { Change } from '../../../src/outbox/change';
import type { ApplyJobData } from '../../../src/queue/apply-job';

const logger = pino({ level: 'silent' });

function changes(n: number): Change[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `Item#${i + 1}`,
    entity: 'Item',
    op: 'upsert' as const,
    key: [String(i + 1)],
    version: String(i + 1),
    row: { id: i + 1 },
    capturedAt: 0,
  }));
}

const tooLong = () => Object.assign(new Error('value too long for type character varying(8)'), { code: '22001' });
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
const deadlock = () => Object.assign(new Error('deadlock detected'), { code: '40P01' });

/** An applier that fails a batch when `fail` returns an error for it; counts its calls. */
function scriptedApplier(
  fail: (batch: readonly Change[]) => Error | undefined,
  target: { reachable?: boolean; tooLarge?: (change: Change) => string | undefined } = {},
) {
  const calls: number[] = [];
  const applier = {
    target: 't',
    apply: async (batch: readonly Change[]) => {
      calls.push(batch.length);
      const error = fail(batch);
      if (error) throw error;
      return { applied: batch.length, skipped: 0 };
    },
    reachable: async () => target.reachable ?? false,
    tooLarge: async (change: Change) => target.tooLarge?.(change),
  } as unknown as ChangeApplier;
  return { applier, calls };
}

function fakeJob(data: ApplyJobData, attemptsMade: number, attempts: number, extra: Partial<Job> = {}) {
  const updates: ApplyJobData[] = [];
  const job = {
    id: 'c-1-2-x',
    data,
    attemptsMade,
    attemptsStarted: attemptsMade + 1,
    opts: { attempts },
    updateData: async (next: ApplyJobData) => {
      updates.push(next);
      job.data = next;
    },
    ...extra,
  };
  return { job: job as unknown as Job<ApplyJobData, JobOutcome>, updates };
}

function sink() {
  const letters: Array<{ change: Change; failure: DeadLetterFailure; history: FailureHistory }> = [];
  const deadLetter: DeadLetterSink = async (change, failure, history) => {
    letters.push({ change, failure, history });
  };
  return { deadLetter, letters };
}

describe('processApplyJob', () => {
  it('dead-letters exactly the one change that fails alone among 1,000, in a logarithmic number of applies', async () => {
    const batch = changes(1000);
    const { applier, calls } = scriptedApplier((b) => (b.some((c) => c.key[0] === '637') ? tooLong() : undefined));
    const { job } = fakeJob({ target: 't', changes: batch }, 0, 10);
    const { deadLetter, letters } = sink();
    const before = Date.now();
    const outcome = await processApplyJob(job, applier, deadLetter, logger);
    expect(outcome).toEqual({ applied: 999, skipped: 0, deadLettered: 1 });
    expect(letters.map((l) => l.change.key[0])).toEqual(['637']);
    expect(letters[0].failure).toEqual({ class: 'permanent', reason: 'data', code: '22001', message: 'value too long for type character varying(8)' });
    expect(letters[0].history.attempts).toBe(1);
    expect(letters[0].history.firstFailedAt).toBeGreaterThanOrEqual(before);
    expect(calls.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(1000)));
  });

  it('finds several poison changes and applies everything else', async () => {
    const poison = new Set(['1', '2', '500', '501', '1000']);
    const { applier } = scriptedApplier((b) => (b.some((c) => poison.has(c.key[0])) ? tooLong() : undefined));
    const { job } = fakeJob({ target: 't', changes: changes(1000) }, 0, 10);
    const { deadLetter, letters } = sink();
    expect(await processApplyJob(job, applier, deadLetter, logger)).toEqual({ applied: 995, skipped: 0, deadLettered: 5 });
    expect(letters.map((l) => l.change.key[0]).sort()).toEqual([...poison].sort());
  });

  it('throws a transient failure back for a retry before the last attempt, dead-letters nothing, and records the first failure time once', async () => {
    const { applier } = scriptedApplier(() => refused());
    const { job, updates } = fakeJob({ target: 't', changes: changes(10) }, 0, 4);
    const { deadLetter, letters } = sink();
    await expect(processApplyJob(job, applier, deadLetter, logger)).rejects.toThrow('ECONNREFUSED');
    expect(letters).toEqual([]);
    expect(updates).toHaveLength(1);
    const first = updates[0].firstFailedAt!;
    // The second attempt keeps it.
    (job as unknown as { attemptsMade: number }).attemptsMade = 1;
    await expect(processApplyJob(job, applier, deadLetter, logger)).rejects.toThrow('ECONNREFUSED');
    expect(updates).toHaveLength(1);
    expect(job.data.firstFailedAt).toBe(first);
  });

  it('logs a retried failure with the job, its first and last change and their entities', async () => {
    const { applier } = scriptedApplier(() => refused());
    const batch = changes(10);
    const { job } = fakeJob({ target: 't', changes: batch }, 0, 4);
    const { deadLetter } = sink();
    const logs = new LogSink();
    await expect(processApplyJob(job, applier, deadLetter, logs.logger)).rejects.toThrow('ECONNREFUSED');
    const retry = logs.lines.find((l) => String(l.msg).startsWith('apply failed, will retry'));
    expect(retry).toMatchObject({ job: job.id, attempt: 1, changes: 10, firstChange: batch[0].id, lastChange: batch[9].id, entities: [batch[0].entity] });
  });

  it('keeps the first failure time when a transient failure met while isolating sends the job back', async () => {
    let call = 0;
    // The whole batch fails permanently; the first half then meets a deadlock.
    const { applier } = scriptedApplier((b) => (++call === 1 ? tooLong() : call === 2 ? deadlock() : b.some((c) => c.key[0] === '3') ? tooLong() : undefined));
    const { job, updates } = fakeJob({ target: 't', changes: changes(10) }, 0, 4);
    const { deadLetter, letters } = sink();
    await expect(processApplyJob(job, applier, deadLetter, logger)).rejects.toThrow('deadlock');
    expect(letters).toEqual([]);
    expect(updates.map((u) => typeof u.firstFailedAt)).toEqual(['number']);
    const first = job.data.firstFailedAt!;
    // Next attempt: the poison is isolated and its letter carries the first failure time.
    (job as unknown as { attemptsMade: number }).attemptsMade = 1;
    expect(await processApplyJob(job, applier, deadLetter, logger)).toEqual({ applied: 9, skipped: 0, deadLettered: 1 });
    expect(letters.map((l) => [l.change.key[0], l.history])).toEqual([['3', { attempts: 2, firstFailedAt: first }]]);
  });

  it('splits a batch whose own statement lost the connection while the target answers, and names a row over max_allowed_packet', async () => {
    // MariaDB closes the connection of a statement larger than max_allowed_packet: the client sees ECONNRESET.
    const reset = () => Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET' });
    const { applier, calls } = scriptedApplier((b) => (b.some((c) => c.key[0] === '7') ? reset() : undefined), {
      reachable: true,
      tooLarge: (c) => (c.key[0] === '7' ? 'The row of Item ["7"] takes 17825792 bytes, more than target "t"\'s max_allowed_packet (16777216 bytes)' : undefined),
    });
    const { job } = fakeJob({ target: 't', changes: changes(10) }, 3, 4);
    const { deadLetter, letters } = sink();
    expect(await processApplyJob(job, applier, deadLetter, logger)).toEqual({ applied: 9, skipped: 0, deadLettered: 1 });
    expect(calls.length).toBeGreaterThan(2);
    expect(letters).toHaveLength(1);
    expect(letters[0].change.key).toEqual(['7']);
    expect(letters[0].failure).toMatchObject({ class: 'permanent', reason: 'too-large', code: 'ROW_TOO_LARGE', message: expect.stringContaining('max_allowed_packet') });
  });

  it('isolates a transient failure on the last attempt like a permanent one', async () => {
    const { applier } = scriptedApplier((b) => (b.some((c) => c.key[0] === '7') ? deadlock() : undefined));
    const { job } = fakeJob({ target: 't', changes: changes(10), firstFailedAt: 1234 }, 3, 4);
    const { deadLetter, letters } = sink();
    expect(await processApplyJob(job, applier, deadLetter, logger)).toEqual({ applied: 9, skipped: 0, deadLettered: 1 });
    expect(letters).toEqual([
      { change: expect.objectContaining({ key: ['7'] }), failure: { class: 'transient', reason: 'deadlock', code: '40P01', message: 'deadlock detected' }, history: { attempts: 4, firstFailedAt: 1234 } },
    ]);
  });

  it('does not split on the last attempt when the target is unreachable: one apply, every change a letter', async () => {
    const { applier, calls } = scriptedApplier(() => refused());
    const { job } = fakeJob({ target: 't', changes: changes(500), firstFailedAt: 99 }, 3, 4);
    const { deadLetter, letters } = sink();
    expect(await processApplyJob(job, applier, deadLetter, logger)).toEqual({ applied: 0, skipped: 0, deadLettered: 500 });
    expect(calls).toEqual([500]);
    expect(new Set(letters.map((l) => `${l.failure.class} ${l.failure.reason} ${l.history.attempts} ${l.history.firstFailedAt}`))).toEqual(new Set(['transient connection 4 99']));
  });

  it('sends the job back when dead-lettering itself fails', async () => {
    const { applier } = scriptedApplier(() => tooLong());
    const { job } = fakeJob({ target: 't', changes: changes(2) }, 0, 4);
    const failing: DeadLetterSink = async () => {
      throw new Error('Redis is down');
    };
    await expect(processApplyJob(job, applier, failing, logger)).rejects.toThrow('Redis is down');
  });
});

describe('deadLetterFailedJob', () => {
  it('dead-letters a stalled-out job with the attempts actually made', async () => {
    // Taken three times: twice its worker died, the third time BullMQ failed it at once.
    const { job } = fakeJob({ target: 't', changes: changes(3) }, 1, 1, { attemptsStarted: 3 } as Partial<Job>);
    const { deadLetter, letters } = sink();
    expect(await deadLetterFailedJob(job, new Error('job stalled more than allowable limit'), deadLetter)).toBe(3);
    expect(letters.map((l) => [l.change.key[0], l.failure.reason, l.history.attempts])).toEqual([
      ['1', 'stalled', 2],
      ['2', 'stalled', 2],
      ['3', 'stalled', 2],
    ]);
  });

  it('dead-letters a job that failed on its last attempt, counting that attempt once', async () => {
    // On `failed`, BullMQ has already counted the attempt that just failed.
    const { job } = fakeJob({ target: 't', changes: changes(2), firstFailedAt: 5 }, 4, 4);
    const { deadLetter, letters } = sink();
    expect(await deadLetterFailedJob(job, new Error('Redis is down'), deadLetter)).toBe(2);
    expect(letters.map((l) => l.history)).toEqual([
      { attempts: 4, firstFailedAt: 5 },
      { attempts: 4, firstFailedAt: 5 },
    ]);
  });

  it('ignores a failure that BullMQ will retry', async () => {
    const { job } = fakeJob({ target: 't', changes: changes(2) }, 2, 4);
    const { deadLetter, letters } = sink();
    expect(await deadLetterFailedJob(job, new Error('connect ECONNREFUSED'), deadLetter)).toBe(0);
    expect(letters).toEqual([]);
  });
});
