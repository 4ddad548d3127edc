/**
 * The chaos soak's CI version (`npm run chaos` is the 100,000-change one):
 * 3,000 changes from 3 writer processes through 3 `dualwrite worker`
 * processes, PostgreSQL and MariaDB primaries in turn, with every fault kind at
 * least once: worker SIGKILLs, each target (a private server) stopped for 5 s,
 * Redis (private) restarted empty, a writer SIGKILLed between its writes and
 * COMMIT, sessions killed on the primary and both targets. After the drain and
 * one `dualwrite reconcile --repair`, nothing is lost, resurrected or stale.
 *
 * Needs `npm run build` first (the children run the compiled CLI and fixtures).
 */
import { formatReport, runChaos, FAULT_KINDS, type ChaosReport } from '../../chaos/chaos-soak';
import { shortOptions } from '../../chaos/presets';
import type { Engine } from '../../support/databases';

jest.setTimeout(240_000);

describe.each<Engine>(['postgres', 'mariadb'])('chaos soak, short (%s primary)', (primary) => {
  it('converges to the primary with nothing lost, resurrected or stale', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 2 ** 31);
    const lines: string[] = [];
    let report: ChaosReport;
    try {
      report = await runChaos(shortOptions(primary, seed, (line) => lines.push(line)));
    } catch (error) {
      process.stderr.write(`${lines.join('\n')}\n`);
      throw error;
    }
    if (!report.ok || process.env.CHAOS_VERBOSE) process.stderr.write(`${lines.join('\n')}\n${formatReport(report)}\n`);

    expect(report.problems).toEqual([]);
    expect(report.tally.changes).toBe(3600);
    for (const kind of FAULT_KINDS) expect([kind, report.faults[kind]]).toEqual([kind, expect.any(Number)]);
    expect(Math.min(...FAULT_KINDS.map((k) => report.faults[k]))).toBeGreaterThanOrEqual(1);
    expect(report.unexplainedBeforeRepair).toEqual([]);
    expect({ lost: report.lost, resurrected: report.resurrected, stale: report.stale }).toEqual({ lost: 0, resurrected: 0, stale: 0 });
    // The comparison looked at real rows (how many survive depends on the seed: about 470–700 per entity and target).
    for (const drift of Object.values(report.final)) expect(drift.rows).toBeGreaterThan(100);
    expect(report.reconcileCheckClean).toBe(true);
    expect(report.deadLetters).toBe(0);
    expect(report.failedJobs).toBe(0);
    expect(report.ok).toBe(true);
  });
});
