import type { QueryRunner } from 'typeorm';
import type { Dialect } from './dialect';

/**
 * The names of a table's columns, read from the catalog without touching the
 * table itself. (TypeORM's `getTable()` casts the name to `regclass` and waits
 * for any lock a session holds on the table: a start-up check through it hangs
 * behind a long migration or a `LOCK TABLE`.) Empty when there is no such table.
 */
export async function tableColumnNames(queryRunner: QueryRunner, dialect: Dialect, table: string): Promise<Set<string>> {
  const statement = dialect.apply.describeTable(table);
  const rows = (await queryRunner.query(statement.sql, statement.params)) as Record<string, unknown>[];
  return new Set(rows.map((row) => dialect.apply.readColumn(row).name));
}
