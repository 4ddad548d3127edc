import type { QueryRunner } from 'typeorm';
import { keyOfRaw, rowImageOfRaw } from '../capture/row-image';
import type { Dialect } from '../dialect/dialect';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { RowImage } from '../outbox/change';

const KEYS_PER_STATEMENT = 1000;

export interface RowImagesByKeyOptions {
  /** Lock the rows (`SELECT … FOR UPDATE`, in key order). @defaultValue false */
  lock?: boolean;
  /** The engine's parameters of a key given as wire strings. @defaultValue the strings themselves */
  keyParams?: (key: readonly string[]) => unknown[];
}

/**
 * The primary's current row images of these keys, like `readRowImages`, with
 * typed key parameters and optionally a locking read. Rows that do not exist
 * map to `null`; map keys are the key values joined with NUL.
 */
export async function readRowImagesByKey(
  queryRunner: QueryRunner,
  dialect: Dialect,
  entity: ReplicatedEntity,
  keys: readonly string[][],
  options: RowImagesByKeyOptions = {},
): Promise<Map<string, RowImage | null>> {
  const images = new Map<string, RowImage | null>();
  for (const key of keys) images.set(key.join('\u0000'), null);
  const columns = entity.columns.map((c) => dialect.quoteIdentifier(c.databaseName)).join(', ');
  const keyColumns = entity.primaryColumns.map((c) => dialect.quoteIdentifier(c.databaseName));
  const left = keyColumns.length === 1 ? keyColumns[0] : `(${keyColumns.join(', ')})`;
  const lock = options.lock ? ` ORDER BY ${keyColumns.join(', ')} FOR UPDATE` : '';
  for (let start = 0; start < keys.length; start += KEYS_PER_STATEMENT) {
    const chunk = keys.slice(start, start + KEYS_PER_STATEMENT);
    const params: unknown[] = [];
    const tuples = chunk.map((key) => {
      const slots = (options.keyParams ? options.keyParams(key) : key).map((value) => {
        params.push(value);
        return dialect.placeholder(params.length);
      });
      return slots.length === 1 ? slots[0] : `(${slots.join(', ')})`;
    });
    const sql = `SELECT ${columns} FROM ${dialect.quoteTable(entity.tablePath)} WHERE ${left} IN (${tuples.join(', ')})${lock}`;
    const rows = (await queryRunner.query(sql, params)) as Record<string, unknown>[];
    for (const raw of rows) {
      const key = keyOfRaw(entity, raw);
      if (key) images.set(key.join('\u0000'), rowImageOfRaw(entity, raw, dialect.name === 'mysql'));
    }
  }
  return images;
}

/**
 * The locking read of a repair or backfill: run inside a primary transaction,
 * it waits for whichever transaction holds these rows, returns their
 * committed state and keeps them locked until commit, so an outbox sequence
 * allocated afterwards is later than that of every write that committed
 * before, and every later writer of these rows waits for the commit.
 */
export function readRowImagesForUpdate(
  queryRunner: QueryRunner,
  dialect: Dialect,
  entity: ReplicatedEntity,
  keys: readonly string[][],
  keyParams?: (key: readonly string[]) => unknown[],
): Promise<Map<string, RowImage | null>> {
  return readRowImagesByKey(queryRunner, dialect, entity, keys, { lock: true, keyParams });
}
