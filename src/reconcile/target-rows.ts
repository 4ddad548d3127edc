import type { QueryRunner } from 'typeorm';
import type { RowImage } from '../outbox/change';
import { encodeValue } from '../outbox/value-codec';
import type { ReconcileTable } from './reconcile-table';

const KEYS_PER_STATEMENT = 500;

/**
 * The target's rows of these keys as wire row images keyed by the PRIMARY's
 * column names (the same shape `readRowImages` gives for the primary), so the
 * two compare directly; `null` where the target has no row.
 * Map keys are the key values joined with NUL.
 */
export async function readTargetRows(
  queryRunner: QueryRunner,
  table: ReconcileTable,
  keys: readonly string[][],
): Promise<Map<string, RowImage | null>> {
  const side = table.targetSide;
  const dialect = side.dialect;
  const mysql = dialect.name === 'mysql';
  const images = new Map<string, RowImage | null>();
  for (const key of keys) images.set(key.join('\u0000'), null);
  const columns = table.targetTable.columns;
  const keyColumns = table.keys.map((k) => dialect.quoteIdentifier(k.target.name));
  const left = keyColumns.length === 1 ? keyColumns[0] : `(${keyColumns.join(', ')})`;
  const list = columns.map((c) => dialect.quoteIdentifier(c.target.name)).join(', ');
  for (let start = 0; start < keys.length; start += KEYS_PER_STATEMENT) {
    const chunk = keys.slice(start, start + KEYS_PER_STATEMENT);
    const params: unknown[] = [];
    const tuples = chunk.map((key) => {
      const slots = side.keyParams(key).map((value) => {
        params.push(value);
        return dialect.placeholder(params.length);
      });
      return slots.length === 1 ? slots[0] : `(${slots.join(', ')})`;
    });
    const sql = `SELECT ${list} FROM ${dialect.quoteTable(table.targetTable.table)} WHERE ${left} IN (${tuples.join(', ')})`;
    const rows = (await queryRunner.query(sql, params)) as Record<string, unknown>[];
    for (const raw of rows) {
      const image: RowImage = {};
      for (const { source, target } of columns) image[source.databaseName] = encodeValue(source.kind, raw[target.name], mysql);
      const key = table.keys.map((k) => String(image[k.source.databaseName]));
      images.set(key.join('\u0000'), image);
    }
  }
  return images;
}
