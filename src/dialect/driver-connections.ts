import type { DataSource } from 'typeorm';
import type { DialectName, Statement } from './dialect';

/** A connection of the library's own (see `DriverConnections`). */
export interface DriverConnection {
  /**
   * Runs one statement, or (without parameters, PostgreSQL) a script of
   * several; resolves with the rows of the last result.
   */
  query(sql: string, params?: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  /**
   * Runs statements in order; resolves with the result of each: its rows, or
   * (MySQL/MariaDB, statements without rows) the driver's result header. On
   * MySQL/MariaDB in ONE round trip: these connections allow multiple
   * statements, and only the library's own SQL, with every value a
   * parameter, runs on them.
   */
  queryAll(statements: ReadonlyArray<Omit<Statement, 'params'> & { params?: readonly unknown[] }>): Promise<unknown[]>;
  /**
   * After a failure: rolls back whatever transaction is open (harmless when
   * none is); a connection that cannot even do that is closed at `release`
   * instead of going back to the pool.
   */
  abort(): Promise<void>;
  /** Back to the pool (or closed, see `abort`). */
  release(): void;
}

/**
 * A small pool of the library's own on a DataSource's database, opened from
 * the DataSource's connection options (through its driver, so host,
 * credentials, TLS and the driver's session settings are the same), next to
 * the application's pool rather than in it. The relay uses one on the
 * primary: sharing the application's pool, a claim waited behind every save
 * queued for a connection (at 1,000 saves/s commits reached Redis up to
 * 0.5 s late while the claim itself took 2 ms). The apply uses one on a
 * MySQL/MariaDB target, for its statements in two round trips a job (see
 * `queryAll`). Opened at the first `run`; `end()` closes it.
 */
export class DriverConnections {
  private pool?: Promise<DriverPool>;
  private ended = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly dialect: DialectName,
    private readonly size: number,
  ) {}

  private async acquire(): Promise<DriverConnection> {
    // A late caller (a poll in flight at shutdown) must not open a pool nobody will close.
    if (this.ended) throw new Error('These connections are closed.');
    this.pool ??= openPool(this.dataSource, this.dialect, this.size);
    let pool: DriverPool;
    try {
      pool = await this.pool;
    } catch (error) {
      this.pool = undefined; // the next pass tries again
      throw error;
    }
    return this.dialect === 'postgres' ? postgresConnection(pool as PgPool) : mysqlConnection(pool as MysqlPool);
  }

  /**
   * Runs `work` on a connection of the pool, and releases it: after a
   * failure, only once whatever transaction `work` left open is rolled back
   * (`abort`).
   */
  async run<T>(work: (connection: DriverConnection) => Promise<T>): Promise<T> {
    const connection = await this.acquire();
    try {
      return await work(connection);
    } catch (error) {
      await connection.abort();
      throw error;
    } finally {
      connection.release();
    }
  }

  async end(): Promise<void> {
    this.ended = true;
    const pool = this.pool;
    this.pool = undefined;
    if (!pool) return;
    const opened = await pool.catch(() => undefined);
    if (!opened) return;
    await new Promise<void>((resolve) => {
      // pg's end() returns a promise; mysql's and mysql2's take a callback.
      const ended = (opened as { end(cb?: () => void): unknown }).end(() => resolve());
      if (ended instanceof Promise) ended.then(() => resolve(), () => resolve());
    });
  }
}

interface PgClient {
  query(sql: string, params?: readonly unknown[]): Promise<PgResult | PgResult[]>;
  release(error?: unknown): void;
  on(event: 'error', listener: (error: Error) => void): void;
}
interface PgResult {
  rows?: Array<Record<string, unknown>>;
}
interface PgPool {
  connect(): Promise<PgClient>;
  end(): Promise<void>;
}

interface MysqlConnection {
  query(sql: string, params: readonly unknown[] | undefined, callback: (error: Error | null, result: unknown) => void): void;
  release(): void;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): void;
}

