import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { MARIADB, PG } from '../support/databases';
import { APPLICATION_NAME } from './chaos-config';

/** Where the soak cuts connections: the worker's side of the primary, or one target. */
export interface ConnectionScope {
  engine: 'postgres' | 'mariadb';
  port: number;
  database: string;
  /** Only this account's sessions (MariaDB), or only the workers' application_name (PostgreSQL); otherwise every session of the database but the soak's own. */
  onlyWorkers: boolean;
  workerUser?: string;
}

/**
 * Kills the sessions of ONE of the run's own databases (`pg_terminate_backend`,
 * `KILL CONNECTION`) in the middle of whatever they are doing. Returns how
 * many it killed.
 */
export async function killConnections(scope: ConnectionScope): Promise<number> {
  if (scope.engine === 'postgres') {
    const c = new Client({ host: PG.host, port: scope.port, user: PG.username, database: 'postgres' });
    await c.connect();
    try {
      const filter = scope.onlyWorkers ? 'AND application_name = $2' : '';
      const params = scope.onlyWorkers ? [scope.database, APPLICATION_NAME('worker')] : [scope.database];
      const result = await c.query(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ${filter}`,
        params,
      );
      return result.rows.filter((r: { killed: boolean }) => r.killed).length;
    } finally {
      await c.end();
    }
  }
  const c = await createConnection({ host: MARIADB.host, port: scope.port, user: MARIADB.username, password: MARIADB.password });
  try {
    const [rows] = scope.onlyWorkers
      ? await c.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()', [scope.workerUser])
      : await c.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()', [scope.database]);
    let killed = 0;
    for (const { id } of rows as Array<{ id: number }>) {
      await c
        .query(`KILL CONNECTION ${Number(id)}`)
        .then(() => killed++)
        .catch(() => undefined); // already gone
    }
    return killed;
  } finally {
    await c.end();
  }
}
