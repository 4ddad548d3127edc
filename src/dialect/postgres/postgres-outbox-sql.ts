import type { OutboxSql } from '../dialect';
import { quoteTable } from './postgres-quoting';

/** The NOTIFY channel relays LISTEN on. */
export const OUTBOX_CHANNEL = 'dualwrite_outbox';

const COLUMNS = 'entity, op, pk, row_image, targets, captured_at, trace';

export const postgresOutboxSql: OutboxSql = {
  exists: (table) => `SELECT count(*)::int AS n FROM (SELECT to_regclass('${table.replace(/'/g, "''")}') AS t) x WHERE t IS NOT NULL`,
  // One array parameter per column (see `insertParams`): the statement text
  // and its parse cost stay the same however many rows a transaction wrote.
  // The CTE form wakes LISTENing relays in the same round trip; PostgreSQL
  // delivers the notification at COMMIT, and not at all on ROLLBACK.
  insert: (table, _rows, notify = true) => {
    const insert =
      `INSERT INTO ${quoteTable(table)} (${COLUMNS}) ` +
      `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])`;
    return notify ? `WITH captured AS (${insert}) SELECT pg_notify('${OUTBOX_CHANNEL}', '')` : insert;
  },
  columnar: true,
  // Claim and delete in one pass; the rows come back if the transaction
  // rolls back (Redis refused the jobs). `= ANY(ARRAY(…))`, not `IN (…)`:
  // the planner turns an IN subquery into a hash join over a sequential scan
  // of the whole outbox (every claim reads the whole backlog), an array into
  // primary-key lookups (3.8 ms instead of 7.3 ms for 2,000 of 50,000 rows).
  claim: (table) =>
    `DELETE FROM ${quoteTable(table)} WHERE seq = ANY(ARRAY(` +
    `SELECT seq FROM ${quoteTable(table)} ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)) ` +
    `RETURNING seq::text AS seq, ${COLUMNS}`,
  claimDeletes: true,
  // BEGIN and the claim in one simple-protocol round trip. The claim
  // transaction commits asynchronously (no wait for its WAL flush): it only
  // deletes rows whose jobs Redis has already acknowledged, so losing that
  // commit in a server crash brings the rows back and relays them again;
  // duplicate jobs are harmless (version-gated, idempotent apply).
  claimScript: (table, batchSize) => {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`Relay batch size ${batchSize} is not a positive integer.`);
    return (
      `BEGIN; SET LOCAL synchronous_commit TO OFF; ` +
      postgresOutboxSql.claim(table).replace('$1', String(batchSize))
    );
  },
  delete: (table, seqs) => ({ sql: `DELETE FROM ${quoteTable(table)} WHERE seq = ANY($1::bigint[])`, params: [seqs] }),
  channel: OUTBOX_CHANNEL,
};
