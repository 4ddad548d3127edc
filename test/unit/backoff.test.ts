import fc from 'fast-check';
import { backoffDelay } from '../../src/apply/backoff';

const retry = (over: Partial<{ attempts: number; delay: number; maxDelay: number; jitter: number }> = {}) => ({
  attempts: 10,
  delay: 100,
  maxDelay: 30_000,
  jitter: 0,
  ...over,
});

describe('backoffDelay', () => {
  it('doubles from `delay`, the first retry waiting `delay`', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, retry()))).toEqual([100, 200, 400, 800, 1600, 3200]);
  });

  it('treats attempt 0 or less as the first retry', () => {
    expect(backoffDelay(0, retry())).toBe(100);
    expect(backoffDelay(-3, retry())).toBe(100);
  });

  it('stops growing at `maxDelay`, also for huge attempt numbers', () => {
    const r = retry({ maxDelay: 1000 });
    expect([4, 5, 6, 7, 50, 5000].map((n) => backoffDelay(n, r))).toEqual([800, 1000, 1000, 1000, 1000, 1000]);
  });

  it('is non-decreasing in the attempt without jitter', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 600_000 }), fc.integer({ min: 1, max: 60 }), (delay, maxDelay, n) => {
        const r = retry({ delay, maxDelay });
        expect(backoffDelay(n + 1, r)).toBeGreaterThanOrEqual(backoffDelay(n, r));
      }),
    );
  });

  it('spreads by at most ±jitter around the capped delay, never below 0', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (delay, maxDelay, jitter, n, u) => {
          const base = Math.min(maxDelay, delay * 2 ** (n - 1));
          const value = backoffDelay(n, retry({ delay, maxDelay, jitter }), () => u);
          expect(value).toBeGreaterThanOrEqual(Math.max(0, Math.floor(base * (1 - jitter))));
          expect(value).toBeLessThanOrEqual(Math.ceil(base * (1 + jitter)));
          expect(Number.isInteger(value)).toBe(true);
        },
      ),
    );
  });

  it('reaches both ends of the jitter band and its middle', () => {
    const r = retry({ jitter: 0.2 });
    expect(backoffDelay(3, r, () => 0)).toBe(320);
    expect(backoffDelay(3, r, () => 0.5)).toBe(400);
    expect(backoffDelay(3, r, () => 0.999999)).toBe(480);
  });

  it('jitters with Math.random by default, inside the band, and not always the same', () => {
    const values = Array.from({ length: 200 }, () => backoffDelay(2, retry({ jitter: 0.5 })));
    for (const v of values) {
      expect(v).toBeGreaterThanOrEqual(100);
      expect(v).toBeLessThanOrEqual(300);
    }
    expect(new Set(values).size).toBeGreaterThan(10);
  });

  it('spreads around the cap too, so jobs failing on one long outage do not all return at once', () => {
    // The cap applies before the jitter (see the doc comment): at the cap a delay can reach maxDelay·(1+jitter).
    const r = retry({ maxDelay: 1000, jitter: 0.2 });
    expect(backoffDelay(20, r, () => 0)).toBe(800);
    expect(backoffDelay(20, r, () => 0.999999)).toBe(1200);
  });
});
