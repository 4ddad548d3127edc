import {
  integerThresholds,
  type ChecksumColumn,
  type ChecksumSql,
  type ChecksumTable,
  type ColumnFacts,
  type ColumnFamily,
  type KeyRange,
  type Normalization,
  type SessionLimits,
} from '../checksum-sql';
import type { Statement } from '../dialect';
import { quoteIdentifier, quoteTable } from './postgres-quoting';

/** libc collations whose order is byte order for UTF-8 text. */
const BYTE_ORDER_COLLATIONS = /^(C|POSIX|C\.UTF-?8|ucs_basic)$/i;

const FAMILY_BY_TYPE: Record<string, ColumnFamily> = {
  int2: 'integer', int4: 'integer', int8: 'integer',
  numeric: 'decimal', money: 'decimal',
  float4: 'float', float8: 'float',
  bool: 'boolean',
  varchar: 'string', text: 'string', bpchar: 'string', name: 'string', citext: 'string', char: 'string',
  uuid: 'uuid',
  date: 'date',
  time: 'time', timetz: 'time',
  timestamp: 'timestamp', timestamptz: 'timestamp',
  bytea: 'binary',
  json: 'json', jsonb: 'json',
};

/**
 * The reconciler's checksum SQL for PostgreSQL. A row hash is the first 60
 * bits of md5 of the row's normalized text; sums are exact (numeric).
 */
export const postgresChecksumSql: ChecksumSql = {
  describeColumns(table: string): Statement {
    const [schema, name] = splitPath(table);
    // to_jsonb() of the catalog rows: `datlocprovider` exists from PostgreSQL 15 on.
    return {
      sql:
        'SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type, NOT a.attnotnull AS nullable, ' +
        't.typname AS type_name, t.typcategory AS category, to_jsonb(co) AS collation, ' +
        '(SELECT to_jsonb(d) FROM pg_catalog.pg_database d WHERE d.datname = current_database()) AS db ' +
        'FROM pg_catalog.pg_attribute a ' +
        'JOIN pg_catalog.pg_class c ON c.oid = a.attrelid ' +
        'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ' +
        'JOIN pg_catalog.pg_type t ON t.oid = a.atttypid ' +
        'LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation ' +
        "WHERE c.relname = $1 AND n.nspname = COALESCE($2::name, current_schema()) AND c.relkind IN ('r', 'p') " +
        'AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum',
      params: [name, schema],
    };
  },

  readColumn(row: Record<string, unknown>): ColumnFacts {
    const sqlType = String(row.sql_type);
    const typeName = String(row.type_name);
    const family: ColumnFamily =
      row.category === 'A' ? 'other' : row.category === 'E' ? 'string' : (FAMILY_BY_TYPE[typeName] ?? 'other');
    const modifiers = /\((\d+)(?:,\s*(\d+))?\)/.exec(sqlType);
    const scale = family === 'decimal' && modifiers ? Number(modifiers[2] ?? 0) : null;
    const fraction = family === 'time' || family === 'timestamp' ? (modifiers ? Number(modifiers[1]) : 6) : 0;
    return {
      name: String(row.name),
      sqlType,
      nullable: row.nullable === true,
      family,
      scale: typeName === 'money' ? 2 : scale,
      fraction,
      instant: typeName === 'timestamptz',
      binaryOrder: family !== 'string' || byteOrderCollation(row.collation, row.db),
    };
  },

  keyAt(table, range, offset): Statement {
    const p = new Params();
    return {
      sql: `SELECT ${keyList(table)} FROM ${quoteTable(table.table)} ${where(table, range, p)} ORDER BY ${orderBy(table)} LIMIT 1 OFFSET ${p.add(offset)}`,
      params: p.values,
    };
  },

  keysAt(table, range, positions): Statement {
    const p = new Params();
    const filter = where(table, range, p);
    const limit = p.add(Math.max(...positions));
    const wanted = positions.map((n) => p.add(n)).join(', ');
    return {
      sql:
        `SELECT ${aliases(table)}, rn FROM (SELECT ${aliases(table)}, ` +
        `row_number() OVER (ORDER BY ${table.keys.map((k, i) => orderOf(k, `k${i}`)).join(', ')}) AS rn ` +
        `FROM (SELECT ${keyList(table)} FROM ${quoteTable(table.table)} ${filter} ` +
        `ORDER BY ${orderBy(table)} LIMIT ${limit}) t) x WHERE rn IN (${wanted}) ORDER BY rn`,
      params: p.values,
    };
  },

  checksum(table, range): Statement {
    const p = new Params();
    return {
      sql: `SELECT count(*)::text AS n, COALESCE(sum(${rowHash(table)}), 0)::text AS s FROM ${quoteTable(table.table)} ${where(table, range, p)}`,
      params: p.values,
    };
  },

  checksumParts(table, range, splits): Statement {
    const p = new Params();
    const filter = where(table, range, p);
    const thresholds = integerThresholds(table, splits);
    const part = thresholds
      ? `width_bucket(${quoteIdentifier(table.keys[0].facts.name)}::bigint, '{${thresholds.join(',')}}'::bigint[])`
      : partOf(table, splits.map((split) => p.tuple(split)), 0, splits.length);
    return {
      sql:
        `SELECT ${part} AS part, count(*)::text AS n, sum(${rowHash(table)})::text AS s ` +
        `FROM ${quoteTable(table.table)} ${filter} GROUP BY 1`,
      params: p.values,
    };
  },

  splitKeys(table, range, step): Statement {
    const p = new Params();
    const filter = where(table, range, p);
    return {
      sql:
        `SELECT ${table.keys.map((_, i) => `k${i}`).join(', ')} FROM (SELECT ${keyList(table)}, ` +
        `row_number() OVER (ORDER BY ${orderBy(table)}) AS rn FROM ${quoteTable(table.table)} ${filter}) x ` +
        `WHERE rn % ${p.add(step)} = 0 ORDER BY rn`,
      params: p.values,
    };
  },

  rowHashes(table, range, limit): Statement {
    const p = new Params();
    const filter = where(table, range, p);
    return {
      sql:
        `SELECT ${keyList(table)}, ${rowHash(table)}::text AS h FROM ${quoteTable(table.table)} ${filter} ` +
        `ORDER BY ${orderBy(table)} LIMIT ${p.add(limit)}`,
      params: p.values,
    };
  },

  rowHashesIn(table, ranges): Statement {
    const p = new Params();
    const select = (range: KeyRange) => `SELECT ${keyList(table)}, ${rowHash(table)}::text AS h FROM ${quoteTable(table.table)} ${where(table, range, p)}`;
    return { sql: ranges.map(select).join(' UNION ALL '), params: p.values };
  },

  page(table, range, columns, options = {}): Statement {
    const p = new Params();
    const values = columns.map((c, i) => `${quoteIdentifier(c.facts.name)} AS v${i}`);
    const filter = where(table, range, p);
    const limit = options.limit === undefined ? '' : ` LIMIT ${p.add(options.limit)}`;
    return {
      sql:
        `SELECT ${[keyList(table), ...values].join(', ')} FROM ${quoteTable(table.table)} ${filter} ` +
        `ORDER BY ${orderBy(table)}${limit}${options.lock ? ' FOR UPDATE' : ''}`,
      params: p.values,
    };
  },

  limitSession(limits: SessionLimits): string[] {
    // No parallel workers: the reconciler's load is the sessions it opens, no more.
    return [
      `SET statement_timeout = ${Math.max(1, Math.round(limits.statementTimeout))}`,
      `SET lock_timeout = ${Math.max(1, Math.round(limits.lockTimeout))}`,
      'SET max_parallel_workers_per_gather = 0',
    ];
  },

  resetSession(): string[] {
    return ['RESET statement_timeout', 'RESET lock_timeout', 'RESET max_parallel_workers_per_gather'];
  },
};

