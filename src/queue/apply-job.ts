import type { Change } from '../outbox/change';

/** The name of every apply job. */
export const APPLY_JOB = 'apply';

/**
 * The changes of one batch outbox row (see OutboxWriter): one entity, and
 * versions `versionOf(seq, i)` in list order. Each change lacks what the run
 * gives it: `id`, `entity`, `version` (and `trace`, unless its own differs).
 */
export interface ChangeRun {
  seq: string;
  entity: string;
  changes: Array<Omit<Change, 'id' | 'entity' | 'version'>>;
  trace?: string;
}

/**
 * What one apply job carries: many changes for ONE target. Read them with
 * `checkApplyJob`, which unfolds the runs and orders everything by version.
 */
export interface ApplyJobData {
  target: string;
  changes: Change[];
  runs?: ChangeRun[];
  /** When an attempt of this job first failed (set by the worker). */
  firstFailedAt?: number;
}

/** The apply queue of a target. Target names cannot contain `.`, so this never collides. */
export function applyQueueName(target: string): string {
  return target;
}
