import type { DataSource } from 'typeorm';
import type { Engine } from '../../support/databases';

/** The narrow width of the target's text columns: a longer value fails there (and only there) permanently. */
export const NARROW = 8;

/**
 * Creates the target tables of `dlq-entities.ts` with explicit DDL: `label`
 * and `body` are varchar(8) here, varchar(40) on the primary, so a long value
 * fails with "value too long" (PostgreSQL 22001) / "Data too long" (MariaDB
 * ER_DATA_TOO_LONG). `secret` exists in the target on purpose: it must stay NULL.
 */
export async function createTargetTables(target: DataSource, engine: Engine): Promise<void> {
  const suffix = engine === 'mariadb' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4' : '';
  await target.query(
    `CREATE TABLE dlq_item (id integer NOT NULL PRIMARY KEY, label varchar(${NARROW}) NOT NULL, qty integer NOT NULL, secret varchar(64) NULL)${suffix}`,
  );
  await target.query(`CREATE TABLE dlq_note (id integer NOT NULL PRIMARY KEY, body varchar(${NARROW}) NOT NULL)${suffix}`);
  await target.query(`CREATE TABLE dlq_compensation (letter varchar(80) NOT NULL PRIMARY KEY, note varchar(200) NOT NULL)${suffix}`);
}

/** Widens the target's narrow columns to the primary's width: the dead letters can apply now. */
export async function widenTargetColumns(target: DataSource, engine: Engine): Promise<void> {
  if (engine === 'postgres') {
    await target.query('ALTER TABLE dlq_item ALTER COLUMN label TYPE varchar(40)');
    await target.query('ALTER TABLE dlq_note ALTER COLUMN body TYPE varchar(40)');
  } else {
    await target.query('ALTER TABLE dlq_item MODIFY label varchar(40) NOT NULL');
    await target.query('ALTER TABLE dlq_note MODIFY body varchar(40) NOT NULL');
  }
}

/** The target's dlq_item rows: id → label, plus whether any `secret` was written. */
export async function targetItems(target: DataSource): Promise<{ labels: Map<number, string>; secrets: number }> {
  const rows = (await target.query('SELECT id, label, secret FROM dlq_item')) as Array<{ id: number | string; label: string; secret: string | null }>;
  return { labels: new Map(rows.map((r) => [Number(r.id), r.label])), secrets: rows.filter((r) => r.secret !== null).length };
}

export async function countRows(ds: DataSource, table: string): Promise<number> {
  const rows = (await ds.query(`SELECT COUNT(*) AS n FROM ${table}`)) as Array<{ n: number | string }>;
  return Number(rows[0].n);
}
