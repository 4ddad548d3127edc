/**
 * `npm run chaos`: the chaos soak (see README, "Chaos soak").
 *   CHAOS_PRIMARY   postgres | mariadb | both (default both: PostgreSQL primary first, then MariaDB)
 *   CHAOS_CHANGES   committed changes under faults per run (default 100000)
 *   CHAOS_CLEAN     committed changes of the fault-free baseline phase (default 20% of CHAOS_CHANGES)
 *   CHAOS_OUTAGE_MS how long each target is down (default 20000)
 *   CHAOS_SEED      replay a run
 *   CHAOS_SHORT=1   the CI version (3,000 throttled changes, 5 s outages)
 * Exits 1 when a row is lost, resurrected or stale, the reconciler is not
 * clean, a dead letter exists, or a fault kind was never injected.
 */
import 'reflect-metadata';
import type { Engine } from '../support/databases';
import { formatReport, runChaos, type ChaosReport } from './chaos-soak';
import { shortOptions, soakOptions } from './presets';

async function main(): Promise<number> {
  const which = process.env.CHAOS_PRIMARY ?? 'both';
  if (!['postgres', 'mariadb', 'both'].includes(which)) throw new Error(`CHAOS_PRIMARY must be postgres, mariadb or both, got "${which}"`);
  const primaries: Engine[] = which === 'both' ? ['postgres', 'mariadb'] : [which as Engine];
  const changes = Number(process.env.CHAOS_CHANGES ?? 100_000);
  const reports: ChaosReport[] = [];
  for (const primary of primaries) {
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 2 ** 31);
    const log = (line: string) => process.stdout.write(`${line}\n`);
    const options = process.env.CHAOS_SHORT ? shortOptions(primary, seed, log) : soakOptions(primary, seed, log, changes);
    if (process.env.CHAOS_CLEAN) options.cleanChanges = Number(process.env.CHAOS_CLEAN);
    if (process.env.CHAOS_OUTAGE_MS) options.outageMs = Number(process.env.CHAOS_OUTAGE_MS);
    const report = await runChaos(options);
    process.stdout.write(`\n${formatReport(report)}\n\n`);
    reports.push(report);
  }
  return reports.every((r) => r.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`chaos soak failed to run: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);
