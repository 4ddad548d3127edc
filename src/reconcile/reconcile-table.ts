import type { DataSource, QueryRunner } from 'typeorm';
import { describeTargetTable, type TargetTable } from '../apply/target-table';
import { decodeValue } from '../apply/value-decoder';
import type { ChecksumColumn, ChecksumSql, ChecksumTable, ColumnFacts } from '../dialect/checksum-sql';
import type { Dialect } from '../dialect/dialect';
import { DualWriteError } from '../errors/dual-write-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import { encodeValue } from '../outbox/value-codec';
import { checksumSqlFor } from './checksum-sql-for';
import { planColumn, type PlannedColumn } from './column-plan';

/** One side (primary or target) of a reconciled table. */
export interface Side {
  readonly role: 'primary' | 'target';
  readonly dataSource: DataSource;
  readonly dialect: Dialect;
  readonly sql: ChecksumSql;
  /** The table as this side's checksum SQL sees it. */
  readonly table: ChecksumTable;
  /** This engine's parameters for a key given as wire strings. */
  keyParams(key: readonly string[]): unknown[];
  /** The wire key of a result row holding `k0`, `k1`, …. */
  keyOfRow(row: Record<string, unknown>): string[];
}

/** An entity in one target: both sides, and how each column is compared. */
export interface ReconcileTable {
  readonly entity: ReplicatedEntity;
  readonly target: string;
  readonly columns: readonly PlannedColumn[];
  readonly keys: readonly PlannedColumn[];
  /** Columns compared in Node (JSON and the like), not in the SQL hash. */
  readonly nodeColumns: readonly PlannedColumn[];
  /** How rows are written to and read from the target table (the apply's mapping). */
  readonly targetTable: TargetTable;
  readonly primary: Side;
  readonly targetSide: Side;
}

/**
 * Describes an entity's table on the primary and in a target, and plans the
 * comparison of every replicated column. Fails with the apply's own errors
 * (`TARGET_TABLE_MISSING`, `TARGET_COLUMN_MISSING`) when the target table
 * does not fit.
 */
export async function describeReconcileTable(
  entity: ReplicatedEntity,
  target: string,
  primary: { queryRunner: QueryRunner; dataSource: DataSource; dialect: Dialect },
  targetSide: { queryRunner: QueryRunner; dataSource: DataSource; dialect: Dialect },
): Promise<ReconcileTable> {
  const targetTable = await describeTargetTable(targetSide.queryRunner, targetSide.dialect, entity, target);
  const primaryFacts = await describe(primary.queryRunner, checksumSqlFor(primary.dialect), entity.tablePath);
  const targetFacts = await describe(targetSide.queryRunner, checksumSqlFor(targetSide.dialect), targetTable.table);
  const engines = { primary: primary.dialect.name, target: targetSide.dialect.name };
  const columns = targetTable.columns.map(({ source, target: column }) => {
    const p = primaryFacts.get(source.databaseName);
    const t = targetFacts.get(column.name);
    if (!p || !t) {
      throw new DualWriteError(
        'TARGET_COLUMN_MISSING',
        `Reconciling ${entity.name} with target "${target}": column "${p ? column.name : source.databaseName}" is missing from ` +
          `${p ? `the target table "${targetTable.table}"` : `the primary table "${entity.tablePath}"`}.`,
        { entity: entity.name, target, column: p ? column.name : source.databaseName },
      );
    }
    return planColumn(source, p, t, engines);
  });
  const keys = entity.primaryColumns.map((pc) => columns.find((c) => c.source === pc)!);
  // The row text puts strings last, so that the very last one needs no length prefix.
  const strings = columns.filter((c) => c.norm.as === 'string');
  const textOrder = [...columns.filter((c) => c.norm.as !== 'string'), ...strings];
  const lastString = strings[strings.length - 1];
  const side = (role: 'primary' | 'target', dataSource: DataSource, dialect: Dialect): Side => {
    const facts = (c: PlannedColumn): ColumnFacts => (role === 'primary' ? c.primary : c.target);
    const checksumColumn = (c: PlannedColumn): ChecksumColumn => ({ facts: facts(c), norm: c.norm, nullBit: c.nullBit, lastString: c === lastString });
    const mysql = dialect.name === 'mysql';
    return {
      role,
      dataSource,
      dialect,
      sql: checksumSqlFor(dialect),
      table: {
        table: role === 'primary' ? entity.tablePath : targetTable.table,
        keys: keys.map(checksumColumn),
        columns: textOrder.map(checksumColumn),
      },
      keyParams: (key) => keys.map((c, i) => keyParam(c, facts(c), key[i], dialect)),
      keyOfRow: (row) => keys.map((c, i) => String(encodeValue(c.source.kind, row[`k${i}`], mysql))),
    };
  };
  return {
    entity,
    target,
    columns,
    keys,
    nodeColumns: columns.filter((c) => c.norm.as === 'none'),
    targetTable,
    primary: side('primary', primary.dataSource, primary.dialect),
    targetSide: side('target', targetSide.dataSource, targetSide.dialect),
  };
}

async function describe(queryRunner: QueryRunner, sql: ChecksumSql, table: string): Promise<Map<string, ColumnFacts>> {
  const statement = sql.describeColumns(table);
  const rows = (await queryRunner.query(statement.sql, statement.params)) as Record<string, unknown>[];
  return new Map(rows.map((row) => sql.readColumn(row)).map((facts) => [facts.name, facts]));
}

/**
 * A key value as a parameter compared with the key column. MySQL compares an
 * integer column with a string as doubles, so integers go as BigInt there;
 * PostgreSQL parses the text exactly.
 */
function keyParam(column: PlannedColumn, facts: ColumnFacts, value: string, dialect: Dialect): unknown {
  const kind = column.source.kind;
  if ((kind === 'integer' || kind === 'bigint') && /^-?\d+$/.test(value)) return dialect.name === 'mysql' ? BigInt(value) : value;
  return decodeValue(kind, value, dialect.name, facts.sqlType);
}
