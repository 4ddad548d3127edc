import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';

/**
 * How a column's value travels between engines. Derived once per column from
 * TypeORM's metadata; encoding (capture) and decoding (apply) and the
 * reconciler's normalization all switch on it.
 */
export type ValueKind =
  | 'integer' // int, smallint, tinyint (non-boolean)
  | 'bigint' // carried as a decimal string
  | 'decimal' // numeric/decimal: a decimal string, exact
  | 'float' // real/double: a JS number
  | 'boolean'
  | 'string' // varchar, text, char, enum, uuid
  | 'uuid'
  | 'date' // 'YYYY-MM-DD'
  | 'time' // 'HH:MM:SS[.ffffff]'
  | 'timestamp' // an instant, carried as an ISO-8601 UTC string
  | 'json' // json/jsonb: any JSON value
  | 'simple-json' // TypeORM's text-backed JSON: carried as the stored text
  | 'simple-array' // TypeORM's text-backed array: carried as the stored text
  | 'binary' // bytea/blob: base64
  | 'other';

const KIND_BY_TYPE: Record<string, ValueKind> = {
  int: 'integer', int2: 'integer', int4: 'integer', integer: 'integer', smallint: 'integer',
  mediumint: 'integer', tinyint: 'integer', year: 'integer',
  bigint: 'bigint', int8: 'bigint',
  decimal: 'decimal', numeric: 'decimal', dec: 'decimal', fixed: 'decimal', money: 'decimal',
  float: 'float', float4: 'float', float8: 'float', real: 'float', double: 'float',
  'double precision': 'float',
  boolean: 'boolean', bool: 'boolean',
  varchar: 'string', 'character varying': 'string', char: 'string', character: 'string',
  nvarchar: 'string', nchar: 'string', text: 'string', tinytext: 'string', mediumtext: 'string',
  longtext: 'string', citext: 'string', enum: 'string', 'simple-enum': 'string', set: 'string', string: 'string',
  uuid: 'uuid',
  date: 'date',
  time: 'time', 'time without time zone': 'time', timetz: 'time',
  timestamp: 'timestamp', timestamptz: 'timestamp', 'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamp', datetime: 'timestamp', datetime2: 'timestamp',
  json: 'json', jsonb: 'json',
  'simple-json': 'simple-json',
  'simple-array': 'simple-array',
  bytea: 'binary', blob: 'binary', tinyblob: 'binary', mediumblob: 'binary', longblob: 'binary',
  binary: 'binary', varbinary: 'binary',
};

export function valueKindOf(column: ColumnMetadata): ValueKind {
  // PostgreSQL array columns travel as JSON arrays of their elements.
  if (column.isArray) return 'other';
  const type = column.type;
  if (typeof type === 'function') {
    // TypeORM maps a bare `number` property to an integer column on both engines.
    if (type === Number) return 'integer';
    if (type === String) return 'string';
    if (type === Boolean) return 'boolean';
    if (type === Date) return 'timestamp';
    if ((type as unknown) === Buffer) return 'binary';
    if ((type as unknown) === Object) return 'json';
    return 'other';
  }
  const name = String(type).toLowerCase();
  // MySQL's `tinyint(1)` is how TypeORM stores booleans there.
  if (name === 'tinyint' && (column as { width?: number }).width === 1) return 'boolean';
  return KIND_BY_TYPE[name] ?? 'other';
}

/**
 * Column types whose values the drivers hand back as structured objects (or
 * engine-specific binary) that no target can take back as they are: spatial
 * and geometric types of both engines, and PostgreSQL's `interval`. A
 * replicated column of one of these fails at start-up (`COLUMN_TYPE_UNSUPPORTED`)
 * rather than dead-lettering every change later.
 */
export const UNSUPPORTED_TYPES: ReadonlySet<string> = new Set([
  'geometry', 'geography', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon',
  'geometrycollection', 'line', 'lseg', 'box', 'path', 'circle', 'interval',
]);

/** The column's type name when it is one the library cannot replicate. */
export function unsupportedTypeOf(column: ColumnMetadata): string | undefined {
  const type = typeof column.type === 'string' ? column.type.toLowerCase() : undefined;
  return type !== undefined && UNSUPPORTED_TYPES.has(type) ? type : undefined;
}
