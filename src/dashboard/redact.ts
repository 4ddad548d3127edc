import { redactSecrets } from '../index';

export const REDACTED = '[redacted]';

/** Text shown on a page: URL credentials and `password=…` values taken out. */
export function redactText(text: string): string {
  return redactSecrets(text);
}

const SECRET_KEY = /^(password|passwd|pwd|connectionstring|dsn)$/i;

/**
 * Redacts every string inside a JSON-like value (a bull-board response body):
 * text through `redactSecrets`, and whole values of keys that name a secret.
 */
export function redactDeep<T>(value: T): T {
  return walk(value, 0) as T;
}

function walk(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    out[key] = SECRET_KEY.test(key) && item !== null && item !== undefined && typeof item !== 'object' ? REDACTED : walk(item, depth + 1);
  }
  return out;
}
