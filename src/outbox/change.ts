/** What a captured write did to one row. */
export type ChangeOperation = 'upsert' | 'delete';

/** A value as it travels through the outbox and Redis; see `encodeValue`. */
export type WireValue = null | string | number | boolean | WireValue[] | { [key: string]: WireValue };

/** A row image keyed by the primary's database column names. */
export type RowImage = Record<string, WireValue>;

/**
 * One captured change of one row, as it is stored in the outbox and carried
 * in jobs. `@NotReplicated` columns are never in `row`.
 */
export interface Change {
  /** Idempotency key, unique per change: `<entity>#<version>`. */
  id: string;
  /** The entity's name in TypeORM's metadata (class or schema name). */
  entity: string;
  op: ChangeOperation;
  /** Primary-key values in primary-column order, as strings. */
  key: string[];
  /** Per-row order: greater means later. A decimal string (it is a bigint). */
  version: string;
  /** Full row image for `upsert`; `null` for `delete`. */
  row: RowImage | null;
  /** Capture time, milliseconds since the epoch. */
  capturedAt: number;
  /** W3C `traceparent` of the writing request, when there was one. */
  trace?: string;
}

/** The canonical string of a primary key: the ledger's key column. */
export function keyString(key: readonly string[]): string {
  return key.length === 1 ? key[0] : JSON.stringify(key);
}

export function changeId(entity: string, version: string): string {
  return `${entity}#${version}`;
}

/**
 * An outbox row holds up to this many changes of one entity from one
 * transaction (a "batch" row; see OutboxWriter), and change `i` of the row
 * with sequence `seq` has version `seq × 1000 + i`: versions stay bigints
 * that grow with the outbox sequence, so every order the version gate
 * relies on holds as it did with one row per change.
 */
export const CHANGES_PER_ROW = 1000;

/** The version of the `index`-th change of the outbox row `seq` (decimal text, no leading zeros). */
export function versionOf(seq: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= CHANGES_PER_ROW) throw new RangeError(`Change index ${index} is outside an outbox row (0…${CHANGES_PER_ROW - 1}).`);
  return `${seq}${index < 10 ? '00' : index < 100 ? '0' : ''}${index}`;
}
