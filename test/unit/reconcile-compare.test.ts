import type { ColumnFacts } from '../../src/dialect/checksum-sql';
import type { ReplicatedColumn } from '../../src/metadata/replicated-entity';
import type { ValueKind } from '../../src/metadata/value-kind';
import { planColumn, type PlannedColumn } from '../../src/reconcile/column-plan';
import { decimalAt, differingColumns, sameValue } from '../../src/reconcile/row-compare';

const source = (kind: ValueKind, nullable = false): ReplicatedColumn =>
  ({ databaseName: 'c', propertyPath: 'c', kind, isPrimary: false, nullable, metadata: {} as never }) as ReplicatedColumn;
const facts = (family: ColumnFacts['family'], extra: Partial<ColumnFacts> = {}): ColumnFacts => ({
  name: 'c',
  sqlType: '',
  nullable: false,
  family,
  scale: null,
  fraction: 0,
  instant: false,
  binaryOrder: true,
  ...extra,
});
const pg = { primary: 'postgres', target: 'postgres' } as const;
const cross = { primary: 'postgres', target: 'mysql' } as const;
const plan = (kind: ValueKind, p: ColumnFacts, t: ColumnFacts, engines: typeof pg | typeof cross = cross): PlannedColumn =>
  planColumn(source(kind), p, t, engines, 'Europe/Paris');

describe('planColumn', () => {
  it('compares decimals at the larger scale, or trimmed when PostgreSQL leaves both unconstrained', () => {
    expect(plan('decimal', facts('decimal', { scale: 2 }), facts('decimal', { scale: 4 })).norm).toEqual({ as: 'decimal', scale: 4 });
    expect(plan('decimal', facts('decimal'), facts('decimal', { scale: 3 })).norm).toEqual({ as: 'decimal', scale: 3 });
    expect(plan('decimal', facts('decimal'), facts('decimal'), pg).norm).toEqual({ as: 'decimal', scale: 'trim' });
  });

  it('compares timestamps at the common precision, milliseconds at most; instants as UTC epochs', () => {
    expect(plan('timestamp', facts('timestamp', { fraction: 6, instant: true }), facts('timestamp', { fraction: 3, instant: true })).norm).toEqual({
      as: 'epoch',
      fraction: 3,
    });
    expect(plan('timestamp', facts('timestamp', { fraction: 6 }), facts('timestamp', { fraction: 6 })).norm).toEqual({
      as: 'wallclock',
      fraction: 3,
      zone: 'Europe/Paris',
    });
    expect(plan('timestamp', facts('timestamp', { fraction: 3, instant: true }), facts('timestamp', { fraction: 0 })).norm).toMatchObject({
      as: 'wallclock',
      fraction: 0,
    });
    expect(plan('time', facts('time', { fraction: 6 }), facts('time', { fraction: 0 })).norm).toEqual({ as: 'time', fraction: 0 });
  });

  it('leaves JSON and unknown types to Node, and gives nullable columns a bit in the NULL bitmap', () => {
    expect(plan('json', facts('json'), facts('string')).norm).toEqual({ as: 'none' });
    expect(plan('other', facts('other'), facts('string')).norm).toEqual({ as: 'none' });
    expect(plan('string', facts('string'), facts('json')).norm).toEqual({ as: 'none' });
    expect(plan('binary', facts('binary'), facts('binary')).norm).toEqual({ as: 'binary' });
    expect(plan('string', facts('string'), facts('string', { nullable: true })).nullBit).toBe(true);
    expect(plan('string', facts('string'), facts('string')).nullBit).toBe(false);
  });
});

describe('Node comparison (the second look)', () => {
  it('rounds decimals half away from zero to the common scale', () => {
    expect(decimalAt('1.005', 2)).toBe('1.01');
    expect(decimalAt('-1.005', 2)).toBe('-1.01');
    expect(decimalAt('12.3', 4)).toBe('12.3000');
    expect(decimalAt('-0.0001', 2)).toBe('0.00');
    expect(decimalAt('5.5000', 'trim')).toBe('5.5');
    expect(decimalAt('100', 'trim')).toBe('100');
    expect(decimalAt('1e3', 1)).toBe('1000.0');
  });

  it('judges values as the SQL checksum does', () => {
    const decimal = plan('decimal', facts('decimal', { scale: 2 }), facts('decimal', { scale: 2 }));
    expect(sameValue(decimal, '5.50', '5.5')).toBe(true);
    const float = plan('float', facts('float'), facts('float'));
    expect(sameValue(float, 0.1, 0.1000000000000000055)).toBe(true);
    expect(sameValue(float, 1 / 22, 1 / 22 + 1e-15)).toBe(false);
    expect(sameValue(float, 0.3, 0.30000000000000004)).toBe(true); // one unit in the last place
    const time = plan('time', facts('time', { fraction: 6 }), facts('time', { fraction: 0 }));
    expect(sameValue(time, '12:00:00.999', '12:00:00')).toBe(true);
    const instant = plan('timestamp', facts('timestamp', { fraction: 3, instant: true }), facts('timestamp', { fraction: 3, instant: true }));
    expect(sameValue(instant, '2030-01-01T00:00:00.999Z', '2030-01-01T00:00:00.998Z')).toBe(false);
    const json = plan('json', facts('json'), facts('string'));
    expect(sameValue(json, { a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1.0 })).toBe(true);
    expect(sameValue(json, { a: 1 }, { a: true })).toBe(false);
    expect(sameValue(json, [1, 2], '[1,2]')).toBe(true);
    expect(sameValue(plan('string', facts('string'), facts('string')), 'a', 'A')).toBe(false);
    expect(sameValue(plan('string', facts('string'), facts('string')), null, '')).toBe(false);
  });

  it('names the columns that differ', () => {
    const a = { ...plan('string', facts('string'), facts('string')), source: { ...source('string'), databaseName: 'a' } };
    const b = { ...plan('integer', facts('integer'), facts('integer')), source: { ...source('integer'), databaseName: 'b' } };
    expect(differingColumns([a, b], { a: 'x', b: 1 }, { a: 'x', b: 2 })).toEqual(['b']);
  });
});
