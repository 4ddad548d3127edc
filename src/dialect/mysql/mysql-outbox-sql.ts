import { OUTBOX_COMMIT_PROCEDURE, OUTBOX_TABLE } from '../../../migrations/table-names';
import type { OutboxSql, Statement } from '../dialect';
import { decimalSeqs } from '../apply-sql-guards';
import { quoteIdentifier, quoteTable } from './mysql-quoting';

const COLUMNS = 'entity, op, pk, row_image, targets, captured_at, trace';

export const mysqlOutboxSql: OutboxSql = {
  exists: (table) =>
    `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '${table.replace(/'/g, "''")}'`,
  insert(table, rows) {
    const row = '(?, ?, ?, ?, ?, ?, ?)';
    return `INSERT INTO ${quoteTable(table)} (${COLUMNS}) VALUES ${new Array(rows).fill(row).join(', ')}`;
  },
  // ORDER BY the table's column, qualified: an unqualified `seq` would name
  // the CAST alias, and MariaDB then sorts every outbox row as a string
  // (a filesort of the whole table, ~15× slower per claim, in text order).
  claim: (table, limit, upTo, except = []) => {
    const where = [...(upTo === undefined ? [] : ['o.seq <= ?']), ...(except.length === 0 ? [] : [`o.seq NOT IN (${except.map(() => '?').join(', ')})`])];
    return {
      sql:
        `SELECT CAST(o.seq AS CHAR) AS seq, ${COLUMNS} FROM ${quoteTable(table)} AS o` +
        `${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY o.seq LIMIT ? FOR UPDATE SKIP LOCKED`,
      params: [...(upTo === undefined ? [] : [upTo]), ...except, limit],
    };
  },
  newestSeq: (table) => `SELECT CAST(MAX(seq) AS CHAR) AS seq FROM ${quoteTable(table)}`,
  claimIsolation: 'READ COMMITTED',
  delete: (table, seqs) => deleteBySeq(table, seqs),
};

/**
 * Deletes claimed rows by primary-key lookups driven from a JSON list of
 * their sequences (MySQL 8 and MariaDB 10.6+, the versions with SKIP LOCKED,
 * both have JSON_TABLE). Neither an IN list nor ranges would do: InnoDB reads
 * (and locks, waiting) the row after each point or range it scans, or the
 * whole table when the optimizer picks a full scan for a long list; that row
 * may be one another relay holds, and two relays then deadlock.
 */
function deleteBySeq(table: string, seqs: readonly string[]): Statement {
  decimalSeqs(seqs);
  return {
    sql:
      `DELETE o FROM JSON_TABLE(?, '$[*]' COLUMNS (seq BIGINT PATH '$')) AS j ` +
      `STRAIGHT_JOIN ${quoteTable(table)} AS o ON o.seq = j.seq`,
    params: [`[${seqs.join(',')}]`],
  };
}

/**
 * MariaDB 10.5+ returns the sequences an INSERT assigned (`RETURNING`), so an
 * application can relay its own commits from memory as on PostgreSQL (see
 * `Relay.publish`). MySQL has no RETURNING: it keeps `mysqlOutboxSql`.
 */
export const mariadbOutboxSql: OutboxSql = {
  ...mysqlOutboxSql,
  returnsSeqs: true,
  insert: (table, rows, notify, returnSeqs = false) =>
    returnSeqs ? `${mysqlOutboxSql.insert(table, rows, notify)} RETURNING CAST(seq AS CHAR) AS seq` : mysqlOutboxSql.insert(table, rows, notify),
};

/**
 * A MariaDB 10.5+ primary with the outbox commit procedure
 * (`CreateDualWriteOutboxCommit1764400000002`): a transaction that captured
 * one change writes it and COMMITs in one round trip (`CALL`); TypeORM's
 * MySQL connections cannot send two statements at once.
 */
export const mariadbCommitOutboxSql: OutboxSql = {
  ...mariadbOutboxSql,
  insertAndCommit: (table, rows) =>
    rows.length === 1 && table === OUTBOX_TABLE
      ? { sql: `CALL ${quoteIdentifier(OUTBOX_COMMIT_PROCEDURE)}(?, ?, ?, ?, ?, ?, ?)`, params: [...rows[0]], script: false, prepared: true }
      : undefined,
};
