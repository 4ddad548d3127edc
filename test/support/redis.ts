import IORedis from 'ioredis';
import { uniqueName } from './databases';

export const REDIS = { host: '127.0.0.1', port: 6379 };

/** A queue prefix of its own for one test, and a way to remove its keys. */
export function queuePrefix(): string {
  return uniqueName('dwtest');
}

export async function redisKeys(prefix: string): Promise<string[]> {
  const redis = new IORedis(REDIS);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys;
  } finally {
    redis.disconnect();
  }
}

export async function removeQueues(prefix: string): Promise<void> {
  const keys = await redisKeys(prefix);
  if (keys.length === 0) return;
  const redis = new IORedis(REDIS);
  try {
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  } finally {
    redis.disconnect();
  }
}
