export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteTable(path: string): string {
  return path.split('.').map(quoteIdentifier).join('.');
}

export function placeholder(index: number): string {
  return `$${index}`;
}

/**
 * A PostgreSQL literal for a parameterless script: quotes doubled, and the
 * escape-string form when the text holds a backslash, so the value reads the
 * same whatever the server's `standard_conforming_strings`.
 */
export function quoteLiteral(value: string | number | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`Cannot write ${value} as an SQL literal.`);
    return String(value);
  }
  const quoted = `'${value.replace(/'/g, "''")}'`;
  return value.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}
