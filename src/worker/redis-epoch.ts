import { randomBytes } from 'node:crypto';
import type IORedis from 'ioredis';
import type { Logger } from '../observability/logger';

/** How often each worker checks that Redis still holds its data, ms. */
export const EPOCH_CHECK_INTERVAL = 5000;

/** The sentinel key: present as long as Redis keeps its data. */
export function epochKey(queuePrefix: string): string {
  return `${queuePrefix}:dualwrite:epoch`;
}

export interface RedisDataLoss {
  /** `missing`: the key is gone (Redis restarted without persistence, or was flushed); `changed`: another Redis, or another worker saw the loss first. */
  reason: 'missing' | 'changed';
  /** The epoch now in Redis; the same for every worker that reacts to this loss. */
  epoch: string;
}

/**
 * Detects that Redis lost its data. Each worker writes a random sentinel
 * (`SET NX`, so the first one wins and the others adopt it) and then reads it
 * back every `intervalMs`. Missing or different means the queues, the
 * reconcile schedule and the dead letters written before are gone: `onLoss`
 * is called (again on the next check when it fails) with the new epoch, which
 * all workers agree on, so they can dedupe their reaction by it.
 */
export async function watchRedisEpoch(
  redis: IORedis,
  queuePrefix: string,
  logger: Logger,
  onLoss: (loss: RedisDataLoss) => Promise<void>,
  intervalMs = EPOCH_CHECK_INTERVAL,
): Promise<{ close(): Promise<void> }> {
  const key = epochKey(queuePrefix);
  const claim = async (): Promise<string> => {
    await redis.set(key, `${Date.now()}-${randomBytes(8).toString('hex')}`, 'NX');
    return (await redis.get(key)) ?? '';
  };
  let known = await claim();
  let unhandled: RedisDataLoss | undefined;
  let closed = false;
  let checking: Promise<void> | undefined;

  const check = async () => {
    try {
      const current = await redis.get(key);
      if (current !== known) {
        const reason = current === null ? 'missing' : 'changed';
        known = current === null ? await claim() : current;
        unhandled = { reason, epoch: known };
      }
    } catch (error) {
      logger.warn({ err: error }, 'could not check the Redis epoch (Redis unreachable?); checking again later');
      return;
    }
    if (!unhandled || closed) return;
    try {
      await onLoss(unhandled);
      unhandled = undefined;
    } catch (error) {
      logger.error({ err: error }, 'recovering from the Redis data loss failed; trying again at the next check');
    }
  };
  const timer = setInterval(() => {
    if (checking || closed) return;
    checking = check().finally(() => (checking = undefined));
  }, intervalMs);
  timer.unref?.();
  return {
    close: async () => {
      closed = true;
      clearInterval(timer);
      await checking;
    },
  };
}
