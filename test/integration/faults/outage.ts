import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MARIADB, PG, type TestDatabase } from '../../support/databases';

/**
 * Makes ONE test database unreachable for the worker without touching the
 * shared server (other test files run against it at the same time):
 * - PostgreSQL: `ALTER DATABASE … ALLOW_CONNECTIONS false`, then terminate its
 *   backends. Running statements fail with 57P01 "terminating connection due
 *   to administrator command" (or "Connection terminated unexpectedly"), new
 *   connections with 55000 "database … is not currently accepting connections".
 * - MariaDB: the worker connects as a user of its own; `ALTER USER … ACCOUNT
 *   LOCK`, then `KILL CONNECTION` of that user's sessions. Running statements
 *   fail with PROTOCOL_CONNECTION_LOST, pooled ones with "Can't add new command
 *   when connection is in closed state", new ones with errno 4151 "Access
 *   denied, this account is locked".
 */
export interface TargetOutage {
  /** A DataSource for the worker: it is the one that loses its target. */
  workerDataSource(): DataSource;
  begin(): Promise<void>;
  end(): Promise<void>;
  dispose(): Promise<void>;
}

export async function targetOutage(db: TestDatabase): Promise<TargetOutage> {
  return db.engine === 'postgres' ? postgresOutage(db.name) : mariadbOutage(db.name);
}

async function pgAdmin<T>(run: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ ...PG, user: PG.username, database: 'postgres' });
  await c.connect();
  try {
    return await run(c);
  } finally {
    await c.end();
  }
}

function postgresOutage(database: string): TargetOutage {
  const allow = (on: boolean) => pgAdmin((c) => c.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS ${on}`));
  return {
    workerDataSource: () => new DataSource({ type: 'postgres', ...PG, database, logging: false }),
    begin: async () => {
      await allow(false);
      await pgAdmin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]));
    },
    end: async () => {
      await allow(true);
    },
    dispose: async () => {
      await allow(true).catch(() => undefined);
    },
  };
}

async function mariadbAdmin<T>(run: (c: Awaited<ReturnType<typeof createConnection>>) => Promise<T>): Promise<T> {
  const c = await createConnection({ host: MARIADB.host, port: MARIADB.port, user: MARIADB.username, password: MARIADB.password });
  try {
    return await run(c);
  } finally {
    await c.end();
  }
}

async function mariadbOutage(database: string): Promise<TargetOutage> {
  const user = `dwo_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const account = `'${user}'@'%'`;
  await mariadbAdmin(async (c) => {
    await c.query(`CREATE USER ${account} IDENTIFIED BY '${password}'`);
    await c.query(`GRANT ALL PRIVILEGES ON \`${database}\`.* TO ${account}`);
  });
  return {
    workerDataSource: () =>
      new DataSource({ type: 'mariadb', host: MARIADB.host, port: MARIADB.port, username: user, password, database, logging: false }),
    begin: async () => {
      await mariadbAdmin(async (c) => {
        await c.query(`ALTER USER ${account} ACCOUNT LOCK`);
        const [rows] = await c.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [user]);
        for (const { id } of rows as Array<{ id: number }>) await c.query(`KILL CONNECTION ${Number(id)}`).catch(() => undefined);
      });
    },
    end: async () => {
      await mariadbAdmin((c) => c.query(`ALTER USER ${account} ACCOUNT UNLOCK`));
    },
    dispose: async () => {
      await mariadbAdmin((c) => c.query(`DROP USER IF EXISTS ${account}`)).catch(() => undefined);
    },
  };
}
