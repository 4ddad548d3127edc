/**
 * What every bench shares: the scale, timing, and the report of each figure
 * as a ratio against a baseline measured in the same run (the machine is
 * shared and noisy, so absolute times say little).
 */

/** BENCH_SCALE (default 1) multiplies every bench's size. */
export const SCALE = Number(process.env.BENCH_SCALE ?? 1);

export interface BenchResult {
  name: string;
  ours: string;
  baseline: string;
  ratio: number;
  goal: string;
}

const results: BenchResult[] = [];

/** Records and prints one figure. `ratio` defaults to ours / baseline. */
export function report(name: string, ours: number, baseline: number, unit: string, goal: string, ratio = ours / baseline): void {
  record(
    { name, ours: `${ours.toFixed(1)} ${unit}`, baseline: `${baseline.toFixed(1)} ${unit}`, ratio: Number(ratio.toFixed(3)), goal },
    `${name}: ours ${ours.toFixed(1)} ${unit}, baseline ${baseline.toFixed(1)} ${unit}, ratio ${ratio.toFixed(3)} (goal ${goal})`,
  );
}

/** Records a figure that is not a plain ratio, with the line to print for it. */
export function record(result: BenchResult, line: string): void {
  results.push(result);
  process.stdout.write(`${line}\n`);
}

/** Every figure recorded so far, as JSON (the last thing `npm run bench` prints). */
export function printResults(): void {
  process.stdout.write(`\n${JSON.stringify(results, null, 2)}\n`);
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Runs `fn` `times` times in a row and returns every result. */
export async function repeat<T>(times: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < times; i++) out.push(await fn());
  return out;
}
