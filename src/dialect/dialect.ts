export type DialectName = 'postgres' | 'mysql';

/** SQL for the outbox table on the primary. `$n`/`?` placeholders per engine. */
export interface OutboxSql {
  /** Does the outbox table exist? Returns one row with `n > 0` when it does. */
  exists(table: string): string;
  /**
   * INSERT of `rows` outbox rows (entity, op, pk, row_image, targets,
   * captured_at, trace). On engines with a `channel`, it also notifies it
   * (at commit) unless `notify` is false. With `returnSeqs` (engines with
   * `returnsSeqs`, and only without `notify`) it returns the rows' `seq`s.
   */
  insert(table: string, rows: number, notify?: boolean, returnSeqs?: boolean): string;
  /**
   * When set, a statement that inserts `rows` (values in the order of
   * `insert`'s columns) and then COMMITs the open transaction, so the outbox
   * write rides in the transaction's COMMIT round trip; undefined when it
   * cannot for these rows. Same `notify` and `returnSeqs` as `insert`. A
   * `script` is parameterless, for the driver itself (several statements;
   * the INSERT's result first); otherwise it is one statement for the query
   * runner, whose first result set holds the seqs. A `prepared` one is sent
   * as a prepared statement where the driver can (mysql2's `execute`): its
   * parameters travel as they are, not escaped into the SQL text.
   */
  insertAndCommit?(
    table: string,
    rows: ReadonlyArray<ReadonlyArray<string | number | null>>,
    notify?: boolean,
    returnSeqs?: boolean,
  ): (Statement & { script: boolean; prepared?: boolean }) | undefined;
  /** True when `insert` can return the sequences it assigned (PostgreSQL's RETURNING). */
  returnsSeqs?: boolean;
  /** True when `insert` takes one array parameter per column instead of one parameter per value. */
  columnar?: boolean;
  /**
   * Claim up to `limit` rows in sequence order, skipping rows another relay
   * holds; with `upTo`, only rows whose sequence is at most that; never the
   * rows `except` names (those this process is relaying from memory).
   */
  claim(table: string, limit: number, upTo?: string, except?: readonly string[]): Statement;
  /** The newest sequence in the outbox (`seq`, decimal text), or NULL when it is empty. */
  newestSeq(table: string): string;
  /**
   * True when `claim` also deletes the rows it returns (`DELETE … RETURNING`):
   * the delete then commits only with the transaction, after Redis
   * acknowledged the jobs, and `delete` is not needed.
   */
  claimDeletes?: boolean;
  /**
   * When set, the relay opens its claim transaction and claims (and deletes,
   * `claimDeletes`) up to `batchSize` rows in ONE round trip: a parameterless
   * multi-statement script beginning with BEGIN, whose last statement returns
   * the rows. The relay COMMITs after Redis acknowledged the jobs.
   */
  claimScript?(table: string, batchSize: number, upTo?: string, except?: readonly string[]): string;
  /**
   * Isolation of the relay's claim transaction, when the engine's default is
   * wrong for it. MySQL/MariaDB: READ COMMITTED, because under REPEATABLE
   * READ the locking claim also takes gap locks, so two relays deadlock and
   * the application's outbox INSERTs wait for a relay's Redis round trip.
   */
  claimIsolation?: 'READ COMMITTED';
  /** Delete the claimed rows by sequence (`seqs` ascending, as `claim` returns them). */
  delete(table: string, seqs: readonly string[]): Statement;
  /**
   * When set, deletes rows by sequence in a transaction of its own that does
   * not wait for its commit to be durable: a parameterless script, one round
   * trip. Only for rows whose jobs Redis holds: losing that commit in a crash
   * only has them relayed again.
   */
  deleteScript?(table: string, seqs: readonly string[]): string;
  /** The channel `insert` notifies, for relays that LISTEN (PostgreSQL only). */
  channel?: string;
}

/** Everything that differs between the engines lives behind this. */
export interface Dialect {
  readonly name: DialectName;
  quoteIdentifier(name: string): string;
  /** Quotes a possibly schema-qualified `schema.table` path. */
  quoteTable(path: string): string;
  /** Placeholder for the 1-based parameter `index`. */
  placeholder(index: number): string;
  readonly outbox: OutboxSql;
  readonly apply: ApplySql;
}

