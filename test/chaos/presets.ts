import type { Engine } from '../support/databases';
import type { ChaosOptions } from './chaos-soak';

/** `npm run chaos`: 100,000 changes under faults, writers at full speed, 20 s target outages. */
export function soakOptions(primary: Engine, seed: number, log: (line: string) => void, changes = 100_000): ChaosOptions {
  return {
    primary,
    changes,
    cleanChanges: Math.round(changes / 5),
    writers: 3,
    workers: 3,
    rate: 0,
    workerKillEvery: [2000, 6000],
    connectionKillEvery: [3000, 8000],
    outageMs: 20_000,
    seed,
    log,
  };
}

/**
 * The CI version: a few thousand changes, writers throttled so the fault
 * phase lasts about 35 s and every fault lands while they write; 5 s outages.
 */
export function shortOptions(primary: Engine, seed: number, log: (line: string) => void): ChaosOptions {
  return {
    primary,
    changes: 3000,
    cleanChanges: 600,
    writers: 3,
    workers: 3,
    rate: 30,
    workerKillEvery: [2000, 4000],
    connectionKillEvery: [1500, 3000],
    outageMs: 5000,
    seed,
    log,
    drainTimeoutMs: 120_000,
  };
}
