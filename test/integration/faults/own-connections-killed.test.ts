/**
 * The library's own connections (`DriverConnections`: the relay's on the
 * primary, the apply's on a MySQL/MariaDB target) when the server ends a
 * session while the library holds it between two statements, as the relay
 * does while it waits for Redis inside its claim transaction: the process
 * must not die of the driver's 'error' event (it did, on PostgreSQL, in a
 * chaos soak that killed the workers' primary sessions), the next statement
 * on that connection fails, and the next `run` gets a working connection.
 */
import type { DataSource } from 'typeorm';
import { DriverConnections } from '../../../src/dialect/driver-connections';
import { createDatabase, dataSource, ENGINES, type TestDatabase } from '../../support/databases';

jest.setTimeout(60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(ENGINES)('own connections on %s, their session killed between statements', (engine) => {
  let db: TestDatabase;
  let admin: DataSource;
  let connections: DriverConnections;

  beforeAll(async () => {
    db = await createDatabase(engine, 'dwkill');
    admin = dataSource(db);
    await admin.initialize();
    connections = new DriverConnections(admin, engine === 'postgres' ? 'postgres' : 'mysql', 1);
  });

  afterAll(async () => {
    await connections?.end();
    await admin?.destroy();
    await db?.drop();
  });

  it('keeps the process alive, fails the next statement, and hands out a working connection afterwards', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const session = engine === 'postgres' ? 'SELECT pg_backend_pid() AS id' : 'SELECT CONNECTION_ID() AS id';
      const failed = await connections.run(async (connection) => {
        const [{ id }] = await connection.query(session);
        await connection.query(engine === 'postgres' ? 'BEGIN' : 'START TRANSACTION');
        await admin.query(engine === 'postgres' ? `SELECT pg_terminate_backend(${Number(id)})` : `KILL ${Number(id)}`);
        // The server closes the session now; the driver learns of it while no statement runs.
        await sleep(500);
        return connection.query('SELECT 1 AS one').then(() => undefined, (error: unknown) => error);
      });
      expect(failed).toBeInstanceOf(Error);
      expect(await connections.run((connection) => connection.query('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
