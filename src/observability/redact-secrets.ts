/**
 * Secrets that can hide in free text (driver error messages, stack traces,
 * failure messages of dead letters): credentials inside connection URLs, and
 * `password=…`-style pairs of DSNs and driver messages.
 */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:'"]+)(?::[^\s/@'"]*)?@/gi;
const SECRET_PAIRS =
  /\b(password|passwd|pwd|pass|secret|token|api[_-]?key|auth)(\s*[=:]\s*|"\s*:\s*")("[^"]*"|'[^']*'|[^\s;,&'")}\]]+)/gi;

export const REDACTED = '[redacted]';

/**
 * A copy of `text` with URL credentials (`postgres://user:pw@host` →
 * `postgres://[redacted]@host`) and `password=…` values replaced by `[redacted]`.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(URL_CREDENTIALS, (_m, scheme: string) => `${scheme}${REDACTED}@`)
    .replace(SECRET_PAIRS, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`);
}
