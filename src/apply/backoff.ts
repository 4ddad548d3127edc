import type { RetryOptions } from '../config/dual-write-config';

/**
 * Delay before retry number `attempt` (1 = the first retry): exponential from
 * `delay`, capped at `maxDelay`, then spread by ±`jitter` so that the many
 * jobs failing on one outage do not all come back at the same instant.
 */
export function backoffDelay(attempt: number, retry: Required<RetryOptions>, random: () => number = Math.random): number {
  const exponential = Math.min(retry.maxDelay, retry.delay * 2 ** Math.max(0, attempt - 1));
  const spread = exponential * retry.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(exponential + spread));
}
