import type { ReconcileReport } from '../../src';
import type { Engine } from '../support/databases';
import { COUNTERS } from './chaos-entities';
import type { Drift } from './verify';
import type { WriterTally } from './workload';

export type FaultKind =
  | 'worker SIGKILL'
  | 'target stopped (maria)'
  | 'target stopped (pg)'
  | 'Redis lost its data'
  | 'writer SIGKILL mid-transaction'
  | 'connections killed (primary, worker sessions)'
  | 'connections killed (target pg)'
  | 'connections killed (target maria)';

export const FAULT_KINDS: FaultKind[] = [
  'worker SIGKILL',
  'target stopped (maria)',
  'target stopped (pg)',
  'Redis lost its data',
  'writer SIGKILL mid-transaction',
  'connections killed (primary, worker sessions)',
  'connections killed (target pg)',
  'connections killed (target maria)',
];

export interface PhaseFigures {
  changes: number;
  /** Writers' start to their last commit, ms. */
  writeMs: number;
  /** Writers' start to every target equal to the primary, ms. */
  convergeMs: number;
  /** Committed changes per second while writing. */
  writeRate: number;
  /** Changes per second from the first write to full convergence (end to end). */
  endToEndRate: number;
}

export interface ChaosReport {
  primary: Engine;
  seed: number;
  tally: WriterTally;
  clean: PhaseFigures;
  faulty: PhaseFigures;
  /** faulty.endToEndRate / clean.endToEndRate */
  throughputRatio: number;
  faults: Record<FaultKind, number>;
  sessionsKilled: number;
  workerExitsOnTheirOwn: number;
  /** Drift the independent comparison saw after the faults and the drain, before the repair (a Redis loss drops queued jobs: the reconciler's job). */
  driftBeforeRepair: Record<string, Drift>;
  /** Of those, the ones a Redis loss cannot explain (last change captured after it): must be none. */
  unexplainedBeforeRepair: string[];
  /** Changes written to the outbox (audit copy), before the repair: the writers' committed changes plus the seeded hot rows. */
  captured: number;
  /** Every target equal to the primary before the manual `reconcile --repair` (the workers' own recovery after the Redis loss did it). */
  convergedBeforeManualRepair: boolean;
  reconcileRepair: Array<Pick<ReconcileReport, 'entity' | 'target' | 'status' | 'missing' | 'extra' | 'changed' | 'repaired'>>;
  /** The reconciler's own check after the repair: every report clean. */
  reconcileCheckClean: boolean;
  reconcileCheckOutput: string;
  /** The independent comparison after the repair: must be 0/0/0. */
  final: Record<string, Drift>;
  lost: number;
  resurrected: number;
  stale: number;
  deadLetters: number;
  deadLetterLines: string[];
  failedJobs: number;
  /** Last fault's end to every target equal to the primary, ms. */
  lastFaultToConvergenceMs: number;
  /** No problem found. */
  ok: boolean;
  problems: string[];
  logFile: string;
}

export function describeDrift(drift: Record<string, Drift>): string {
  return Object.entries(drift)
    .map(([t, d]) => `${t}: ${d.rows} rows, lost ${d.lost}, resurrected ${d.resurrected}, stale ${d.stale}${d.samples.length ? ` [${d.samples.slice(0, 3).join('; ')}]` : ''}`)
    .join(' | ');
}

/** The report as the lines `npm run chaos` prints. */
export function formatReport(r: ChaosReport): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const rate = (n: number) => `${Math.round(n)} changes/s`;
  const lines = [
    `== chaos soak: ${r.primary} primary → pg + maria targets (seed ${r.seed}) ==`,
    `changes written:      ${r.tally.changes} committed (${r.clean.changes} clean phase + ${r.faulty.changes} under faults) in ${r.tally.transactions} transactions: ` +
      `${r.tally.inserts} inserts, ${r.tally.updates} updates, ${r.tally.deletes} deletes, ${r.tally.reinserts} delete-then-reinserts, ${r.tally.counterUpdates} hot-row updates; ` +
      `${r.tally.rolledBack} transactions (${r.tally.rolledBackChanges} writes) rolled back on purpose, ${r.tally.failed} failed (deadlock / killed session)`,
    `faults injected:      ${Object.values(r.faults).reduce((a, b) => a + b, 0)} — ${Object.entries(r.faults).map(([k, n]) => `${k}: ${n}`).join(', ')}; ${r.sessionsKilled} sessions killed; ${r.workerExitsOnTheirOwn} worker starts failed (target down) and were retried`,
    `changes captured:     ${r.captured} (a delete-then-reinsert in one transaction is captured as one change; + ${COUNTERS} seeded hot rows)`,
    `before repair:        ${describeDrift(r.driftBeforeRepair)}`,
    `  not explained by the Redis loss: ${r.unexplainedBeforeRepair.length}${r.unexplainedBeforeRepair.length ? ` [${r.unexplainedBeforeRepair.slice(0, 3).join('; ')}]` : ''}`,
    `self-healed:          ${r.convergedBeforeManualRepair ? 'yes: the targets had converged before the manual reconcile --repair (workers\' recovery after the Redis loss)' : 'no: the manual reconcile --repair was needed'}`,
    `reconcile --repair:   ${r.reconcileRepair.map((x) => `${x.entity}→${x.target} ${x.status} (missing ${x.missing}, extra ${x.extra}, changed ${x.changed}, repaired ${x.repaired})`).join('; ')}`,
    `reconciler check:     ${r.reconcileCheckClean ? 'clean' : 'NOT CLEAN'}`,
    `last fault → converged: ${s(r.lastFaultToConvergenceMs)}`,
    `rows lost:            ${r.lost}`,
    `rows resurrected:     ${r.resurrected}`,
    `rows stale:           ${r.stale}`,
    `dead letters:         ${r.deadLetters}; failed jobs: ${r.failedJobs}`,
    `throughput clean:     ${rate(r.clean.writeRate)} written, ${rate(r.clean.endToEndRate)} end to end (${r.clean.changes} changes, converged in ${s(r.clean.convergeMs)})`,
    `throughput faults:    ${rate(r.faulty.writeRate)} written, ${rate(r.faulty.endToEndRate)} end to end (${r.faulty.changes} changes, converged in ${s(r.faulty.convergeMs)} incl. drain and repair)`,
    `faults/clean:         ${(r.throughputRatio * 100).toFixed(0)}% of the fault-free end-to-end throughput`,
    `catch-up:             last commit → converged ${s(r.clean.convergeMs - r.clean.writeMs)} clean, ${s(r.faulty.convergeMs - r.faulty.writeMs)} under faults`,
    `result:               ${r.ok ? 'OK' : `FAILED — ${r.problems.join('; ')}`}`,
    `log:                  ${r.logFile}`,
  ];
  return lines.join('\n');
}
