import type { TargetColumn } from './dialect';

/**
 * Argument checks shared by both engines' apply SQL builders. Callers skip
 * empty batches, so an empty one is a bug upstream; it is reported the same
 * way on every engine instead of as a syntax error from an empty VALUES list.
 */
export function requireRows(count: number, builder: string): void {
  if (count === 0) throw new RangeError(`${builder} needs at least one row.`);
}

export function requireKeys(columns: readonly TargetColumn[], keyColumns: readonly string[]): void {
  if (keyColumns.length === 0) throw new RangeError('upsertRows needs at least one key column.');
  const names = new Set(columns.map((c) => c.name));
  const missing = keyColumns.find((k) => !names.has(k));
  if (missing !== undefined) throw new RangeError(`Key column "${missing}" is not among the upserted columns.`);
}

/** Outbox sequences, checked to be decimal integers before they are written into SQL text. */
export function decimalSeqs(seqs: readonly string[]): readonly string[] {
  for (const seq of seqs) {
    if (!/^\d+$/.test(seq)) throw new RangeError(`Outbox sequence ${JSON.stringify(seq)} is not a decimal integer.`);
  }
  return seqs;
}
