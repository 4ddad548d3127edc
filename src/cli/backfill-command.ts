import { backfill, DualWrite, loadConfig, type BackfillProgress } from '../index';
import { usageError } from './cli-error';

type Values = Record<string, string | boolean | undefined>;

/** `parseArgs` options of `dualwrite backfill`. */
export const backfillOptions = {
  entity: { type: 'string' },
  target: { type: 'string' },
  restart: { type: 'boolean' },
  'page-size': { type: 'string' },
} as const;

/** Lines of `dualwrite --help`. */
export const BACKFILL_HELP = `  backfill --entity E --target T [--restart] [--page-size N]
                          copy an entity's existing rows into a target through the outbox,
                          while the application keeps writing; resumes an interrupted run
`;

/**
 * `dualwrite backfill`: a progress bar (rows/s, ETA) on a terminal, a plain
 * progress line every few seconds otherwise. SIGINT/SIGTERM stop after the
 * current page; running it again resumes there.
 */
export async function backfillCommand(values: Values): Promise<number> {
  const entity = values.entity as string | undefined;
  const target = values.target as string | undefined;
  if (!entity || !target) throw usageError('dualwrite backfill needs --entity <name> and --target <name>.');
  const pageSize = values['page-size'] === undefined ? undefined : Number(values['page-size']);
  if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize <= 0)) {
    throw usageError(`--page-size takes a positive whole number, got "${values['page-size']}".`);
  }
  const out = process.stdout;
  const render = out.isTTY ? bar(out) : lines(out);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const dw = await DualWrite.start(loadConfig(values.config as string | undefined));
  try {
    const result = await backfill(dw, { entity, target, restart: values.restart === true, pageSize, onProgress: render, signal: stop.signal });
    await dw.flush();
    const seconds = (result.durationMs / 1000).toFixed(1);
    out.write(
      result.complete
        ? `Backfill of ${entity} into ${target}: ${result.rows} rows queued in ${seconds} s; the worker applies them through the version gate.\n`
        : `Backfill of ${entity} into ${target} stopped after ${result.rows} rows; run it again to resume.\n`,
    );
    return result.complete ? 0 : 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await dw.close();
  }
}

function bar(out: NodeJS.WriteStream): (p: BackfillProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (!p.done && now - last < 100) return;
    last = now;
    const width = 30;
    const fraction = p.total > 0 ? Math.min(1, p.rows / p.total) : 1;
    const filled = Math.round(fraction * width);
    const line =
      `${p.entity} → ${p.target} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}% ` +
      `${p.rows}/${p.total} rows, ${Math.round(p.rate)} rows/s, ETA ${eta(p)}${p.waiting ? ' (waiting for the worker)' : ''}`;
    out.write(`\r${line.slice(0, (out.columns || 120) - 1)}\x1b[K${p.done ? '\n' : ''}`);
  };
}

function lines(out: NodeJS.WritableStream): (p: BackfillProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (!p.done && now - last < 5000) return;
    last = now;
    const percent = p.total > 0 ? ((Math.min(p.rows, p.total) / p.total) * 100).toFixed(1) : '100.0';
    out.write(
      `backfill ${p.entity} → ${p.target}: ${p.rows}/${p.total} rows (${percent}%), ${Math.round(p.rate)} rows/s, ETA ${eta(p)}` +
        `${p.waiting ? ', waiting for the worker' : ''}${p.done ? ', done' : ''}\n`,
    );
  };
}

function eta(p: BackfillProgress): string {
  if (p.done) return '0s';
  if (p.etaMs === undefined) return '?';
  const s = Math.round(p.etaMs / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
