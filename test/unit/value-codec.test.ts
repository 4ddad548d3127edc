import fc from 'fast-check';
import { encodeValue, isoInstant } from '../../src/outbox/value-codec';

describe('isoInstant (the timestamp wire form)', () => {
  it('equals toISOString for edge instants, any valid Date, and the instants either side of each', () => {
    const edges = [
      0, -1, 1, 999, 1000, 59_999, 3_599_999, 86_399_999, 86_400_000, -86_400_000, -86_400_001,
      951_782_400_000 /* 2000-02-29 */, 1_700_000_000_123, -62_198_755_200_000 /* 0000-01-01 */, -62_198_755_200_001,
      253_402_300_799_999 /* 9999-12-31T23:59:59.999 */, 253_402_300_800_000 /* +010000 */, 8.64e15, -8.64e15,
    ];
    // Neighbours too, formatted right after: the day cache must never serve a neighbouring day's date.
    const agrees = (ms: number) =>
      [ms, ms - 1, ms + 1, ms + 86_400_000, ms - 86_400_000]
        .filter((t) => Math.abs(t) <= 8.64e15)
        .every((t) => isoInstant(new Date(t)) === new Date(t).toISOString());
    expect(edges.filter((ms) => !agrees(ms))).toEqual([]);
    fc.assert(fc.property(fc.date({ noInvalidDate: true }), (date) => agrees(date.getTime())), { numRuns: 20_000 });
  });

  it('gives null for an invalid date, which encodeValue keeps as the text it was given', () => {
    expect(isoInstant(new Date(Number.NaN))).toBeNull();
    expect(encodeValue('timestamp', 'not a date')).toBe('not a date');
    expect(encodeValue('timestamp', '2024-02-29T12:34:56.789+02:00')).toBe('2024-02-29T10:34:56.789Z');
    expect(encodeValue('timestamp', 1_700_000_000_000)).toBe('2023-11-14T22:13:20.000Z');
  });
});
