import type { DataSource, QueryRunner } from 'typeorm';
import { LEDGER_TABLE } from '../../migrations/table-names';
import type { Dialect, LedgerEntry, Statement } from '../dialect/dialect';
import { DriverConnections } from '../dialect/driver-connections';
import { DualWriteError } from '../errors/dual-write-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { Logger } from '../observability/logger';
import { keyString, type Change } from '../outbox/change';
import { describeTargetTable, type TargetTable } from './target-table';
import { decodeValue } from './value-decoder';

/** What one apply did. */
export interface ApplyOutcome {
  /** Changes written to the target. */
  applied: number;
  /** Changes skipped: a newer (or the same) version was already applied. */
  skipped: number;
}

/** MySQL's prepared statements take at most 65,535 placeholders. */
const MAX_PARAMS = 60_000;

/**
 * Applies batches of changes to ONE target: per entity, the ledger rows are
 * raised to each change's version where it is newer (locking them, in key
 * order), and only the changes that won are written, all in one target
 * transaction. A stale or duplicate change therefore never overwrites a newer
 * one, whatever order or how often changes arrive.
 */
export class ChangeApplier {
  private readonly tables = new Map<string, TargetTable>();
  /** Entities already warned about a case-folding key collation in this target. */
  private readonly warnedFolding = new Set<string>();
  /** The target's max_allowed_packet (MySQL/MariaDB), read the first time a change may exceed it. */
  private maxPacket?: number;
  /** MySQL/MariaDB: connections of the applier's own (see `applyOnOwnConnection`); `close()` ends them. */
  private readonly connections?: DriverConnections;

  /** `connections`: how many of its own a MySQL/MariaDB target's applier may open (the jobs it applies at once). */
  constructor(
    readonly target: string,
    private readonly dataSource: DataSource,
    private readonly dialect: Dialect,
    private readonly entities: ReadonlyMap<string, ReplicatedEntity>,
    private readonly logger: Logger,
    connections = 2,
  ) {
    if (dialect.name === 'mysql') this.connections = new DriverConnections(dataSource, 'mysql', connections);
  }

