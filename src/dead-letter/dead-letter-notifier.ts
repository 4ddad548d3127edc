import { Worker, type ConnectionOptions } from 'bullmq';
import type { ResolvedConfig } from '../config/dual-write-config';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { Logger } from '../observability/logger';
import { redisOptionsOf } from '../queue/redis-connection';
import { deadLetterQueueName, type DeadLetterHandler } from './dead-letter';
import type { DeadLetterData } from './dead-letter-queue';
import { deadLetterId } from './dead-letter';

/**
 * Calls the user's dead-letter handler once per letter: the letter's own job
 * in the `<target>.dead` queue is processed by exactly one worker at a time
 * and completes when the handler returns, so several worker processes never
 * call it twice for one letter. A throwing handler is retried with backoff
 * (`deadLetter.handlerAttempts`); the letter stays either way.
 */
export function startDeadLetterNotifier(
  config: ResolvedConfig,
  entities: ReadonlyMap<string, ReplicatedEntity>,
  target: string,
  logger: Logger,
): Worker<DeadLetterData> | undefined {
  const anyHandler = config.onDeadLetter !== undefined || [...entities.values()].some((e) => e.options.onDeadLetter);
  if (!anyHandler) return undefined;
  const log = logger.child({ target, component: 'dead-letter' });
  const worker = new Worker<DeadLetterData>(
    deadLetterQueueName(target),
    async (job) => {
      const data = job.data;
      const handler: DeadLetterHandler | undefined = entities.get(data.change.entity)?.options.onDeadLetter ?? config.onDeadLetter;
      if (!handler) return;
      const letter = {
        id: deadLetterId(data.target, data.change.version),
        target: data.target,
        change: data.change,
        failure: data.failure,
        attempts: data.attempts,
        firstFailedAt: data.firstFailedAt,
        lastFailedAt: data.lastFailedAt,
      };
      try {
        await handler(letter, {
          primary: config.primary,
          transaction: (work) => config.primary.transaction(work),
          logger: log,
          attempt: job.attemptsMade + 1,
        });
      } catch (error) {
        const attempt = job.attemptsMade + 1;
        const attempts = job.opts.attempts ?? 1;
        if (attempt < attempts) {
          log.warn({ err: error, letter: letter.id, attempt, attempts }, 'onDeadLetter handler threw; it will be called again');
        } else {
          log.error({ err: error, letter: letter.id, attempt, attempts }, `onDeadLetter handler threw on its last call (${attempts}); the dead letter is kept`);
        }
        throw error;
      }
    },
    { connection: redisOptionsOf(config.redis) as ConnectionOptions, prefix: config.queuePrefix, concurrency: 1 },
  );
  worker.on('error', (error) => log.error({ err: error }, 'dead-letter worker error'));
  return worker;
}
