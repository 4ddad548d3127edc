import type { DataSource, QueryRunner } from 'typeorm';
import { LEDGER_TABLE } from '../../migrations/table-names';
import type { Dialect, LedgerEntry } from '../dialect/dialect';
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

  constructor(
    readonly target: string,
    private readonly dataSource: DataSource,
    private readonly dialect: Dialect,
    private readonly entities: ReadonlyMap<string, ReplicatedEntity>,
    private readonly logger: Logger,
  ) {}

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
    let skipped = changes.length - [...byEntity.values()].reduce((n, m) => n + m.size, 0);
    let applied = 0;
    const queryRunner = this.dataSource.createQueryRunner('master');
    try {
      await queryRunner.connect();
      const tables = new Map<string, TargetTable>();
      for (const name of [...byEntity.keys()].sort()) tables.set(name, await this.table(queryRunner, name));
      await queryRunner.startTransaction(this.dialect.apply.isolation);
      for (const name of [...byEntity.keys()].sort()) {
        const outcome = await this.applyEntity(queryRunner, this.entities.get(name)!, tables.get(name)!, byEntity.get(name)!);
        applied += outcome.applied;
        skipped += outcome.skipped;
      }
      await queryRunner.commitTransaction();
      return { applied, skipped };
    } catch (error) {
      if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
      // The failure may be a target table that changed under us (a column added or retyped to fix a dead
      // letter): describe the tables again next time instead of building SQL from stale column types.
      this.tables.clear();
      throw error;
    } finally {
      await queryRunner.release().catch(() => undefined);
    }
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
    const entries: LedgerEntry[] = keys.map((key) => {
      const change = changes.get(key)!;
      return { entity: entity.name, key, version: change.version, deleted: change.op === 'delete' };
    });
    const sql = this.dialect.apply;
    if (sql.applyStatement && !hasDeletes(changes)) {
      // PostgreSQL: ledger and upserts in one statement (its arrays take any number of rows).
      const upserts = keys.map((key) => ({ key, values: this.rowValues(entity, table, changes.get(key)!) }));
      const statement = sql.applyStatement(LEDGER_TABLE, table.table, table.columns.map((c) => c.target), table.keyColumns.map((c) => c.name), entries, upserts);
      const won = (await queryRunner.query(statement.sql, statement.params)) as unknown[];
      return { applied: won.length, skipped: keys.length - won.length };
    }
    const winners = await this.raiseLedger(queryRunner, entity.name, entries);
    const upserts: unknown[][] = [];
    const deletes: unknown[][] = [];
    for (const key of keys) {
      if (!winners.has(key)) continue;
      const change = changes.get(key)!;
      if (change.op === 'delete') deletes.push(this.keyValues(table, change));
      else upserts.push(this.rowValues(entity, table, change));
    }
    for (const chunk of chunks(deletes, table.keyColumns.length)) {
      const statement = sql.deleteRows(table.table, table.keyColumns, chunk);
      await queryRunner.query(statement.sql, statement.params);
    }
    const columns = table.columns.map((c) => c.target);
    const keyNames = table.keyColumns.map((c) => c.name);
    for (const chunk of chunks(upserts, columns.length)) {
      const statement = sql.upsertRows(table.table, columns, keyNames, chunk);
      await queryRunner.query(statement.sql, statement.params);
    }
    return { applied: winners.size, skipped: keys.length - winners.size };
  }

  /** Raises the ledger; returns the keys whose change is newer than what the target has. */
  private async raiseLedger(queryRunner: QueryRunner, entity: string, entries: LedgerEntry[]): Promise<Set<string>> {
    const winners = new Set<string>();
    for (const chunk of chunks(entries, 4)) {
      const upsert = this.dialect.apply.ledgerUpsert(LEDGER_TABLE, chunk);
      const returned = (await queryRunner.query(upsert.sql, upsert.params)) as Array<{ key: string }> | unknown;
      if (this.dialect.apply.ledgerRead) {
        const known = this.dialect.apply.ledgerUpsertWinners?.(returned, chunk);
        if (known) {
          for (const key of known) winners.add(key);
          continue;
        }
        const read = this.dialect.apply.ledgerRead(LEDGER_TABLE, entity, chunk.map((e) => e.key));
        const rows = (await queryRunner.query(read.sql, read.params)) as Array<{ key: string; version: string; prior: string }>;
        const wanted = new Map(chunk.map((e) => [e.key, e.version]));
        for (const row of rows) {
          const mine = wanted.get(row.key);
          if (mine === String(row.version) && BigInt(row.prior) < BigInt(mine)) winners.add(row.key);
        }
      } else {
        for (const row of returned as Array<{ key: string }>) winners.add(row.key);
      }
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
