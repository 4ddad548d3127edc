import IORedis, { type RedisOptions } from 'ioredis';
import { DualWriteError } from '../errors/dual-write-error';

/** ioredis options from the config's `redis` (options object or URL), as BullMQ needs them. */
export function redisOptionsOf(redis: RedisOptions | string): RedisOptions {
  const base: RedisOptions = typeof redis === 'string' ? urlOptions(redis) : { ...redis };
  return { ...base, maxRetriesPerRequest: null };
}

function urlOptions(url: string): RedisOptions {
  const parsed = new URL(url);
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}

/** host:port of a connection, never its password. */
export function describeRedis(options: RedisOptions): string {
  return options.path ?? `${options.host ?? '127.0.0.1'}:${options.port ?? 6379}`;
}

/**
 * Opens a connection and checks it answers, so a wrong address fails at
 * start-up with a clear message instead of jobs hanging later.
 */
export async function connectRedis(redis: RedisOptions | string, timeoutMs = 3000): Promise<IORedis> {
  const options = redisOptionsOf(redis);
  const connection = new IORedis({ ...options, lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null });
  connection.on('error', () => undefined);
  try {
    await withTimeout(connection.connect().then(() => connection.ping()), timeoutMs);
  } catch (error) {
    // Refused: the socket is closed already, and ioredis' disconnect() would arm a 2 s timer waiting for a
    // 'close' that has come and gone, keeping the caller's process alive that long for nothing.
    if (connection.status !== 'end') connection.disconnect();
    throw new DualWriteError(
      'REDIS_UNREACHABLE',
      `Cannot reach Redis at ${describeRedis(options)} (${(error as Error).message}). ` +
        `Start Redis there, or fix "redis" in the dual-write config.`,
      { option: 'redis' },
      { cause: error },
    );
  }
  // From here on, reconnect forever: a Redis restart must not stop the relay.
  connection.options.retryStrategy = (times: number) => Math.min(times * 200, 5000);
  return connection;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
