import type { OutboxSql } from '../dialect';
import { quoteTable } from './postgres-quoting';

/** The NOTIFY channel relays LISTEN on. */
export const OUTBOX_CHANNEL = 'dualwrite_outbox';

const COLUMNS = 'entity, op, pk, row_image, targets, captured_at, trace';

export const postgresOutboxSql: OutboxSql = {
  exists: (table) => `SELECT count(*)::int AS n FROM (SELECT to_regclass('${table.replace(/'/g, "''")}') AS t) x WHERE t IS NOT NULL`,
  insert(table, rows) {
    const values: string[] = [];
    for (let r = 0; r < rows; r++) {
      const b = r * 7;
      values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7})`);
    }
    // The CTE form wakes LISTENing relays in the same round trip; PostgreSQL
    // delivers the notification at COMMIT, and not at all on ROLLBACK.
    return (
      `WITH captured AS (INSERT INTO ${quoteTable(table)} (${COLUMNS}) VALUES ${values.join(', ')}) ` +
      `SELECT pg_notify('${OUTBOX_CHANNEL}', '')`
    );
  },
  claim: (table) =>
    `SELECT seq::text AS seq, ${COLUMNS} FROM ${quoteTable(table)} ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
  delete: (table) => `DELETE FROM ${quoteTable(table)} WHERE seq = ANY($1::bigint[])`,
  channel: OUTBOX_CHANNEL,
};
