import { Queue } from 'bullmq';
import type { Change } from '../../src/outbox/change';
import type { ApplyJobData } from '../../src/queue/apply-job';
import { checkApplyJob } from '../../src/queue/check-apply-job';
import { REDIS } from './redis';

/** Every change waiting in a target's apply queue, in job order. */
export async function queuedChanges(prefix: string, target: string): Promise<Change[]> {
  const queue = new Queue<ApplyJobData>(target, { connection: { ...REDIS, maxRetriesPerRequest: null }, prefix });
  try {
    const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active', 'failed', 'completed'], 0, -1, true);
    // A job's changes as the worker reads them (batch rows' runs unfolded, in version order).
    return jobs.flatMap((job) => checkApplyJob(job.data, job.id).changes);
  } finally {
    await queue.close();
  }
}
