import type { DataSource } from 'typeorm';
import { DualWriteError } from '../errors/dual-write-error';
import type { Dialect, DialectName } from './dialect';
import { OUTBOX_COMMIT_PROCEDURE } from '../../migrations/table-names';
import { mariadbCommitDialect, mariadbDialect, mysqlDialect } from './mysql/mysql-dialect';
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

/**
 * The dialect of an initialized primary, refined by what its server can do:
 * a MariaDB 10.5+ server (whatever the DataSource's type says) returns the
 * sequences of its outbox INSERTs, and where `dualwrite migrate` created the
 * outbox commit procedure, writes a one-change transaction's outbox row in
 * its COMMIT's round trip.
 */
export async function primaryDialect(dataSource: DataSource, dialect: Dialect): Promise<Dialect> {
  if (dialect.name !== 'mysql') return dialect;
  const [row] = (await dataSource.query('SELECT VERSION() AS version')) as Array<{ version: string }>;
  const version = /^(\d+)\.(\d+)/.exec(String(row?.version ?? ''));
  const mariadb = /mariadb/i.test(String(row?.version ?? ''));
  if (!mariadb || !version) return dialect;
  const [major, minor] = [Number(version[1]), Number(version[2])];
  if (major < 10 || (major === 10 && minor < 5)) return dialect;
  const [procedure] = (await dataSource.query(
    'SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = ?',
    [OUTBOX_COMMIT_PROCEDURE],
  )) as Array<{ n: number | string }>;
  return Number(procedure?.n ?? 0) > 0 ? mariadbCommitDialect : mariadbDialect;
}
