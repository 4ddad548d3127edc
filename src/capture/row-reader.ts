import type { QueryRunner } from 'typeorm';
import type { Dialect } from '../dialect/dialect';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { RowImage } from '../outbox/change';
import { keyOfRaw, rowImageOfRaw } from './row-image';

const KEYS_PER_STATEMENT = 1000;

/**
 * Reads the current images of rows by key from the primary, through the
 * given query runner (inside the writing transaction when there is one).
 * Rows that do not exist map to `null`: they were deleted. With `forUpdate`
 * the rows are locked until the transaction ends, so a writer that holds one
 * commits (and allocates its outbox sequence) before this read returns.
 */
export async function readRowImages(
  queryRunner: QueryRunner,
  dialect: Dialect,
  entity: ReplicatedEntity,
  keys: readonly string[][],
  options: { forUpdate?: boolean } = {},
): Promise<Map<string, RowImage | null>> {
  const images = new Map<string, RowImage | null>();
  for (const key of keys) images.set(key.join('\u0000'), null);
  const columns = entity.columns.map((c) => dialect.quoteIdentifier(c.databaseName)).join(', ');
  const keyColumns = entity.primaryColumns.map((c) => dialect.quoteIdentifier(c.databaseName));
  for (let start = 0; start < keys.length; start += KEYS_PER_STATEMENT) {
    const chunk = keys.slice(start, start + KEYS_PER_STATEMENT);
    const params: unknown[] = [];
    const tuples = chunk.map((key) => {
      const slots = key.map((value) => {
        params.push(value);
        return dialect.placeholder(params.length);
      });
      return slots.length === 1 ? slots[0] : `(${slots.join(', ')})`;
    });
    const left = keyColumns.length === 1 ? keyColumns[0] : `(${keyColumns.join(', ')})`;
    const lock = options.forUpdate ? ' FOR UPDATE' : '';
    const sql = `SELECT ${columns} FROM ${dialect.quoteTable(entity.tablePath)} WHERE ${left} IN (${tuples.join(', ')})${lock}`;
    const rows = (await queryRunner.query(sql, params)) as Record<string, unknown>[];
    for (const raw of rows) {
      const key = keyOfRaw(entity, raw);
      if (key) images.set(key.join('\u0000'), rowImageOfRaw(entity, raw, dialect.name === 'mysql'));
    }
  }
  return images;
}