  /** Whether the target answers a trivial query now (on a fresh or pooled connection). */
  async reachable(): Promise<boolean> {
    try {
      await this.dataSource.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Why a change can never reach this target in one statement, if so: on
   * MySQL/MariaDB a row larger than the server's `max_allowed_packet`. The
   * server closes the connection of such a statement, so the client often
   * sees only a reset connection (ECONNRESET), not ER_NET_PACKET_TOO_LARGE.
   */
  async tooLarge(change: Change): Promise<string | undefined> {
    if (this.dialect.name !== 'mysql' || change.row === null) return undefined;
    if (this.maxPacket === undefined) {
      const [row] = (await this.dataSource.query('SELECT @@max_allowed_packet AS max')) as Array<{ max: number | string }>;
      this.maxPacket = Number(row.max);
    }
    const bytes = Buffer.byteLength(JSON.stringify(change.row), 'utf8');
    if (bytes <= this.maxPacket) return undefined;
    return (
      `The row of ${change.entity} ${JSON.stringify(change.key)} takes ${bytes} bytes, more than target "${this.target}"'s max_allowed_packet ` +
      `(${this.maxPacket} bytes); the server closed the connection of the statement carrying it. ` +
      `Raise max_allowed_packet on the target server, then replay; or keep such values out (@NotReplicated).`
    );
  }

  async apply(changes: readonly Change[]): Promise<ApplyOutcome> {
    const byEntity = newestPerKey(changes);
    const superseded = changes.length - [...byEntity.values()].reduce((n, m) => n + m.size, 0);
    const names = [...byEntity.keys()].sort();
    try {
      const tables = await this.describe(names);
      const outcome = this.connections
        ? await this.applyOnOwnConnection(names, byEntity, tables, this.connections)
        : await this.applyInTransaction(names, byEntity, tables);
      return { applied: outcome.applied, skipped: superseded + outcome.skipped };
    } catch (error) {
      // The failure may be a target table that changed under us (a column added or retyped to fix a dead
      // letter): describe the tables again next time instead of building SQL from stale column types.
      this.tables.clear();
      throw error;
    }
  }

  /** Closes the applier's own connections (MySQL/MariaDB targets). */
  async close(): Promise<void> {
    await this.connections?.end();
  }

  /** The target tables of these entities, described once and cached. */
  private async describe(names: readonly string[]): Promise<Map<string, TargetTable>> {
    if (names.some((name) => !this.tables.has(name))) {
      const queryRunner = this.dataSource.createQueryRunner('master');
      try {
        await queryRunner.connect();
        for (const name of names) await this.table(queryRunner, name);
      } finally {
        await queryRunner.release().catch(() => undefined);
      }
    }
    return new Map(names.map((name) => [name, this.tables.get(name)!]));
  }

  /** The changes in one transaction on a connection of the DataSource's pool (PostgreSQL targets). */
  private async applyInTransaction(
    names: readonly string[],
    byEntity: ReadonlyMap<string, ReadonlyMap<string, Change>>,
    tables: ReadonlyMap<string, TargetTable>,
  ): Promise<ApplyOutcome> {
    const total: ApplyOutcome = { applied: 0, skipped: 0 };
    const queryRunner = this.dataSource.createQueryRunner('master');
    try {
      await queryRunner.connect();
      await queryRunner.startTransaction(this.dialect.apply.isolation);
      for (const name of names) {
        const outcome = await this.applyEntity(queryRunner, this.entities.get(name)!, tables.get(name)!, byEntity.get(name)!);
        total.applied += outcome.applied;
        total.skipped += outcome.skipped;
      }
      await queryRunner.commitTransaction();
      return total;
    } catch (error) {
      if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
      throw error;
    } finally {
      await queryRunner.release().catch(() => undefined);
    }
  }

  /**
   * The changes in one transaction on a connection of the applier's own
   * (MySQL/MariaDB targets), the same statements as `applyInTransaction` in
   * two round trips for a job of one entity: the transaction's start and the
   * ledger upsert in one; the winners' deletes and upserts with the COMMIT in
   * the other. A ledger read-back, when the upsert met existing rows, and
   * each further entity add one.
   */
  private async applyOnOwnConnection(
    names: readonly string[],
    byEntity: ReadonlyMap<string, ReadonlyMap<string, Change>>,
    tables: ReadonlyMap<string, TargetTable>,
    connections: DriverConnections,
  ): Promise<ApplyOutcome> {
    const sql = this.dialect.apply;
    const total: ApplyOutcome = { applied: 0, skipped: 0 };
    return connections.run(async (connection) => {
      let pending: Array<Omit<Statement, 'params'> & { params?: unknown[] }> = [
        ...(sql.isolation ? [{ sql: `SET TRANSACTION ISOLATION LEVEL ${sql.isolation}` }] : []),
        { sql: 'START TRANSACTION' },
      ];
      for (const name of names) {
        const entity = this.entities.get(name)!;
        const table = tables.get(name)!;
        const changes = byEntity.get(name)!;
        const keys = [...changes.keys()].sort(compareBinary);
        const ledger = [...chunks(this.ledgerEntries(entity, keys, changes), 4)];
        const upserted = await connection.queryAll([...pending, ...ledger.map((chunk) => sql.ledgerUpsert(LEDGER_TABLE, chunk))]);
        const winners = new Set<string>();
        // Read back only the chunks whose upsert met existing ledger rows (see `ledgerUpsertWinners`), in one more round trip.
        const toRead = ledger.filter((chunk, i) => {
          const known = sql.ledgerUpsertWinners?.(upserted[pending.length + i], chunk);
          known?.forEach((key) => winners.add(key));
          return !known;
        });
        if (toRead.length > 0) {
          const read = await connection.queryAll(toRead.map((chunk) => sql.ledgerRead!(LEDGER_TABLE, entity.name, chunk.map((e) => e.key))));
          toRead.forEach((chunk, i) => winnersOfRead(read[i] as LedgerReadRow[], chunk, winners));
        }
        pending = this.writes(table, entity, keys, changes, winners);
        total.applied += winners.size;
        total.skipped += keys.length - winners.size;
      }
      await connection.queryAll([...pending, { sql: 'COMMIT' }]);
      return total;
    });
  }

  private async table(queryRunner: QueryRunner, name: string): Promise<TargetTable> {
    const cached = this.tables.get(name);
    if (cached) return cached;
    const entity = this.entities.get(name);
    if (!entity) {
      throw new DualWriteError(
        'ENTITY_NOT_FOUND',
        `A change of entity "${name}" reached target "${this.target}", but this worker's config has no replicated entity of that name. ` +
          `Run the worker with the same entities (and @Replicate) as the application.`,
        { entity: name, target: this.target },
      );
    }
    const table = await describeTargetTable(queryRunner, this.dialect, entity, this.target);
    if (table.foldingKeyColumns.length > 0 && !this.warnedFolding.has(name)) {
      this.warnedFolding.add(name);
      this.logger.warn(
        { entity: name, target: this.target, columns: table.foldingKeyColumns },
        `Target "${this.target}" table "${table.table}" compares the key column(s) ${table.foldingKeyColumns.map((c) => `"${c}"`).join(', ')} of ${name} ` +
          `case-insensitively: if the primary keeps 'a' and 'A' apart (PostgreSQL, or a _bin collation), those rows merge into one here and the reconciler reports them on every run. ` +
          `Give the target's key column a binary collation (e.g. ALTER TABLE … MODIFY … COLLATE utf8mb4_bin), then run \`dualwrite reconcile --repair\`.`,
      );
    }
    this.tables.set(name, table);
    return table;
  }

  private async applyEntity(
    queryRunner: QueryRunner,
    entity: ReplicatedEntity,
    table: TargetTable,
    changes: ReadonlyMap<string, Change>,
  ): Promise<ApplyOutcome> {
    const keys = [...changes.keys()].sort(compareBinary);
    const entries = this.ledgerEntries(entity, keys, changes);
    const sql = this.dialect.apply;
    if (sql.applyStatement && !hasDeletes(changes)) {
      // PostgreSQL: ledger and upserts in one statement (its arrays take any number of rows).
      const upserts = keys.map((key) => ({ key, values: this.rowValues(entity, table, changes.get(key)!) }));
      const statement = sql.applyStatement(LEDGER_TABLE, table.table, table.columns.map((c) => c.target), table.keyColumns.map((c) => c.name), entries, upserts);
      const won = (await queryRunner.query(statement.sql, statement.params)) as unknown[];
      return { applied: won.length, skipped: keys.length - won.length };
    }
    const winners = await this.raiseLedger(queryRunner, entries);
    for (const statement of this.writes(table, entity, keys, changes, winners)) await queryRunner.query(statement.sql, statement.params);
    return { applied: winners.size, skipped: keys.length - winners.size };
  }

  /** The ledger entries of these changes, in the given (binary) key order. */
  private ledgerEntries(entity: ReplicatedEntity, keys: readonly string[], changes: ReadonlyMap<string, Change>): LedgerEntry[] {
    return keys.map((key) => {
      const change = changes.get(key)!;
      return { entity: entity.name, key, version: change.version, deleted: change.op === 'delete' };
    });
  }

  /** The deletes and upserts of the winning changes. */
  private writes(table: TargetTable, entity: ReplicatedEntity, keys: readonly string[], changes: ReadonlyMap<string, Change>, winners: ReadonlySet<string>): Statement[] {
    const upserts: unknown[][] = [];
    const deletes: unknown[][] = [];
    for (const key of keys) {
      if (!winners.has(key)) continue;
      const change = changes.get(key)!;
      if (change.op === 'delete') deletes.push(this.keyValues(table, change));
      else upserts.push(this.rowValues(entity, table, change));
    }
    const sql = this.dialect.apply;
    const statements: Statement[] = [];
    for (const chunk of chunks(deletes, table.keyColumns.length)) statements.push(sql.deleteRows(table.table, table.keyColumns, chunk));
    const columns = table.columns.map((c) => c.target);
    const keyNames = table.keyColumns.map((c) => c.name);
    for (const chunk of chunks(upserts, columns.length)) statements.push(sql.upsertRows(table.table, columns, keyNames, chunk));
    return statements;
  }

  /**
   * Raises the ledger (PostgreSQL: the upsert returns the winners); returns
   * the keys whose change is newer than what the target has.
   */
  private async raiseLedger(queryRunner: QueryRunner, entries: LedgerEntry[]): Promise<Set<string>> {
    const winners = new Set<string>();
    for (const chunk of chunks(entries, 4)) {
      const upsert = this.dialect.apply.ledgerUpsert(LEDGER_TABLE, chunk);
      for (const row of (await queryRunner.query(upsert.sql, upsert.params)) as Array<{ key: string }>) winners.add(row.key);
    }
    return winners;
  }

  private rowValues(entity: ReplicatedEntity, table: TargetTable, change: Change): unknown[] {
    const row = change.row;
    if (!row) {
      throw new DualWriteError('PAYLOAD_INVALID', `Change ${change.id} is an upsert without a row image.`, { entity: entity.name, target: this.target });
    }
    return table.columns.map(({ source, target }) =>
      decodeValue(source.kind, row[source.databaseName] ?? null, this.dialect.name, target.sqlType),
    );
  }

  private keyValues(table: TargetTable, change: Change): unknown[] {
    const pk = table.columns.filter((c) => c.source.isPrimary);
    return pk.map(({ source, target }, i) => decodeValue(source.kind, change.key[i], this.dialect.name, target.sqlType));
  }
}

/** A row of `ledgerRead` (MySQL/MariaDB). */
interface LedgerReadRow {
  key: string;
  version: string | number;
  prior: string | number;
}

/** Adds to `winners` the keys whose change won: the ledger holds its version now, and held an older one before. */
function winnersOfRead(rows: readonly LedgerReadRow[], entries: readonly LedgerEntry[], winners: Set<string>): void {
  const wanted = new Map(entries.map((e) => [e.key, e.version]));
  for (const row of rows) {
    const mine = wanted.get(row.key);
    if (mine === String(row.version) && BigInt(row.prior) < BigInt(mine)) winners.add(row.key);
  }
}

function hasDeletes(changes: ReadonlyMap<string, Change>): boolean {
  for (const change of changes.values()) if (change.op === 'delete') return true;
  return false;
}

/** The newest change of each row, per entity: older ones in the same batch are superseded. */
function newestPerKey(changes: readonly Change[]): Map<string, Map<string, Change>> {
  const byEntity = new Map<string, Map<string, Change>>();
  for (const change of changes) {
    let rows = byEntity.get(change.entity);
    if (!rows) byEntity.set(change.entity, (rows = new Map()));
    const key = keyString(change.key);
    const current = rows.get(key);
    if (!current || BigInt(current.version) < BigInt(change.version)) rows.set(key, change);
  }
  return byEntity;
}

/**
 * Byte order of UTF-8, as the ledger's binary collation sorts keys, so locks
 * are taken in one order everywhere. UTF-16 code units order like code
 * points (hence like UTF-8) except surrogates against U+E000–U+FFFF, so the
 * string comparison decides unless the first difference involves those.
 */
export function compareBinary(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 && y < 0xd800) return x - y;
    return Buffer.compare(Buffer.from(a), Buffer.from(b));
  }
  return a.length - b.length;
}

function* chunks<T>(items: readonly T[], paramsPerItem: number): Generator<T[]> {
  const size = Math.max(1, Math.min(5000, Math.floor(MAX_PARAMS / Math.max(1, paramsPerItem))));
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
