import type { Dialect } from '../dialect';
import { postgresApplySql } from './postgres-apply-sql';
import { postgresOutboxSql } from './postgres-outbox-sql';
import { placeholder, quoteIdentifier, quoteTable } from './postgres-quoting';

export const postgresDialect: Dialect = {
  name: 'postgres',
  quoteIdentifier,
  quoteTable,
  placeholder,
  outbox: postgresOutboxSql,
  apply: postgresApplySql,
};
