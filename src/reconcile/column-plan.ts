import type { ColumnFacts, Normalization } from '../dialect/checksum-sql';
import type { DialectName } from '../dialect/dialect';
import type { ReplicatedColumn } from '../metadata/replicated-entity';

/** One replicated column as both sides hold it, and how it is compared. */
export interface PlannedColumn {
  source: ReplicatedColumn;
  primary: ColumnFacts;
  target: ColumnFacts;
  norm: Normalization;
  /** Nullable on either side: the column takes a bit in the row's NULL bitmap. */
  nullBit: boolean;
}

/** The time zone wall-clock values are written in: the process's, as TypeORM and both drivers do. */
export function processTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/**
 * Chooses how a column is normalized so that both engines produce the same
 * text for the same value: from the entity's value kind and both columns'
 * types (common scale, common fractional-second precision, instant or wall
 * clock). Values that no SQL renders alike on both engines (JSON, arrays,
 * unknown types) get `none`: they are compared in Node.
 */
export function planColumn(
  source: ReplicatedColumn,
  primary: ColumnFacts,
  target: ColumnFacts,
  engines: { primary: DialectName; target: DialectName },
  zone = processTimeZone(),
): PlannedColumn {
  return { source, primary, target, norm: normalization(source, primary, target, engines, zone), nullBit: source.nullable || primary.nullable || target.nullable };
}

function normalization(
  source: ReplicatedColumn,
  p: ColumnFacts,
  t: ColumnFacts,
  engines: { primary: DialectName; target: DialectName },
  zone: string,
): Normalization {
  const opaque = (f: ColumnFacts) => f.family === 'json' || f.family === 'other';
  if (opaque(p) || opaque(t)) return { as: 'none' };
  switch (source.kind) {
    case 'integer':
    case 'bigint':
      return { as: 'integer' };
    case 'decimal': {
      const scales = [p.scale, t.scale].filter((s): s is number => s !== null);
      const mysql = engines.primary === 'mysql' || engines.target === 'mysql';
      if (scales.length === 0) return mysql ? { as: 'decimal', scale: 30 } : { as: 'decimal', scale: 'trim' };
      return { as: 'decimal', scale: Math.min(mysql ? 38 : 1000, Math.max(...scales)) };
    }
    case 'float':
      return { as: 'float' };
    case 'boolean':
      return { as: 'boolean' };
    case 'string':
    case 'simple-json':
    case 'simple-array':
      return { as: 'string' };
    case 'uuid':
      return { as: 'uuid' };
    case 'date':
      return { as: 'date' };
    case 'time':
      return { as: 'time', fraction: Math.min(p.fraction, t.fraction) };
    case 'timestamp': {
      // Values travel as JS Dates: never more than milliseconds survive.
      const fraction = Math.min(p.fraction, t.fraction, 3);
      return p.instant && t.instant ? { as: 'epoch', fraction } : { as: 'wallclock', fraction, zone };
    }
    case 'binary':
      return p.family === 'binary' && t.family === 'binary' ? { as: 'binary' } : { as: 'none' };
    case 'json':
    case 'other':
      return { as: 'none' };
  }
}