/** A column of a target table, as the target database describes it. */
export interface TargetColumn {
  name: string;
  /** The engine's full type, e.g. `numeric(10,2)`, `timestamp with time zone`, `varchar(20)`. */
  sqlType: string;
  nullable: boolean;
  /**
   * The column's collation compares 'a' and 'A' (or 'e' and 'é') as equal, as
   * MariaDB's default `_ci` collations do. In a key column that merges rows a
   * case-sensitive primary keeps apart.
   */
  foldsCase?: boolean;
}

/** A statement and its parameters, ready for `queryRunner.query`. */
export interface Statement {
  sql: string;
  params: unknown[];
}

/** One ledger row: the newest version applied (or deleted) for a key. */
export interface LedgerEntry {
  entity: string;
  key: string;
  version: string;
  deleted: boolean;
}

/**
 * SQL for applying changes to a target. Every builder takes values already
 * decoded for this engine (see `decodeValue`) and builds ONE statement for
 * many rows.
 */
export interface ApplySql {
  /**
   * Isolation of the apply transaction, when the engine's default is wrong
   * for it. MySQL/MariaDB: READ COMMITTED, so every read sees the newest
   * committed ledger (the upsert has locked the rows it read back), and no
   * gap locks make concurrent appliers of neighbouring keys deadlock.
   */
  isolation?: 'READ COMMITTED';
  /** Columns of `table` in the current database/schema; empty when the table does not exist. */
  describeTable(table: string): Statement;
  /** Maps one row of `describeTable`'s result to a TargetColumn. */
  readColumn(row: Record<string, unknown>): TargetColumn;
  /**
   * Raises each ledger row to the given version where that version is newer,
   * inserting missing rows, and locks them for the transaction. Rows must be
   * given in ascending (entity, key) order so concurrent appliers cannot
   * deadlock. On PostgreSQL the statement returns `key` of each row whose
   * version won; on MySQL it returns nothing and `ledgerRead` follows.
   */
  ledgerUpsert(ledgerTable: string, entries: readonly LedgerEntry[]): Statement;
  /**
   * MySQL: the ledger rows of these keys after `ledgerUpsert` (rows `key`,
   * `version`, and `prior`: the version the upsert found), read in the
   * apply's `isolation`. A change won when `version` is its version and
   * `prior` is lower.
   */
  ledgerRead?(ledgerTable: string, entity: string, keys: readonly string[]): Statement;
  /**
   * MySQL: the winning keys when `ledgerUpsert`'s own result already tells
   * them (no entry met an existing ledger row, so every one was inserted and
   * won), sparing `ledgerRead`; undefined when it does not.
   */
  ledgerUpsertWinners?(result: unknown, entries: readonly LedgerEntry[]): string[] | undefined;
  /** Multi-row upsert of full rows; `columns` includes the key columns. */
  upsertRows(
    table: string,
    columns: readonly TargetColumn[],
    keyColumns: readonly string[],
    rows: readonly unknown[][],
  ): Statement;
  /** Deletes the rows with these keys (`keys[i]` holds the key column values in `keyColumns` order). */
  deleteRows(table: string, keyColumns: readonly TargetColumn[], keys: readonly unknown[][]): Statement;
  /** Removes tombstones older than `$1`/`?` seconds. */
  purgeTombstones(ledgerTable: string, olderThanSeconds: number): Statement;
  /**
   * PostgreSQL: `ledgerUpsert` and `upsertRows` of one entity in ONE
   * statement (a data-modifying CTE), atomic on its own: each row is written
   * only where its ledger entry won. Each row carries its ledger key. Only
   * for upserts: INSERT … ON CONFLICT acts on the newest committed row even
   * when it is newer than the statement's snapshot, a DELETE does not (it
   * would miss a row a concurrent applier committed while the ledger upsert
   * waited for its lock). Returns `key` of each winner.
   */
  applyStatement?(
    ledgerTable: string,
    table: string,
    columns: readonly TargetColumn[],
    keyColumns: readonly string[],
    entries: readonly LedgerEntry[],
    upserts: ReadonlyArray<{ key: string; values: unknown[] }>,
  ): Statement;
}
