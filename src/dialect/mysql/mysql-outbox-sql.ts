import type { OutboxSql } from '../dialect';
import { quoteTable } from './mysql-quoting';

const COLUMNS = 'entity, op, pk, row_image, targets, captured_at, trace';

export const mysqlOutboxSql: OutboxSql = {
  exists: (table) =>
    `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '${table.replace(/'/g, "''")}'`,
  insert(table, rows) {
    const row = '(?, ?, ?, ?, ?, ?, ?)';
    return `INSERT INTO ${quoteTable(table)} (${COLUMNS}) VALUES ${new Array(rows).fill(row).join(', ')}`;
  },
  claim: (table) =>
    `SELECT CAST(seq AS CHAR) AS seq, ${COLUMNS} FROM ${quoteTable(table)} ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED`,
  delete: (table, count) => `DELETE FROM ${quoteTable(table)} WHERE seq IN (${new Array(count).fill('?').join(', ')})`,
};
