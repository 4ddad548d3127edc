import { isDeepStrictEqual } from 'node:util';
import type { RowImage, WireValue } from '../outbox/change';
import type { PlannedColumn } from './column-plan';

/**
 * Columns whose values differ between a primary and a target row image
 * (wire values keyed by the primary's column names), judged the way the SQL
 * checksum judges them: decimals at the common scale, times and timestamps at
 * the common precision, JSON by value (key order and number spelling do not
 * matter), doubles at 15 significant digits, as the SQL checksum compares
 * them (a double can lose its last digits through a driver's text protocol).
 */
export function differingColumns(columns: readonly PlannedColumn[], primary: RowImage, target: RowImage): string[] {
  const differing: string[] = [];
  for (const column of columns) {
    const name = column.source.databaseName;
    if (!sameValue(column, primary[name] ?? null, target[name] ?? null)) differing.push(name);
  }
  return differing;
}

export function sameValue(column: PlannedColumn, a: WireValue, b: WireValue): boolean {
  if (a === null || b === null) return a === b;
  const norm = column.norm;
  switch (norm.as) {
    case 'integer':
      return String(a) === String(b);
    case 'decimal':
      return decimalAt(String(a), norm.scale) === decimalAt(String(b), norm.scale);
    case 'float':
      return sameDouble(Number(a), Number(b));
    case 'time':
      return timeAt(String(a), norm.fraction) === timeAt(String(b), norm.fraction);
    case 'epoch':
    case 'wallclock':
      return instantAt(a, norm.fraction) === instantAt(b, norm.fraction);
    case 'none':
      return sameStructured(a, b);
    default:
      return a === b;
  }
}

function sameDouble(a: number, b: number): boolean {
  if (a === b || (Number.isNaN(a) && Number.isNaN(b))) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  // Within 4 units in the last place, or equal at 15 significant digits.
  return Math.abs(a - b) <= 4 * Number.EPSILON * Math.max(Math.abs(a), Math.abs(b)) || a.toPrecision(15) === b.toPrecision(15);
}

function sameStructured(a: WireValue, b: WireValue): boolean {
  if (isDeepStrictEqual(a, b)) return true;
  // A structured value on one side may arrive as its JSON text on the other (arrays in a MySQL text column).
  const parse = (v: WireValue): WireValue => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as WireValue;
    } catch {
      return v;
    }
  };
  return isDeepStrictEqual(parse(a), parse(b));
}

/** A decimal string rounded half away from zero to `scale` places (or stripped of trailing zeros). */
export function decimalAt(text: string, scale: number | 'trim'): string {
  const match = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match) return text;
  const negative = match[1] === '-';
  let digits = (match[2] || '0') + (match[3] ?? '');
  let exponent = -(match[3]?.length ?? 0) + Number(match[4] ?? 0);
  let units = BigInt(digits);
  if (scale !== 'trim') {
    const shift = exponent + scale;
    if (shift >= 0) units *= 10n ** BigInt(shift);
    else {
      const divisor = 10n ** BigInt(-shift);
      units = (units + divisor / 2n) / divisor;
    }
    exponent = -scale;
  } else {
    while (exponent < 0 && units % 10n === 0n && units !== 0n) {
      units /= 10n;
      exponent++;
    }
    if (units === 0n) exponent = 0;
  }
  digits = units.toString();
  const places = Math.max(0, -exponent);
  if (exponent > 0) digits += '0'.repeat(exponent);
  const padded = digits.padStart(places + 1, '0');
  const body = places ? `${padded.slice(0, -places)}.${padded.slice(-places)}` : padded;
  return units === 0n ? body : `${negative ? '-' : ''}${body}`;
}

function timeAt(text: string, fraction: number): string {
  const [whole, frac = ''] = text.split('.');
  return fraction === 0 ? whole : `${whole}.${frac.padEnd(6, '0').slice(0, fraction)}`;
}

function instantAt(value: WireValue, fraction: number): string {
  const date = new Date(value as string);
  if (Number.isNaN(date.getTime())) return String(value);
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return fraction === 0 ? iso.slice(0, 19) : iso.slice(0, 20 + Math.min(fraction, 3));
}
