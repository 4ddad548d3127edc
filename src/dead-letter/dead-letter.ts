import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from '../observability/logger';
import type { Change } from '../outbox/change';

/** Why a change could not be applied. */
export interface DeadLetterFailure {
  /** `permanent` (retrying cannot help) or `transient` (its attempts ran out). */
  class: 'permanent' | 'transient';
  /** Classified reason: `constraint`, `data`, `schema`, `connection`, `stalled`, … */
  reason: string;
  /** The driver's code (SQLSTATE, MySQL error name, DualWriteError code) when there was one. */
  code?: string;
  message: string;
}

/** A change that can never apply to one target, kept until replayed or discarded. */
export interface DeadLetter {
  /** `<target>/<version>`: what `dualwrite dlq show|replay|discard` take. */
  id: string;
  target: string;
  /** The change as captured (`@NotReplicated` values never left the primary). */
  change: Change;
  failure: DeadLetterFailure;
  /** Apply attempts of the job that carried the change. */
  attempts: number;
  firstFailedAt: number;
  lastFailedAt: number;
}

/** What a dead-letter handler gets besides the letter. */
export interface DeadLetterContext {
  /** The primary DataSource, for reads. */
  primary: DataSource;
  /**
   * Runs `work` in its own transaction on the primary: the place for a
   * compensating write. What it writes is captured and replicated like any
   * other write.
   */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T>;
  logger: Logger;
  /** 1 on the first call; more when an earlier call threw. */
  attempt: number;
}

/**
 * Called once per dead letter (`onDeadLetter` in the config, or per entity in
 * `@Replicate`). A handler that throws is called again with backoff; the dead
 * letter stays either way.
 */
export type DeadLetterHandler = (letter: DeadLetter, context: DeadLetterContext) => Promise<void> | void;

/** The dead-letter queue of a target. Target names cannot contain `.`. */
export function deadLetterQueueName(target: string): string {
  return `${target}.dead`;
}

/** The BullMQ job id of a change's dead letter: one per change and target. */
export function deadLetterJobId(change: Change): string {
  return `d-${change.version}`;
}

export function deadLetterId(target: string, version: string): string {
  return `${target}/${version}`;
}
