import type { ObjectLiteral } from 'typeorm';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { RowImage } from '../outbox/change';
import { encodeValue } from '../outbox/value-codec';

/** The primary-key values of an entity (or of an id map) as key strings. */
export function keyOf(entity: ReplicatedEntity, ...sources: Array<ObjectLiteral | undefined>): string[] | undefined {
  const key: string[] = [];
  for (const column of entity.primaryColumns) {
    let value: unknown;
    for (const source of sources) {
      if (source === undefined || source === null) continue;
      value = column.metadata.getEntityValue(source, true);
      if (value !== undefined && value !== null) break;
    }
    if (value === undefined || value === null) return undefined;
    key.push(String(encodeValue(column.kind, value)));
  }
  return key;
}

/**
 * The full row image of a written entity. Columns the entity object lacks are
 * taken from `fallback` (TypeORM's database entity on updates); when neither
 * has a column, the image is incomplete and `undefined` is returned, so the
 * caller reads the row back instead. On inserts a missing value is NULL.
 */
export function rowImageOf(
  entity: ReplicatedEntity,
  written: ObjectLiteral,
  fallback: ObjectLiteral | undefined,
  missingIsNull: boolean,
): RowImage | undefined {
  const row: RowImage = {};
  for (const column of entity.columns) {
    let value = column.metadata.getEntityValue(written, true);
    if (value === undefined && fallback !== undefined) value = column.metadata.getEntityValue(fallback, true);
    if (value === undefined) {
      if (!missingIsNull) return undefined;
      value = null;
    }
    row[column.databaseName] = encodeValue(column.kind, value);
  }
  return row;
}

/**
 * The row image after an update through save(), or `undefined` when the row
 * must be read back. Only the columns the UPDATE set (and the update-date and
 * version columns TypeORM maintains) are known for sure: TypeORM loaded the
 * rest (its database entity) BEFORE the update and without a lock, so a
 * concurrent transaction may have changed them in between. Our UPDATE waited
 * for that transaction's row lock and then kept its values, so an image built
 * from the loaded copy would replicate a row the primary never held (found by
 * the chaos soak: two writers saving different columns of one hot row). Key
 * columns are safe: the UPDATE matched them.
 */
export function rowImageOfUpdate(
  entity: ReplicatedEntity,
  written: ObjectLiteral,
  databaseEntity: ObjectLiteral,
  updatedColumns: ReadonlyArray<{ databaseName: string }>,
): RowImage | undefined {
  const changed = new Set(updatedColumns.map((c) => c.databaseName));
  const row: RowImage = {};
  for (const column of entity.columns) {
    const meta = column.metadata;
    const fromWritten = changed.has(column.databaseName) || meta.isUpdateDate || meta.isVersion;
    if (!fromWritten && !meta.isPrimary) return undefined;
    let value = meta.getEntityValue(fromWritten ? written : databaseEntity, true);
    if (value === undefined) value = meta.getEntityValue(fromWritten ? databaseEntity : written, true);
    if (value === undefined) return undefined;
    row[column.databaseName] = encodeValue(column.kind, value);
  }
  return row;
}

/** The row image of a raw row read back from the primary (database column names). */
export function rowImageOfRaw(entity: ReplicatedEntity, raw: Record<string, unknown>, jsonAsText: boolean): RowImage {
  const row: RowImage = {};
  for (const column of entity.columns) {
    row[column.databaseName] = encodeValue(column.kind, raw[column.databaseName], jsonAsText);
  }
  return row;
}

/** Key strings of a raw row (a SELECT result or rows a statement RETURNed). */
export function keyOfRaw(entity: ReplicatedEntity, raw: Record<string, unknown>): string[] | undefined {
  const key: string[] = [];
  for (const column of entity.primaryColumns) {
    const value = raw[column.databaseName];
    if (value === undefined || value === null) return undefined;
    key.push(String(encodeValue(column.kind, value)));
  }
  return key;
}
