import type { DataSource } from 'typeorm';
import { ApplyWorker, servedTargets, type ApplyWorkerOptions } from '../apply/apply-worker';
import type { ResolvedConfig } from '../config/dual-write-config';
import type { DeadLetterQueue } from '../dead-letter/dead-letter-queue';
import { classifyError } from '../errors/classify-error';
import { isDualWriteError } from '../errors/dual-write-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { DualWriteEvents } from '../observability/dual-write-events';
import type { Logger } from '../observability/logger';

/** First and largest wait between two attempts to reach a target the worker could not connect to, ms. */
export const TARGET_RETRY = { first: 1000, max: 30_000 };

export interface TargetWorkers {
  /** Whether this worker has its apply worker for the target running (false while it retries an unreachable one). */
  connected(target: string): boolean;
  /** Served targets this worker could not reach yet; it keeps trying them in the background. */
  waiting(): string[];
  /** Stops retrying and closes the apply workers (in-flight jobs finish first). */
  close(): Promise<void>;
}

interface Deps {
  config: ResolvedConfig;
  entities: ReadonlyMap<string, ReplicatedEntity>;
  logger: Logger;
  deadLetters: DeadLetterQueue;
  events: DualWriteEvents;
}

/**
 * Starts one apply worker per served target. A target that does not accept
 * connections (server down, database closed or missing, account locked) does
 * not stop the others: the worker logs a warning naming it, its changes wait
 * in its queue, and it is retried in the background with backoff (1 s,
 * doubling, at most 30 s); once it connects, its checks (version ledger) run
 * and its apply worker starts. Configuration mistakes (an unknown target, a
 * DataSource TypeORM refuses, a reachable target without a ledger) still fail
 * the start.
 */
export async function startTargetWorkers(deps: Deps, options: ApplyWorkerOptions = {}, retry = TARGET_RETRY): Promise<TargetWorkers> {
  const { config, logger } = deps;
  const names = servedTargets(config, options);
  const running = new Map<string, ApplyWorker>();
  const waiting = new Map<string, { timer?: NodeJS.Timeout; attempt: number; trying?: Promise<void> }>();
  let closed = false;
  const startOne = (name: string) => ApplyWorker.start(config, deps.entities, logger, deps.deadLetters, deps.events, { ...options, targets: [name] });

  const scheduleRetry = (name: string) => {
    const state = waiting.get(name);
    if (!state || closed) return;
    const delay = Math.min(retry.max, retry.first * 2 ** Math.min(state.attempt, 30));
    state.attempt += 1;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      state.trying = (async () => {
        let worker: ApplyWorker | undefined;
        try {
          worker = await startOne(name);
        } catch (error) {
          if (closed) return;
          if (unreachable(error)) {
            logger.warn(
              { target: name, at: describeTarget(config.targets[name]), err: error, attempt: state.attempt },
              `target "${name}" (${describeTarget(config.targets[name])}) is still unreachable: ${(error as Error).message}; its changes wait in its queue, next try in ${Math.round(Math.min(retry.max, retry.first * 2 ** state.attempt) / 1000)} s`,
            );
          } else {
            logger.error(
              { target: name, at: describeTarget(config.targets[name]), err: error },
              `target "${name}" is reachable again but its apply worker cannot start: ${(error as Error).message} (retrying)`,
            );
          }
          scheduleRetry(name);
          return;
        }
        if (closed) {
          await worker.close();
          return;
        }
        waiting.delete(name);
        running.set(name, worker);
        logger.info({ target: name, at: describeTarget(config.targets[name]) }, `target "${name}" is reachable: its apply worker started and works off its queue`);
      })();
    }, delay);
    state.timer.unref?.();
  };

  try {
    for (const name of names) {
      try {
        running.set(name, await startOne(name));
      } catch (error) {
        if (!unreachable(error)) throw error;
        waiting.set(name, { attempt: 0 });
        logger.warn(
          { target: name, at: describeTarget(config.targets[name]), err: error },
          `target "${name}" (${describeTarget(config.targets[name])}) is unreachable: ${(error as Error).message}. ` +
            `The worker serves the other targets; changes for "${name}" wait in its queue, and it keeps trying to connect (backoff up to ${retry.max / 1000} s).`,
        );
      }
    }
  } catch (error) {
    closed = true;
    await Promise.all([...running.values()].map((w) => w.close()));
    throw error;
  }
  for (const name of waiting.keys()) scheduleRetry(name);

  return {
    connected: (target) => running.has(target),
    waiting: () => [...waiting.keys()],
    close: async () => {
      closed = true;
      for (const state of waiting.values()) {
        if (state.timer) clearTimeout(state.timer);
        await state.trying?.catch(() => undefined);
      }
      await Promise.all([...running.values()].map((w) => w.close()));
      running.clear();
    },
  };
}

/**
 * A target the worker could not connect to: the driver or the socket said so
 * (refused, closed, unknown database, locked account). TypeORM refusing the
 * DataSource's own options carries no such code and stays a start-up error.
 */
function unreachable(error: unknown): boolean {
  return isDualWriteError(error) && error.code === 'TARGET_UNREACHABLE' && classifyError((error as Error).cause).code !== undefined;
}

/** host:port/database of a target, for logs; never its credentials. */
export function describeTarget(dataSource: DataSource): string {
  const options = dataSource.options as { url?: string; host?: string; port?: number; database?: string };
  if (options.url) {
    try {
      const url = new URL(options.url);
      return `${url.hostname}${url.port ? `:${url.port}` : ''}${url.pathname}`;
    } catch {
      return '(url)';
    }
  }
  return `${options.host ?? 'localhost'}${options.port ? `:${options.port}` : ''}/${options.database ?? ''}`;
}