class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  tuple(values: readonly unknown[]): string[] {
    return values.map((v) => this.add(v));
  }
}

function byteOrderCollation(collation: unknown, db: unknown): boolean {
  const co = collation as { collname?: string; collprovider?: string; collcollate?: string | null } | null;
  if (!co) return true;
  if (co.collname !== 'default') return co.collprovider !== 'i' && BYTE_ORDER_COLLATIONS.test(co.collcollate ?? co.collname ?? '');
  const database = db as { datcollate?: string; datlocprovider?: string } | null;
  return database?.datlocprovider !== 'i' && BYTE_ORDER_COLLATIONS.test(database?.datcollate ?? '');
}

/** A key column as it is ordered and compared: in byte order, whatever its collation. */
function orderOf(column: ChecksumColumn, reference = quoteIdentifier(column.facts.name)): string {
  return column.facts.binaryOrder ? reference : `${reference} COLLATE "C"`;
}

function orderBy(table: ChecksumTable): string {
  return table.keys.map((k) => orderOf(k)).join(', ');
}

function aliases(table: ChecksumTable): string {
  return table.keys.map((_, i) => `k${i}`).join(', ');
}

function keyList(table: ChecksumTable): string {
  return table.keys.map((k, i) => `${quoteIdentifier(k.facts.name)} AS k${i}`).join(', ');
}

/** `key <op> (slots)`, as a row comparison so that a composite key's index serves it. */
function compare(table: ChecksumTable, op: '>' | '<=', slots: readonly string[]): string {
  const left = table.keys.map((k) => orderOf(k));
  return left.length === 1 ? `${left[0]} ${op} ${slots[0]}` : `(${left.join(', ')}) ${op} (${slots.join(', ')})`;
}

function where(table: ChecksumTable, range: KeyRange, p: Params): string {
  const conditions: string[] = [];
  if (range.after) conditions.push(compare(table, '>', p.tuple(range.after)));
  if (range.upTo) conditions.push(compare(table, '<=', p.tuple(range.upTo)));
  return conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
}

