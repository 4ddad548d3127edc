import type { Statement } from './dialect';

/** What a column's SQL type means for comparing its values across engines. */
export type ColumnFamily =
  | 'integer'
  | 'decimal'
  | 'float'
  | 'boolean'
  | 'string'
  | 'uuid'
  | 'date'
  | 'time'
  | 'timestamp'
  | 'binary'
  | 'json'
  | 'other';

/** One column of a table as its own database describes it. */
export interface ColumnFacts {
  name: string;
  /** The engine's full type, e.g. `numeric(14,4)`, `timestamp(3) with time zone`, `datetime(3)`. */
  sqlType: string;
  nullable: boolean;
  family: ColumnFamily;
  /** Decimal digits after the point; `null` when unconstrained (PostgreSQL `numeric`). */
  scale: number | null;
  /** Fractional-second digits of a time or timestamp column. */
  fraction: number;
  /** A timestamp that holds an instant (PostgreSQL `timestamptz`, MySQL `TIMESTAMP`), not a wall-clock time. */
  instant: boolean;
  /** The column's own comparisons (and so its index) follow byte order, e.g. collation "C" or `utf8mb4_bin`. */
  binaryOrder: boolean;
  /** A string column already holds UTF-8 text (no conversion needed before hashing). @defaultValue true */
  utf8?: boolean;
}

/**
 * How a column's value becomes the text that both engines hash identically.
 * Chosen per column from the entity's metadata and both sides' facts.
 */
export type Normalization =
  | { as: 'integer' }
  /** Fixed-scale text; `'trim'` strips trailing zeros (PostgreSQL on both sides, unconstrained scale). */
  | { as: 'decimal'; scale: number | 'trim' }
  /**
   * 15 significant digits (DBL_DIG) of the double's shortest round-trip
   * text: the engines spell some doubles' shortest text differently (ties),
   * never their 15-digit rounding.
   */
  | { as: 'float' }
  | { as: 'boolean' }
  /** Length-prefixed text, so no separator inside a value can shift the next one. */
  | { as: 'string' }
  | { as: 'uuid' }
  | { as: 'date' }
  | { as: 'time'; fraction: number }
  /** Both sides hold instants: UTC epoch seconds at `fraction` places (truncated). */
  | { as: 'epoch'; fraction: number }
  /** Wall-clock text at `fraction` places (truncated); a side holding an instant renders it in `zone`. */
  | { as: 'wallclock'; fraction: number; zone: string }
  /** md5 of the bytes. */
  | { as: 'binary' }
  /** Not hashed in SQL (JSON and other values the engines cannot render alike); compared in Node. Its NULL bit is hashed. */
  | { as: 'none' };

/** A column of the checksum: this side's facts and the normalization both sides share. */
export interface ChecksumColumn {
  facts: ColumnFacts;
  norm: Normalization;
  /** Whether the column takes a bit in the row's NULL bitmap (nullable on either side). */
  nullBit: boolean;
  /**
   * The last string of the row text: nothing can follow it, so it needs no
   * length prefix (strings come after every other value).
   */
  lastString?: boolean;
}

/** One table on one side: its key columns (in key order) and every compared column (keys included). */
export interface ChecksumTable {
  table: string;
  keys: readonly ChecksumColumn[];
  columns: readonly ChecksumColumn[];
}

/**
 * A range of keys in byte order: `after < key ≤ upTo`; an absent bound is
 * open. Values are parameters for this engine, in key-column order.
 */
export interface KeyRange {
  after?: readonly unknown[];
  upTo?: readonly unknown[];
}

/** Statement and lock time limits of the reconciler's sessions, in ms. */
export interface SessionLimits {
  statementTimeout: number;
  lockTimeout: number;
}

/**
 * SQL of the reconciler's checksums on one engine. Every statement that
 * returns keys returns them as `k0`, `k1`, … (raw column values); hashes are
 * the SUM of a 60-bit slice of an md5 row hash, as decimal text (`s`), with
 * the row count as text (`n`). Keys are ordered and compared in byte order on
 * both engines, so one key range holds the same keys on each.
 */
export interface ChecksumSql {
  /** Columns of `table` (schema-qualified or not), with type, nullability and collation. */
  describeColumns(table: string): Statement;
  readColumn(row: Record<string, unknown>): ColumnFacts;
  /** The key at 0-based `offset` within the range (no row when the range holds fewer). */
  keyAt(table: ChecksumTable, range: KeyRange, offset: number): Statement;
  /**
   * The keys at the 1-based `positions` (ascending) within the range, in one
   * read of the key index up to the last position; rows `k0…` and `rn`.
   */
  keysAt(table: ChecksumTable, range: KeyRange, positions: readonly number[]): Statement;
  /** `n` and `s` of the range. */
  checksum(table: ChecksumTable, range: KeyRange): Statement;
  /**
   * Per part of the range, split at `splits` (ascending keys; part i holds
   * keys ≤ splits[i] and > splits[i-1]): rows `part`, `n`, `s`. One scan.
   */
  checksumParts(table: ChecksumTable, range: KeyRange, splits: readonly (readonly unknown[])[]): Statement;
  /** Every `step`-th key of the range in key order: the split points of `checksumParts`. */
  splitKeys(table: ChecksumTable, range: KeyRange, step: number): Statement;
  /** Keys and row hash `h` (decimal text) of every row in the range, in key order, at most `limit`. */
  rowHashes(table: ChecksumTable, range: KeyRange, limit: number): Statement;
  /** Keys and row hash `h` of every row in any of the (disjoint) ranges, in no particular order: one statement for many small ranges. */
  rowHashesIn(table: ChecksumTable, ranges: readonly KeyRange[]): Statement;
  /**
   * Keys and the raw values `v0`, `v1`, … of `columns` for the rows of the
   * range in key order, at most `limit`; `lock` makes it a locking read
   * (`FOR UPDATE`) for backfill.
   */
  page(table: ChecksumTable, range: KeyRange, columns: readonly ChecksumColumn[], options?: { limit?: number; lock?: boolean }): Statement;
  /** Statements that set the session's statement and lock timeouts. */
  limitSession(limits: SessionLimits): string[];
  /** Statements that restore the session defaults afterwards (the connection goes back to a pool). */
  resetSession(): string[];
}

/**
 * For a table keyed by ONE integer column: the thresholds (each split + 1,
 * decimal text) whose count at or below a key is that key's part number
 * (`after < key ≤ split`), for the engines' own binary search over a sorted
 * list (PostgreSQL `width_bucket`, MySQL `INTERVAL`), cheaper per row than a
 * CASE tree of comparisons. Undefined for other keys, or values that are not
 * integers within a signed 64-bit range.
 */
export function integerThresholds(table: ChecksumTable, splits: ReadonlyArray<readonly unknown[]>): string[] | undefined {
  if (table.keys.length !== 1 || table.keys[0].facts.family !== 'integer' || splits.length === 0) return undefined;
  const thresholds: string[] = [];
  for (const [split] of splits) {
    const text = String(split);
    if (!/^-?\d+$/.test(text)) return undefined;
    const next = BigInt(text) + 1n;
    if (next > 9223372036854775807n) return undefined;
    thresholds.push(next.toString());
  }
  return thresholds;
}
