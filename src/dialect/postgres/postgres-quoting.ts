export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteTable(path: string): string {
  return path.split('.').map(quoteIdentifier).join('.');
}

export function placeholder(index: number): string {
  return `$${index}`;
}
