import { requireKeys, requireRows } from '../apply-sql-guards';
import type { ApplySql, LedgerEntry, Statement, TargetColumn } from '../dialect';
import { quoteIdentifier, quoteTable } from './postgres-quoting';

/**
 * Apply-side SQL for PostgreSQL targets. Rows travel as one array parameter
 * per column and are expanded with `unnest`: the statement text depends only
 * on the column set, never on the row count, and it runs ~3× faster than a
 * multi-row VALUES list (DESIGN §5).
 */
export const postgresApplySql: ApplySql = {
  describeTable(table: string): Statement {
    const [schema, name] = splitPath(table);
    // Generated columns cannot be written, so the apply must never see them.
    return {
      sql:
        'SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type, NOT a.attnotnull AS nullable ' +
        'FROM pg_catalog.pg_attribute a ' +
        'JOIN pg_catalog.pg_class c ON c.oid = a.attrelid ' +
        'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ' +
        "WHERE c.relname = $1 AND n.nspname = COALESCE($2::name, current_schema()) AND c.relkind IN ('r', 'p') " +
        "AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' " +
        'ORDER BY a.attnum',
      params: [name, schema],
    };
  },

  readColumn(row: Record<string, unknown>): TargetColumn {
    return { name: String(row.name), sqlType: String(row.sql_type), nullable: row.nullable === true };
  },

  ledgerUpsert(ledgerTable: string, entries: readonly LedgerEntry[]): Statement {
    requireRows(entries.length, 'ledgerUpsert');
    // WITH ORDINALITY … ORDER BY pins the lock order to the caller's sort.
    // A row whose guard fails is still locked by ON CONFLICT DO UPDATE, which
    // is what serializes concurrent appliers of the same key. One key may
    // appear once per statement (PostgreSQL refuses to update a row twice).
    return {
      sql:
        `INSERT INTO ${quoteTable(ledgerTable)} AS l (entity, row_key, version, deleted, updated_at) ` +
        'SELECT e, k, v, d, now() FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[]) ' +
        'WITH ORDINALITY AS u(e, k, v, d, n) ORDER BY n ' +
        'ON CONFLICT (entity, row_key) DO UPDATE SET version = EXCLUDED.version, deleted = EXCLUDED.deleted, ' +
        'updated_at = now() WHERE l.version < EXCLUDED.version RETURNING l.entity, l.row_key AS key',
      params: [
        entries.map((e) => e.entity),
        entries.map((e) => e.key),
        entries.map((e) => e.version),
        entries.map((e) => e.deleted),
      ],
    };
  },

  upsertRows(table, columns, keyColumns, rows): Statement {
    requireRows(rows.length, 'upsertRows');
    requireKeys(columns, keyColumns);
    const keys = new Set(keyColumns);
    const updates = columns.filter((c) => !keys.has(c.name));
    const conflict = updates.length
      ? `DO UPDATE SET ${updates.map((c) => `${quoteIdentifier(c.name)} = EXCLUDED.${quoteIdentifier(c.name)}`).join(', ')}`
      : 'DO NOTHING';
    // OVERRIDING SYSTEM VALUE: the target must keep the primary's key even
    // where it is a GENERATED ALWAYS identity; without identity it is a no-op.
    return {
      sql:
        `INSERT INTO ${quoteTable(table)} (${columns.map((c) => quoteIdentifier(c.name)).join(', ')}) ` +
        `OVERRIDING SYSTEM VALUE ${unnestSelect(columns)} ` +
        `ON CONFLICT (${keyColumns.map(quoteIdentifier).join(', ')}) ${conflict}`,
      params: columnMajor(rows, columns.length),
    };
  },

  deleteRows(table, keyColumns, keys): Statement {
    requireRows(keys.length, 'deleteRows');
    const names = keyColumns.map((c) => quoteIdentifier(c.name));
    const tuple = names.length === 1 ? names[0] : `(${names.join(', ')})`;
    return {
      sql: `DELETE FROM ${quoteTable(table)} WHERE ${tuple} IN (${unnestSelect(keyColumns)})`,
      params: columnMajor(keys, keyColumns.length),
    };
  },

  applyStatement(ledgerTable, table, columns, keyColumns, entries, upserts): Statement {
    requireRows(upserts.length, 'applyStatement');
    const ledger = postgresApplySql.ledgerUpsert(ledgerTable, entries);
    // Each row's ledger key travels next to it, so only the winners' rows are written.
    const all = [...columns, LEDGER_KEY];
    const params = [...ledger.params, ...columnMajor(upserts.map((u) => [...u.values, u.key]), all.length)];
    const names = columns.map((c) => quoteIdentifier(c.name));
    const upsert = postgresApplySql.upsertRows(table, columns, keyColumns, [upserts[0].values]).sql;
    const conflict = upsert.slice(upsert.indexOf(' ON CONFLICT '));
    return {
      sql:
        `WITH won AS (${ledger.sql}), ` +
        `put AS (INSERT INTO ${quoteTable(table)} (${names.join(', ')}) OVERRIDING SYSTEM VALUE ` +
        `SELECT ${names.join(', ')} FROM (${unnestSelect(all, ledger.params.length)}) AS u(${[...names, quoteIdentifier(LEDGER_KEY.name)].join(', ')}) ` +
        `WHERE u.${quoteIdentifier(LEDGER_KEY.name)} IN (SELECT key FROM won)${conflict} RETURNING 1) ` +
        // A data-modifying CTE runs to completion whether or not the final SELECT reads it.
        'SELECT key FROM won',
      params,
    };
  },

  purgeTombstones(ledgerTable: string, olderThanSeconds: number): Statement {
    return {
      sql: `DELETE FROM ${quoteTable(ledgerTable)} WHERE deleted AND updated_at < now() - make_interval(secs => $1)`,
      params: [olderThanSeconds],
    };
  },
};

