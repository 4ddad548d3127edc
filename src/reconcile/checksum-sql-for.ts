import type { ChecksumSql } from '../dialect/checksum-sql';
import type { Dialect } from '../dialect/dialect';
import { mysqlChecksumSql } from '../dialect/mysql/mysql-checksum-sql';
import { postgresChecksumSql } from '../dialect/postgres/postgres-checksum-sql';

/** The reconciler's checksum SQL for an engine (kept beside each dialect, looked up here). */
export function checksumSqlFor(dialect: Dialect): ChecksumSql {
  return dialect.name === 'postgres' ? postgresChecksumSql : mysqlChecksumSql;
}
