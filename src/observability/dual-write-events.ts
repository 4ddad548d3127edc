import { EventEmitter } from 'node:events';
import type { Change } from '../outbox/change';

/** What happened to one apply job. */
export interface AppliedEvent {
  target: string;
  changes: readonly Change[];
  applied: number;
  skipped: number;
  deadLettered: number;
  /** When the relay added the job to the queue, ms since the epoch. */
  queuedAt: number;
  /** When this attempt at the job started, ms since the epoch. */
  startedAt: number;
  /** When the job's transaction(s) committed, ms since the epoch. */
  finishedAt: number;
}

export interface RelayedEvent {
  /** Outbox rows (a row holds one change, or a batch of one transaction's changes of one entity). */
  rows: number;
  changes: number;
  jobs: number;
}

interface EventMap {
  applied: [AppliedEvent];
  relayed: [RelayedEvent];
}

/**
 * In-process notifications for metrics, benchmarks and tests
 * (`dw.events.on('applied', …)`). Listeners must be quick: they run on the
 * apply and relay paths.
 */
export class DualWriteEvents extends EventEmitter<EventMap> {}
