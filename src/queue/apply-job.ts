import type { Change } from '../outbox/change';

/** The name of every apply job. */
export const APPLY_JOB = 'apply';

/** What one apply job carries: many changes for ONE target, in version order. */
export interface ApplyJobData {
  target: string;
  changes: Change[];
  /** When an attempt of this job first failed (set by the worker). */
  firstFailedAt?: number;
}

/** The apply queue of a target. Target names cannot contain `.`, so this never collides. */
export function applyQueueName(target: string): string {
  return target;
}
