import { isDeepStrictEqual } from 'node:util';
import type { QueryRunner } from 'typeorm';
import { keyString, type RowImage } from '../outbox/change';
import { readLedgerVersions } from './ledger-versions';
import type { DriftKind } from './range-differ';
import type { ReconcileTable } from './reconcile-table';
import { differingColumns } from './row-compare';
import { readRowImagesByKey } from './row-images-by-key';
import { readTargetRows } from './target-rows';

/** A difference seen twice, with nothing on its way to fix it. */
export interface ConfirmedDrift {
  key: string[];
  kind: DriftKind;
  /** Changed columns (primary column names), for `changed`. */
  columns: string[];
}

export interface LookResult {
  confirmed: ConfirmedDrift[];
  /** Keys with a change in flight, or that moved while being looked at: look again later. */
  hot: string[][];
  /** Keys that turned out equal. */
  resolved: string[][];
}

/**
 * The second look at suspect keys, row by row in Node (the authority: values
 * are compared as the apply writes them). In this order: the primary's rows,
 * the target's rows and ledger versions, the keys in flight, the ledger again,
 * the primary again. A key is confirmed only if it differs, nothing of it is
 * in flight, and neither side moved meanwhile: a change applied between two
 * reads shows in the ledger, a commit on the primary in the second read.
 */
export async function secondLook(
  table: ReconcileTable,
  primaryRunner: QueryRunner,
  targetRunner: QueryRunner,
  keys: readonly string[][],
  inFlight: () => Promise<Set<string>>,
): Promise<LookResult> {
  const primary = table.primary;
  const readPrimary = () => readRowImagesByKey(primaryRunner, primary.dialect, table.entity, keys, { keyParams: primary.keyParams });
  const ledgerKeys = keys.map((k) => keyString(k));
  const readLedger = () => readLedgerVersions(targetRunner, table.targetSide.dialect, table.entity.name, ledgerKeys);
  const before = await readPrimary();
  const target = await readTargetRows(targetRunner, table, keys);
  const ledgerBefore = await readLedger();
  const flying = await inFlight();
  const ledgerAfter = await readLedger();
  const after = await readPrimary();

  const result: LookResult = { confirmed: [], hot: [], resolved: [] };
  for (const key of keys) {
    const id = key.join('\u0000');
    const ledgerKey = keyString(key);
    const p = before.get(id) ?? null;
    if (!isDeepStrictEqual(p, after.get(id) ?? null) || ledgerBefore.get(ledgerKey) !== ledgerAfter.get(ledgerKey)) {
      result.hot.push(key);
      continue;
    }
    const drift = classify(table, p, target.get(id) ?? null);
    if (!drift) result.resolved.push(key);
    else if (flying.has(ledgerKey)) result.hot.push(key);
    else result.confirmed.push({ key, ...drift });
  }
  return result;
}

function classify(table: ReconcileTable, primary: RowImage | null, target: RowImage | null): { kind: DriftKind; columns: string[] } | undefined {
  if (primary && !target) return { kind: 'missing', columns: [] };
  if (!primary && target) return { kind: 'extra', columns: [] };
  if (!primary || !target) return undefined;
  const columns = differingColumns(table.columns, primary, target);
  return columns.length ? { kind: 'changed', columns } : undefined;
}