/** A balanced CASE tree: the number of splits below the key, in log2(splits) comparisons per row. */
function partOf(table: ChecksumTable, slots: readonly string[][], from: number, to: number): string {
  if (from >= to) return String(from);
  const mid = (from + to) >> 1;
  return `CASE WHEN ${compare(table, '<=', slots[mid])} THEN ${partOf(table, slots, from, mid)} ELSE ${partOf(table, slots, mid + 1, to)} END`;
}

/** 60 bits of md5 of the row's normalized text, as a bigint. */
function rowHash(table: ChecksumTable): string {
  return `('x' || substr(md5(${rowText(table)}), 1, 15))::bit(60)::bigint`;
}

/**
 * `bitmap,v1,v2,…`: a 0/1 character per nullable column, then each non-NULL
 * normalized value (concat_ws skips NULLs; the bitmap says which were NULL).
 */
function rowText(table: ChecksumTable): string {
  const parts: string[] = [];
  const bits = table.columns.filter((c) => c.nullBit).map((c) => `(${quoteIdentifier(c.facts.name)} IS NULL)::int`);
  if (bits.length) parts.push(`concat(${bits.join(', ')})`);
  for (const column of table.columns) {
    const text = normalized(quoteIdentifier(column.facts.name), column.norm, column.facts, column.lastString === true);
    if (text !== null) parts.push(text);
  }
  return `concat_ws(',', ${parts.join(', ')})`;
}

function normalized(c: string, norm: Normalization, facts: ColumnFacts, lastString: boolean): string | null {
  switch (norm.as) {
    case 'integer':
      return facts.family === 'boolean' ? `(${c})::int::text` : `(${c})::text`;
    case 'decimal':
      if (norm.scale === 'trim') return `trim_scale((${c})::numeric)::text`;
      // A numeric(p,s) column prints its own scale.
      return facts.family === 'decimal' && facts.scale === norm.scale ? `(${c})::text` : `round((${c})::numeric, ${norm.scale})::text`;
    case 'float': {
      // 15 significant digits (DBL_DIG), rounded in decimal from a text both engines agree on:
      // below 2^53, the shortest text that reads back as the same double (MariaDB's CAST(… AS CHAR)
      // gives the same digits); from 2^53 on, where the engines break ties between equally short
      // texts differently, the exact integer (a double there is one), rebuilt from two exact halves.
      const shortest = `(${c})::text::numeric`;
      const hi = `floor((${c}) / 4294967296.0)`;
      const exact = `(${hi}::bigint::numeric * 4294967296 + ((${c}) - ${hi} * 4294967296.0)::bigint)`;
      const digits15 = (v: string) => `trim_scale(round(${v}, 14 - floor(log(abs(${v})))::int))::text`;
      return (
        `CASE WHEN ${c} = 0 THEN '0' ` +
        `WHEN abs(${c}) >= 1e-20 AND abs(${c}) < 9007199254740992 THEN ${digits15(shortest)} ` +
        `WHEN abs(${c}) >= 9007199254740992 AND abs(${c}) < 1e27 THEN ${digits15(exact)} ` +
        // Out there, the shortest text itself, spelt like MariaDB's ('e' without '+').
        `ELSE replace((${c})::text, 'e+', 'e') END`
      );
    }
    case 'boolean':
      return facts.family === 'boolean' ? `CASE WHEN ${c} THEN '1' ELSE '0' END` : `CASE WHEN ${c} = 1 THEN '1' ELSE '0' END`;
    case 'string':
      return lastString ? `(${c})::text` : `length((${c})::text) || ':' || (${c})::text`;
    case 'uuid':
      return `lower((${c})::text)`;
    case 'date':
      return `to_char(${c}, 'YYYY-MM-DD')`;
    case 'time': {
      const value = facts.sqlType.includes('with time zone') ? `(${c})::time` : c;
      return `left(to_char((${value})::interval, 'HH24:MI:SS.US'), ${norm.fraction === 0 ? 8 : 9 + norm.fraction})`;
    }
    case 'epoch':
      return `trunc(extract(epoch FROM ${c}), ${norm.fraction})::numeric(30, ${norm.fraction})::text`;
    case 'wallclock': {
      const wall = facts.instant ? `(${c} AT TIME ZONE ${literal(norm.zone)})` : c;
      if (norm.fraction === 0) return `to_char(${wall}, 'YYYY-MM-DD HH24:MI:SS')`;
      if (norm.fraction === 3) return `to_char(${wall}, 'YYYY-MM-DD HH24:MI:SS.MS')`;
      return `left(to_char(${wall}, 'YYYY-MM-DD HH24:MI:SS.US'), ${20 + norm.fraction})`;
    }
    case 'binary':
      return `md5(${c})`;
    case 'none':
      return null;
  }
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function splitPath(path: string): [string | null, string] {
  const parts = path.split('.');
  return parts.length === 2 ? [parts[0], parts[1]] : [null, path];
}
