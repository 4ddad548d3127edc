import { requireKeys, requireRows } from '../apply-sql-guards';
import type { ApplySql, LedgerEntry, Statement, TargetColumn } from '../dialect';
import { quoteIdentifier, quoteTable } from './mysql-quoting';

/** The ledger guard; every ON DUPLICATE KEY assignment repeats it. */
const NEWER = 'VALUES(version) > version';

/**
 * Apply-side SQL for MySQL and MariaDB targets: multi-row VALUES lists with
 * `?` placeholders (mysql2 interpolates them client-side, so there is no
 * prepared-statement placeholder limit).
 */
export const mysqlApplySql: ApplySql = {
  isolation: 'READ COMMITTED',

  describeTable(table: string): Statement {
    const [schema, name] = splitPath(table);
    // Generated columns cannot be written. MySQL 8 also reports plain
    // expression defaults as "DEFAULT_GENERATED", which must stay.
    return {
      sql:
        'SELECT COLUMN_NAME AS name, COLUMN_TYPE AS sql_type, IS_NULLABLE AS nullable, COLLATION_NAME AS collation_name ' +
        'FROM information_schema.columns WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? ' +
        "AND EXTRA NOT LIKE '%VIRTUAL GENERATED%' AND EXTRA NOT LIKE '%STORED GENERATED%' " +
        'ORDER BY ORDINAL_POSITION',
      params: [schema, name],
    };
  },

  readColumn(row: Record<string, unknown>): TargetColumn {
    const collation = typeof row.collation_name === 'string' ? row.collation_name : '';
    // `_ci` (case-insensitive) and `_ai` (accent-insensitive) collations fold; `_bin` and `_cs` do not.
    const foldsCase = /_(ci|ai)(_|$)/.test(collation);
    return { name: String(row.name), sqlType: String(row.sql_type), nullable: String(row.nullable) === 'YES', foldsCase };
  },

  ledgerUpsert(ledgerTable: string, entries: readonly LedgerEntry[]): Statement {
    requireRows(entries.length, 'ledgerUpsert');
    // ON DUPLICATE KEY UPDATE has no WHERE, and assignments run left to
    // right, each seeing the columns already assigned: `version` goes last,
    // or the guard of every later column compares against the new version
    // and silently keeps the old values (DESIGN §4). `prior_version` goes
    // FIRST, so it records the version this statement found: the caller
    // tells a win (prior < mine) from a redelivery of the stored version.
    return {
      sql:
        `INSERT INTO ${quoteTable(ledgerTable)} (entity, row_key, version, deleted, prior_version, updated_at) VALUES ` +
        entries.map(() => '(?, ?, ?, ?, 0, CURRENT_TIMESTAMP(3))').join(', ') +
        ` ON DUPLICATE KEY UPDATE prior_version = version, deleted = IF(${NEWER}, VALUES(deleted), deleted), ` +
        `updated_at = IF(${NEWER}, VALUES(updated_at), updated_at), ` +
        `version = IF(${NEWER}, VALUES(version), version)`,
      params: entries.flatMap((e) => [e.entity, e.key, e.version, e.deleted ? 1 : 0]),
    };
  },

  ledgerRead(ledgerTable: string, entity: string, keys: readonly string[]): Statement {
    requireRows(keys.length, 'ledgerRead');
    // CAST: a bigint version must reach JS as an exact string whatever the driver's number options.
    // No FOR UPDATE: `ledgerUpsert` already holds every one of these rows,
    // and under the apply's READ COMMITTED a plain read sees the newest
    // committed state plus this transaction's own writes (under REPEATABLE
    // READ it would see an older snapshot). A locking read would also lock,
    // and wait on, the index record after each key: another applier's row.
    return {
      sql:
        `SELECT row_key AS \`key\`, CAST(version AS CHAR) AS version, CAST(prior_version AS CHAR) AS prior ` +
        `FROM ${quoteTable(ledgerTable)} WHERE entity = ? AND row_key IN (${placeholders(keys.length)})`,
      params: [entity, ...keys],
    };
  },

  ledgerUpsertWinners(result: unknown, entries: readonly LedgerEntry[]): string[] | undefined {
    // A multi-row INSERT reports "Records: n  Duplicates: d  Warnings: w";
    // d counts the rows that met an existing key. A single-row one reports
    // nothing, and its affected-row count cannot tell an insert from an
    // unchanged row (mysql2 asks for found rows).
    const info = (result as { info?: unknown } | null)?.info;
    if (entries.length < 2 || typeof info !== 'string' || !/\bDuplicates: 0\b/.test(info)) return undefined;
    return entries.map((e) => e.key);
  },

  upsertRows(table, columns, keyColumns, rows): Statement {
    requireRows(rows.length, 'upsertRows');
    requireKeys(columns, keyColumns);
    const keys = new Set(keyColumns);
    const updates = columns.filter((c) => !keys.has(c.name)).map((c) => quoteIdentifier(c.name));
    // Every non-key column is assigned, even when unchanged: a column left
    // out would let MariaDB's ON UPDATE CURRENT_TIMESTAMP rewrite it. With
    // only key columns, a self-assignment keeps the statement an upsert
    // without INSERT IGNORE, which would also swallow real errors.
    const assignments = updates.length ? updates : [quoteIdentifier(keyColumns[0])];
    const row = `(${placeholders(columns.length)})`;
    return {
      sql:
        `INSERT INTO ${quoteTable(table)} (${columns.map((c) => quoteIdentifier(c.name)).join(', ')}) VALUES ` +
        rows.map(() => row).join(', ') +
        ` ON DUPLICATE KEY UPDATE ${assignments.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
      params: flatten(rows, columns.length),
    };
  },

  deleteRows(table, keyColumns, keys): Statement {
    requireRows(keys.length, 'deleteRows');
    const names = keyColumns.map((c) => quoteIdentifier(c.name));
    const single = names.length === 1;
    const tuple = single ? names[0] : `(${names.join(', ')})`;
    const item = single ? '?' : `(${placeholders(names.length)})`;
    return {
      sql: `DELETE FROM ${quoteTable(table)} WHERE ${tuple} IN (${keys.map(() => item).join(', ')})`,
      params: flatten(keys, names.length),
    };
  },

  purgeTombstones(ledgerTable: string, olderThanSeconds: number): Statement {
    return {
      sql: `DELETE FROM ${quoteTable(ledgerTable)} WHERE deleted = 1 AND updated_at < CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND`,
      params: [olderThanSeconds],
    };
  },
};

function splitPath(path: string): [string | null, string] {
  const parts = path.split('.');
  return parts.length === 2 ? [parts[0], parts[1]] : [null, path];
}

function placeholders(count: number): string {
  return new Array<string>(count).fill('?').join(', ');
}

function flatten(rows: readonly unknown[][], width: number): unknown[] {
  return rows.flatMap((row, r) => {
    if (row.length !== width) throw new RangeError(`Row ${r} has ${row.length} values; expected ${width}.`);
    return row;
  });
}
