import type { Queue } from 'bullmq';
import type IORedis from 'ioredis';
import { applyQueueName, type ApplyJobData } from './apply-job';
import { RawJsonQueue } from './raw-json-queue';

/** One BullMQ queue per target (taking `rawJobData` too), sharing one Redis connection, made on first use. */
export class QueueSet {
  private readonly queues = new Map<string, Queue<ApplyJobData>>();

  constructor(
    private readonly connection: IORedis,
    readonly prefix: string,
  ) {}

  get(target: string): Queue<ApplyJobData> {
    let queue = this.queues.get(target);
    if (!queue) {
      queue = new RawJsonQueue<ApplyJobData>(applyQueueName(target), { connection: this.connection, prefix: this.prefix });
      queue.on('error', () => undefined);
      this.queues.set(target, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
