import type { DataSource } from 'typeorm';
import { DualWriteError } from '../errors/dual-write-error';
import type { Dialect, DialectName } from './dialect';
import { mysqlDialect } from './mysql/mysql-dialect';
import { postgresDialect } from './postgres/postgres-dialect';

const MYSQL_FAMILY = new Set(['mysql', 'mariadb', 'aurora-mysql']);

export function dialectNameOf(type: string): DialectName | undefined {
  if (type === 'postgres' || type === 'aurora-postgres') return 'postgres';
  if (MYSQL_FAMILY.has(type)) return 'mysql';
  return undefined;
}

export function dialectFor(dataSource: DataSource, role: { primary: true } | { target: string }): Dialect {
  const type = String(dataSource.options.type);
  const name = dialectNameOf(type);
  if (name === 'postgres') return postgresDialect;
  if (name === 'mysql') return mysqlDialect;
  if ('primary' in role) {
    throw new DualWriteError(
      'PRIMARY_DRIVER_UNSUPPORTED',
      `The primary DataSource uses driver "${type}"; typeorm-dualwrite captures writes on PostgreSQL and MySQL/MariaDB primaries only. ` +
        `Set "primary" to a DataSource of type "postgres", "mysql" or "mariadb".`,
      { option: 'primary' },
    );
  }
  throw new DualWriteError(
    'TARGET_DRIVER_UNSUPPORTED',
    `Target "${role.target}" uses driver "${type}"; targets must be PostgreSQL or MySQL/MariaDB DataSources ` +
      `(type "postgres", "mysql" or "mariadb"). Change its type or remove it from "targets".`,
    { target: role.target, option: 'targets' },
  );
}
