import IORedis from 'ioredis';
import { REDIS, redisKeys } from '../../support/redis';

/**
 * Every key under a queue prefix with every value it holds (strings, hashes,
 * lists, sets, sorted sets, streams), as one text: what a secret must never
 * appear in.
 */
export async function dumpRedis(prefix: string): Promise<{ keys: number; text: string }> {
  const keys = await redisKeys(prefix);
  const redis = new IORedis(REDIS);
  const parts: string[] = [];
  try {
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === 'string') value = await redis.get(key);
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else if (type === 'set') value = await redis.smembers(key);
      else if (type === 'zset') value = await redis.zrange(key, 0, -1, 'WITHSCORES');
      else if (type === 'stream') value = await redis.xrange(key, '-', '+');
      parts.push(`${key} ${type} ${JSON.stringify(value)}`);
    }
    return { keys: keys.length, text: parts.join('\n') };
  } finally {
    redis.disconnect();
  }
}
