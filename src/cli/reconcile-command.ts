import { DualWrite, loadConfig, reconcile, type ReconcileReport } from '../index';

type Values = Record<string, string | boolean | undefined>;

/** `parseArgs` options of `dualwrite reconcile`. */
export const reconcileOptions = {
  entity: { type: 'string' },
  target: { type: 'string' },
  repair: { type: 'boolean' },
  json: { type: 'boolean' },
  restart: { type: 'boolean' },
} as const;

/** Lines of `dualwrite --help`. */
export const RECONCILE_HELP = `  reconcile [--entity E] [--target T] [--repair] [--json] [--restart]
                          compare the primary with each target (chunked checksums in SQL);
                          exits 1 on drift left unrepaired; --repair re-emits it through the
                          outbox (the worker applies it); --restart ignores an interrupted run
`;

/**
 * `dualwrite reconcile`: one report per entity × target, stored for
 * `status` and the dashboard. Exit code 1 when drift is found and not
 * repaired, so it can run from cron or CI.
 */
export async function reconcileCommand(values: Values): Promise<number> {
  const dw = await DualWrite.start(loadConfig(values.config as string | undefined));
  let reports: ReconcileReport[];
  try {
    reports = await reconcile(dw, {
      entity: values.entity as string | undefined,
      target: values.target as string | undefined,
      repair: values.repair === true,
      restart: values.restart === true,
    });
    if (values.repair === true) await dw.flush();
  } finally {
    await dw.close();
  }
  if (values.json === true) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  else process.stdout.write(reports.map(describe).join(''));
  const unrepaired = reports.some((r) => r.missing + r.extra + r.changed > r.repaired || r.truncated);
  if (unrepaired && values.repair !== true && values.json !== true) {
    process.stdout.write('Drift found. `dualwrite reconcile --repair` re-emits these rows from the primary through the outbox.\n');
  }
  return unrepaired ? 1 : 0;
}

function describe(r: ReconcileReport): string {
  const seconds = (r.durationMs / 1000).toFixed(1);
  const head = `${r.entity} → ${r.target}: ${r.status.toUpperCase()}, ${r.rowsCompared} rows compared (target ${r.targetRows}) in ${seconds} s, ${r.chunks} chunks`;
  const counts = r.missing + r.extra + r.changed > 0 ? `; ${r.missing} missing, ${r.extra} extra, ${r.changed} changed, ${r.repaired} repaired` : '';
  const hot = r.hotKeys > 0 ? `; ${r.hotKeys} keys in ${r.chunksSkippedHot} chunks skipped while in flight (checked again next run)` : '';
  const truncated = r.truncated ? '; more differences than one run handles: only the first 100000 were looked at (a target that lacks most rows wants `dualwrite backfill`)' : '';
  const lines = [`${head}${counts}${hot}${truncated}${r.resumed ? ' (resumed)' : ''}\n`];
  if (r.samples.missing.length) lines.push(`    missing: ${r.samples.missing.join(' ')}\n`);
  if (r.samples.extra.length) lines.push(`    extra:   ${r.samples.extra.join(' ')}\n`);
  if (r.samples.changed.length) lines.push(`    changed: ${r.samples.changed.map((c) => `${c.key} (${c.columns.join(', ')})`).join(' ')}\n`);
  return lines.join('');
}
