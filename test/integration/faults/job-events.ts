import IORedis from 'ioredis';
import { REDIS } from '../../support/redis';

/** One entry of a queue's BullMQ event stream, with the Redis time it was written at. */
export interface QueueEvent {
  at: number;
  event: string;
  jobId: string;
  fields: Record<string, string>;
}

/** Every event still in the queue's event stream (`<prefix>:<queue>:events`), oldest first. */
export async function queueEvents(prefix: string, queue: string): Promise<QueueEvent[]> {
  const redis = new IORedis(REDIS);
  try {
    const entries = (await redis.xrange(`${prefix}:${queue}:events`, '-', '+')) as Array<[string, string[]]>;
    return entries.map(([id, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
      return { at: Number(id.split('-')[0]), event: fields.event, jobId: fields.jobId, fields };
    });
  } finally {
    redis.disconnect();
  }
}

/** One retry of a job: the backoff the worker scheduled and the time until the job ran again. */
export interface Retry {
  /** 1 = the first retry. */
  n: number;
  /** Scheduled backoff: the `delayed` event's run-at time minus the time of the event. */
  scheduled: number;
  /** From the `delayed` event to the job's next `active` event, when it ran again. */
  observed?: number;
}

/** The retries of each job, from its `delayed` and `active` events. */
export function retriesByJob(events: readonly QueueEvent[]): Map<string, Retry[]> {
  const byJob = new Map<string, QueueEvent[]>();
  for (const e of events) {
    if (!e.jobId) continue;
    const list = byJob.get(e.jobId) ?? [];
    list.push(e);
    byJob.set(e.jobId, list);
  }
  const out = new Map<string, Retry[]>();
  for (const [jobId, list] of byJob) {
    const retries: Retry[] = [];
    list.forEach((e, i) => {
      if (e.event !== 'delayed') return;
      const next = list.slice(i + 1).find((x) => x.event === 'active');
      retries.push({ n: retries.length + 1, scheduled: Number(e.fields.delay) - e.at, observed: next ? next.at - e.at : undefined });
    });
    if (retries.length > 0) out.set(jobId, retries);
  }
  return out;
}
