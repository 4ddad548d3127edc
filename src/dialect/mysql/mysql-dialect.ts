import type { Dialect } from '../dialect';
import { mysqlApplySql } from './mysql-apply-sql';
import { mariadbCommitOutboxSql, mariadbOutboxSql, mysqlOutboxSql } from './mysql-outbox-sql';
import { placeholder, quoteIdentifier, quoteTable } from './mysql-quoting';

export const mysqlDialect: Dialect = {
  name: 'mysql',
  quoteIdentifier,
  quoteTable,
  placeholder,
  outbox: mysqlOutboxSql,
  apply: mysqlApplySql,
};

/** A MariaDB 10.5+ primary: the outbox INSERT returns its sequences (see `mariadbOutboxSql`). */
export const mariadbDialect: Dialect = { ...mysqlDialect, outbox: mariadbOutboxSql };

/** A MariaDB 10.5+ primary with the outbox commit procedure (see `mariadbCommitOutboxSql`). */
export const mariadbCommitDialect: Dialect = { ...mysqlDialect, outbox: mariadbCommitOutboxSql };
