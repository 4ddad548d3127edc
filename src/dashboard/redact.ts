/**
 * Secrets that can hide in free text the dashboard shows (failure messages,
 * stack traces, job data): credentials inside connection URLs, and
 * `password=…`-style pairs of DSNs and driver messages.
 */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:'"]+)(?::[^\s/@'"]*)?@/gi;
const SECRET_PAIRS =
  /\b(password|passwd|pwd|pass|secret|token|api[_-]?key|auth)(\s*[=:]\s*|"\s*:\s*")("[^"]*"|'[^']*'|[^\s;,&'"}]+)/gi;

export const REDACTED = '[redacted]';

/** A copy of `text` with URL credentials and `password=…` values replaced by `[redacted]`. */
export function redactText(text: string): string {
  return text
    .replace(URL_CREDENTIALS, (_m, scheme: string) => `${scheme}${REDACTED}@`)
    .replace(SECRET_PAIRS, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`);
}

/**
 * Redacts every string inside a JSON-like value (a bull-board response body):
 * text through `redactText`, and whole values of keys that name a secret.
 */
export function redactDeep<T>(value: T): T {
  return walk(value, 0) as T;
}

const SECRET_KEY = /^(password|passwd|pwd|connectionstring|dsn)$/i;

function walk(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    out[key] = SECRET_KEY.test(key) && item !== null && item !== undefined && typeof item !== 'object' ? REDACTED : walk(item, depth + 1);
  }
  return out;
}
