import type { Dialect } from '../dialect';
import { mysqlApplySql } from './mysql-apply-sql';
import { mysqlOutboxSql } from './mysql-outbox-sql';
import { placeholder, quoteIdentifier, quoteTable } from './mysql-quoting';

export const mysqlDialect: Dialect = {
  name: 'mysql',
  quoteIdentifier,
  quoteTable,
  placeholder,
  outbox: mysqlOutboxSql,
  apply: mysqlApplySql,
};
