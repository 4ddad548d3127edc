import type { DataSource } from 'typeorm';
import type { Dialect } from '../../src/dialect/dialect';
import type { ReplicatedEntity } from '../../src/metadata/replicated-entity';
import { encodeValue } from '../../src/outbox/value-codec';

/** Every row of an entity's table, encoded to wire values, by key: an engine-neutral snapshot. */
export async function snapshot(ds: DataSource, dialect: Dialect, entity: ReplicatedEntity, table = entity.metadata.tableName) {
  const rows = (await ds.query(`SELECT * FROM ${dialect.quoteTable(table)}`)) as Record<string, unknown>[];
  const out = new Map<string, Record<string, unknown>>();
  for (const raw of rows) {
    const image: Record<string, unknown> = {};
    for (const c of entity.columns) image[c.databaseName] = encodeValue(c.kind, raw[c.databaseName], dialect.name === 'mysql');
    out.set(entity.primaryColumns.map((c) => String(image[c.databaseName])).join('|'), image);
  }
  return out;
}

/** Polls until `check` returns true or the deadline passes; returns the last result. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 20_000, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
