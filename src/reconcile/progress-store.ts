import type IORedis from 'ioredis';

/**
 * Where a resumable run keeps its progress: one Redis hash per kind of run
 * under the queue prefix (`.` cannot appear in a queue name, so these keys
 * never collide with BullMQ's), one field per `<target>:<entity>`.
 */
export class ProgressStore<T> {
  readonly key: string;

  constructor(
    private readonly redis: IORedis,
    prefix: string,
    kind: 'reconcile' | 'backfill',
  ) {
    this.key = `${prefix}:${kind}.progress`;
  }

  async load(target: string, entity: string): Promise<T | undefined> {
    const json = await this.redis.hget(this.key, `${target}:${entity}`);
    return json ? (JSON.parse(json) as T) : undefined;
  }

  async save(target: string, entity: string, value: T): Promise<void> {
    await this.redis.hset(this.key, `${target}:${entity}`, JSON.stringify(value));
  }

  async clear(target: string, entity: string): Promise<void> {
    await this.redis.hdel(this.key, `${target}:${entity}`);
  }
}