/** The ledger key column `applyStatement` adds to the rows it writes (not a column of the table). */
const LEDGER_KEY: TargetColumn = { name: 'dualwrite_ledger_key', sqlType: 'text', nullable: false };

/**
 * `SELECT … FROM unnest($1::t1[], …)` producing the columns in order
 * (parameters numbered after `firstParam`). A column
 * whose own type is an array cannot travel that way (unnest flattens a
 * two-dimensional array into scalars), so it is sent as `text[]` holding
 * array literals and cast back per row.
 */
function unnestSelect(columns: readonly TargetColumn[], firstParam = 0): string {
  const types = columns.map((c) => unconstrainedType(c.sqlType));
  const isArray = types.map((t) => t.endsWith(']'));
  const args = types.map((t, i) => `$${firstParam + i + 1}::${isArray[i] ? 'text' : t}[]`).join(', ');
  if (!isArray.includes(true)) return `SELECT * FROM unnest(${args})`;
  const aliases = columns.map((_, i) => `c${i + 1}`);
  const list = aliases.map((a, i) => (isArray[i] ? `${a}::${types[i]}` : a)).join(', ');
  return `SELECT ${list} FROM unnest(${args}) AS u(${aliases.join(', ')})`;
}

/**
 * The type without its length/precision modifiers. An explicit cast to
 * `varchar(3)` or `bit(3)` silently truncates or pads, where the INSERT's
 * own assignment to the column raises an error; the apply must fail loudly
 * rather than store a different value, so the modifiers are left to the
 * column. Quoted parts (user type names) are left alone.
 */
function unconstrainedType(sqlType: string): string {
  const stripped = sqlType
    .split(/("(?:[^"]|"")*")/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/\s*\(\s*\d+\s*(?:,\s*-?\d+\s*)?\)/g, '')))
    .join('')
    .trim();
  // Without a modifier these names mean char(1) and bit(1); these spellings mean "any length".
  const base = stripped.replace(/(\[\])+$/, '');
  const suffix = stripped.slice(base.length);
  if (base === 'character') return `bpchar${suffix}`;
  if (base === 'bit') return `"bit"${suffix}`;
  if (base.startsWith('interval')) return `interval${suffix}`;
  return stripped;
}

function splitPath(path: string): [string | null, string] {
  const parts = path.split('.');
  return parts.length === 2 ? [parts[0], parts[1]] : [null, path];
}

function columnMajor(rows: readonly unknown[][], width: number): unknown[][] {
  const out: unknown[][] = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  rows.forEach((row, r) => {
    if (row.length !== width) throw new RangeError(`Row ${r} has ${row.length} values; expected ${width}.`);
    row.forEach((value, c) => (out[c][r] = value));
  });
  return out;
}
