import type { DialectName } from '../dialect/dialect';
import type { ValueKind } from '../metadata/value-kind';
import type { WireValue } from '../outbox/change';

/**
 * Turns a wire value (see `encodeValue`) into the parameter the target's
 * driver must receive so that reading the row back and encoding it again
 * gives the same wire value. The result also serializes correctly as an
 * element of a pg array parameter (the PostgreSQL unnest path).
 *
 * Timestamps become `Date` objects on both engines, not pre-formatted
 * strings: the driver then writes them with the connection's own time-zone
 * semantics (mysql2's `timezone` option, TypeORM default 'local'; pg's local
 * offset, which a `timestamptz` honours and a `timestamp` drops), the same
 * semantics it reads them back with. A string fixed to one zone would be
 * wrong as soon as a target DataSource sets `timezone: 'Z'`. Wall-clock
 * columns (`timestamp` without zone, MySQL DATETIME) hence store the
 * process's local time, exactly as TypeORM itself writes them.
 *
 * `sqlType` (the target column's type) only matters for PostgreSQL array
 * columns, whose values become array literals.
 */
export function decodeValue(kind: ValueKind, value: WireValue, target: DialectName, sqlType?: string): unknown {
  if (value === null || value === undefined) return null;
  if (target === 'postgres' && Array.isArray(value) && sqlType?.trim().endsWith(']')) return pgArrayLiteral(value);
  switch (kind) {
    case 'timestamp':
      return toInstant(value);
    case 'boolean':
      // MySQL has no boolean type (TRUE is 1): send the number a tinyint(1) holds.
      return target === 'mysql' ? (isTrue(value) ? 1 : 0) : isTrue(value);
    case 'json':
      return JSON.stringify(value);
    case 'binary':
      return typeof value === 'string' ? Buffer.from(value, 'base64') : structured(value, target);
    default:
      // Numbers, exact decimal/bigint strings, 'YYYY-MM-DD' dates and times
      // are already what both drivers accept and both engines parse exactly.
      return typeof value === 'object' ? structured(value, target) : value;
  }
}

function toInstant(value: WireValue): unknown {
  if (typeof value !== 'string' && typeof value !== 'number') return value;
  const date = new Date(value);
  // Values no Date can hold (PostgreSQL's 'infinity') go through as they came.
  return Number.isNaN(date.getTime()) ? value : date;
}

function isTrue(value: WireValue): boolean {
  return value === true || value === 1 || value === '1' || value === 't' || value === 'true';
}

/**
 * An object or array where a scalar was expected (kind 'other'): JSON text,
 * or an array literal for pg. Never the object itself: mysql2 expands objects
 * into `key = value` lists and arrays into `(a, b)` tuples, and pg nests a JS
 * array inside the unnest array parameter, which unnest then flattens.
 */
function structured(value: WireValue, target: DialectName): string {
  return target === 'postgres' && Array.isArray(value) ? pgArrayLiteral(value) : JSON.stringify(value);
}

function pgArrayLiteral(values: readonly WireValue[]): string {
  const items = values.map((v) => {
    if (v === null) return 'NULL';
    if (Array.isArray(v)) return pgArrayLiteral(v);
    const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
    return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  });
  return `{${items.join(',')}}`;
}
