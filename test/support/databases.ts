import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { DataSource, type DataSourceOptions, type EntitySchema, type MixedList } from 'typeorm';

export type Engine = 'postgres' | 'mariadb';
export const ENGINES: Engine[] = ['postgres', 'mariadb'];

export const PG = { host: '127.0.0.1', port: 5432, username: 'postgres' };
export const MARIADB = { host: '127.0.0.1', port: 3306, username: 'root', password: '' };
const MARIADB_ADMIN = { host: MARIADB.host, port: MARIADB.port, user: 'root', password: '' };

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A fresh database of its own for one test file, dropped by `drop()`. */
export interface TestDatabase {
  engine: Engine;
  name: string;
  options(entities?: MixedList<Function | string | EntitySchema>): DataSourceOptions;
  drop(): Promise<void>;
}

export async function createDatabase(engine: Engine, prefix = 'dw'): Promise<TestDatabase> {
  const name = uniqueName(prefix).toLowerCase();
  if (engine === 'postgres') {
    const admin = new Client({ ...PG, user: PG.username, database: 'postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
    return {
      engine,
      name,
      options: (entities = []) => ({ type: 'postgres', ...PG, database: name, entities, synchronize: true, logging: false }),
      drop: async () => {
        const c = new Client({ ...PG, user: PG.username, database: 'postgres' });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await c.end();
      },
    };
  }
  const admin = await createConnection(MARIADB_ADMIN);
  await admin.query(`CREATE DATABASE \`${name}\``);
  await admin.end();
  return {
    engine,
    name,
    options: (entities = []) => ({ type: 'mariadb', ...MARIADB, database: name, entities, synchronize: true, logging: false }),
    drop: async () => {
      const c = await createConnection(MARIADB_ADMIN);
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    },
  };
}

export function dataSource(db: TestDatabase, entities: MixedList<Function | string | EntitySchema> = []): DataSource {
  return new DataSource(db.options(entities));
}
