import { Queue, type Job } from 'bullmq';
import type IORedis from 'ioredis';
import { DualWriteError } from '../errors/dual-write-error';
import type { Change } from '../outbox/change';
import {
  deadLetterId,
  deadLetterJobId,
  deadLetterQueueName,
  type DeadLetter,
  type DeadLetterFailure,
} from './dead-letter';

/** What a dead-letter job stores. */
export interface DeadLetterData {
  target: string;
  change: Change;
  failure: DeadLetterFailure;
  attempts: number;
  firstFailedAt: number;
  lastFailedAt: number;
}

const ALL_STATES = ['waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed'] as const;

/**
 * The dead letters of every target: one BullMQ queue per target
 * (`<target>.dead`), one job per change (job id `d-<version>`, so a change
 * that fails in two workers, or twice, is one dead letter). A letter's job is
 * waiting until its handler ran, completed after, failed if the handler kept
 * throwing; it is removed only by replay, discard, or a configured retention.
 */
export class DeadLetterQueue {
  private readonly queues = new Map<string, Queue<DeadLetterData>>();

  constructor(
    private readonly connection: IORedis,
    private readonly prefix: string,
    private readonly handlerAttempts: number,
  ) {}

  queue(target: string): Queue<DeadLetterData> {
    let queue = this.queues.get(target);
    if (!queue) {
      queue = new Queue<DeadLetterData>(deadLetterQueueName(target), { connection: this.connection, prefix: this.prefix });
      queue.on('error', () => undefined);
      this.queues.set(target, queue);
    }
    return queue;
  }

  /** Adds a dead letter; a second add of the same change and target is a no-op. Returns the letter's id. */
  async add(data: DeadLetterData): Promise<string> {
    await this.queue(data.target).add('dead-letter', data, {
      jobId: deadLetterJobId(data.change),
      attempts: this.handlerAttempts,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: false,
      removeOnFail: false,
    });
    return deadLetterId(data.target, data.change.version);
  }

  async list(targets: readonly string[], filter: { entity?: string } = {}): Promise<DeadLetter[]> {
    // A letter whose handler job changes state during the scan can be listed
    // under two states: one entry per id.
    const letters = new Map<string, DeadLetter>();
    for (const target of targets) {
      const jobs = await this.queue(target).getJobs([...ALL_STATES], 0, -1, true);
      for (const job of jobs) {
        if (!job?.data) continue;
        if (filter.entity && job.data.change.entity !== filter.entity) continue;
        const letter = toLetter(job);
        letters.set(letter.id, letter);
      }
    }
    return [...letters.values()].sort((a, b) => a.firstFailedAt - b.firstFailedAt || a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const job = await this.job(id);
    return job ? toLetter(job) : undefined;
  }

  /**
   * Removes a letter (after replay or on discard). While its handler runs,
   * BullMQ keeps the job locked: wait for the handler (up to `waitMs`).
   */
  async remove(id: string, waitMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const job = await this.job(id);
      if (!job) return false;
      try {
        await job.remove();
        return true;
      } catch (error) {
        if (!/locked/i.test((error as Error).message)) throw error;
        if (Date.now() > deadline) {
          throw new DualWriteError(
            'DEAD_LETTER_BUSY',
            `Dead letter ${id} is still locked by its onDeadLetter handler after ${waitMs} ms; try again when the handler has finished.`,
            {},
            { cause: error },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Removes letters older than `seconds`. */
  async purgeOlderThan(targets: readonly string[], seconds: number): Promise<number> {
    let removed = 0;
    for (const target of targets) {
      const queue = this.queue(target);
      for (const state of ['completed', 'failed', 'wait', 'delayed'] as const) {
        removed += (await queue.clean(seconds * 1000, 10_000, state)).length;
      }
    }
    return removed;
  }

  private async job(id: string): Promise<Job<DeadLetterData> | undefined> {
    const slash = id.lastIndexOf('/');
    if (slash <= 0) return undefined;
    const target = id.slice(0, slash);
    const version = id.slice(slash + 1);
    if (!/^\d+$/.test(version)) return undefined;
    return (await this.queue(target).getJob(`d-${version}`)) ?? undefined;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}

function toLetter(job: Job<DeadLetterData>): DeadLetter {
  const d = job.data;
  return {
    id: deadLetterId(d.target, d.change.version),
    target: d.target,
    change: d.change,
    failure: d.failure,
    attempts: d.attempts,
    firstFailedAt: d.firstFailedAt,
    lastFailedAt: d.lastFailedAt,
  };
}