/** Connections given an `error` listener (see `postgresConnection`, `mysqlConnection`). */
const listened = new WeakSet<object>();
interface MysqlPool {
  getConnection(callback: (error: Error | null, connection: MysqlConnection) => void): void;
  end(callback: () => void): void;
}

type DriverPool = PgPool | MysqlPool;

/** The parts of TypeORM's PostgreSQL and MySQL drivers that build their pools (0.3.x and 1.x alike). */
interface PoolBuildingDriver {
  options: { poolSize?: number; extra?: Record<string, unknown>; replication?: { master: object } };
  createPool(options: object, credentials?: object): Promise<DriverPool> | DriverPool;
  /** Synchronous, though TypeORM types it as a Promise (0.3.x and 1.x). */
  createConnectionOptions?(options: object, credentials: object): Record<string, unknown> | Promise<Record<string, unknown>>;
}

async function openPool(dataSource: DataSource, dialect: DialectName, size: number): Promise<DriverPool> {
  const driver = dataSource.driver as unknown as PoolBuildingDriver;
  const options = driver.options;
  const credentials = options.replication?.master ?? options;
  if (dialect === 'postgres') {
    // TypeORM lays `extra` over its own pool options, so the size goes there.
    return driver.createPool({ ...options, poolSize: size, extra: { ...options.extra, max: size } }, credentials);
  }
  const connectionOptions = await driver.createConnectionOptions!(options, credentials);
  return driver.createPool({ ...connectionOptions, connectionLimit: size, multipleStatements: true });
}

async function postgresConnection(pool: PgPool): Promise<DriverConnection> {
  const client = await pool.connect();
  // pg-pool listens for errors of idle clients only. A checked-out client whose server session ends
  // between statements (the relay waits for Redis inside its claim transaction) emits 'error', which
  // without a listener ends the process; its next statement fails instead, and `abort` closes it.
  if (!listened.has(client)) {
    listened.add(client);
    client.on('error', () => undefined);
  }
  let broken: Error | undefined;
  const query = async (sql: string, params?: readonly unknown[]) => {
    const result = await client.query(sql, params);
    const last = Array.isArray(result) ? result[result.length - 1] : result;
    return last?.rows ?? [];
  };
  return {
    query,
    queryAll: async (statements) => {
      const results: unknown[] = [];
      for (const statement of statements) results.push(await query(statement.sql, statement.params));
      return results;
    },
    abort: async () => {
      broken ??= await query('ROLLBACK').then(
        () => undefined,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      );
    },
    release: () => client.release(broken),
  };
}

async function mysqlConnection(pool: MysqlPool): Promise<DriverConnection> {
  const connection = await new Promise<MysqlConnection>((resolve, reject) =>
    pool.getConnection((error, c) => (error ? reject(error) : resolve(c))),
  );
  // A statement's error reaches its callback; one on an idle connection (the server closed it) must not
  // become an unhandled 'error' event that ends the process: the pool drops the connection.
  if (!listened.has(connection)) {
    listened.add(connection);
    connection.on('error', () => undefined);
  }
  let broken = false;
  const rowsOf = (result: unknown) => (Array.isArray(result) ? (result as Array<Record<string, unknown>>) : []);
  const run = (sql: string, params: readonly unknown[] | undefined) =>
    new Promise<unknown>((resolve, reject) => connection.query(sql, params, (error, result) => (error ? reject(error) : resolve(result))));
  return {
    query: async (sql, params) => rowsOf(await run(sql, params)),
    queryAll: async (statements) => {
      const results = await run(
        statements.map((s) => s.sql).join('; '),
        statements.flatMap((s) => s.params ?? []),
      );
      // Several statements answer with one result per statement.
      return statements.length > 1 ? (results as unknown[]) : [results];
    },
    abort: async () => {
      broken ||= await run('ROLLBACK', undefined).then(
        () => false,
        () => true,
      );
    },
    release: () => (broken ? connection.destroy() : connection.release()),
  };
}
