/**
 * Produces every error of test/fixtures/driver-errors.ts on the real servers
 * and checks (1) the live error still has the captured shape, so the unit
 * test's table is real, and (2) classifyError puts it in the expected class.
 */
import { createConnection, type Connection } from 'mysql2/promise';
import { Client } from 'pg';
import { classifyError } from '../../../src/errors/classify-error';
import { DRIVER_ERRORS, identity, rebuildDriverError } from '../../fixtures/driver-errors';
import { createDatabase, MARIADB, PG, type TestDatabase } from '../../support/databases';

jest.setTimeout(60_000);

async function raised(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, none was raised');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let pgDb: TestDatabase;
let myDb: TestDatabase;
const open: Array<{ end(): Promise<unknown> }> = [];

async function pgClient(database = pgDb.name): Promise<Client> {
  const c = new Client({ ...PG, user: PG.username, database });
  c.on('error', () => undefined); // terminated clients also emit 'error'
  await c.connect();
  open.push(c);
  return c;
}

async function myConnection(options: { user?: string; password?: string; port?: number; database?: string } = {}): Promise<Connection> {
  const c = await createConnection({
    host: MARIADB.host,
    port: options.port ?? MARIADB.port,
    user: options.user ?? MARIADB.username,
    password: options.password ?? MARIADB.password,
    database: options.database ?? myDb.name,
  });
  c.on('error', () => undefined);
  open.push(c);
  return c;
}

/** Two sessions that lock two rows in opposite order: one of them gets the deadlock error. */
async function deadlock(a: { query(sql: string): Promise<unknown> }, b: { query(sql: string): Promise<unknown> }): Promise<unknown> {
  await a.query('BEGIN');
  await b.query('BEGIN');
  await a.query('UPDATE t SET n = 5 WHERE id = 1');
  await b.query('UPDATE t SET n = 5 WHERE id = 2');
  const first = a.query('UPDATE t SET n = 6 WHERE id = 2').then(() => undefined, (e: unknown) => e);
  await sleep(100);
  const second = b.query('UPDATE t SET n = 6 WHERE id = 1').then(() => undefined, (e: unknown) => e);
  const errors = (await Promise.all([first, second])).filter(Boolean);
  await a.query('ROLLBACK').catch(() => undefined);
  await b.query('ROLLBACK').catch(() => undefined);
  return errors[0];
}

const PRODUCERS: Record<string, () => Promise<unknown>> = {
  'pg unique violation': async () => raised(async () => (await pgClient()).query("INSERT INTO t VALUES (1, 'a', 1)")),
  'pg not-null violation': async () => raised(async () => (await pgClient()).query('INSERT INTO t VALUES (9, NULL, 1)')),
  'pg check violation': async () => raised(async () => (await pgClient()).query("INSERT INTO t VALUES (9, 'a', 0)")),
  'pg value too long': async () => raised(async () => (await pgClient()).query("INSERT INTO t VALUES (9, 'abcd', 1)")),
  'pg invalid input syntax': async () => raised(async () => (await pgClient()).query("SELECT 'x'::int")),
  'pg undefined table': async () => raised(async () => (await pgClient()).query('SELECT * FROM nope')),
  'pg undefined column': async () => raised(async () => (await pgClient()).query('SELECT nope FROM t')),
  'pg syntax error': async () => raised(async () => (await pgClient()).query('selec 1')),
  'pg statement timeout': async () => {
    const c = await pgClient();
    await c.query('SET statement_timeout = 50');
    return raised(() => c.query('SELECT pg_sleep(2)'));
  },
  'pg lock timeout': async () => {
    const [holder, waiter] = [await pgClient(), await pgClient()];
    await holder.query('BEGIN');
    await holder.query('UPDATE t SET n = 2 WHERE id = 1');
    await waiter.query('SET lock_timeout = 50');
    const error = await raised(() => waiter.query('UPDATE t SET n = 3 WHERE id = 1'));
    await holder.query('ROLLBACK');
    return error;
  },
  'pg deadlock': async () => deadlock(await pgClient(), await pgClient()),
  'pg serialization failure': async () => {
    const [a, b] = [await pgClient(), await pgClient()];
    await a.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
    await b.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
    await a.query('SELECT SUM(n) FROM t');
    await b.query('SELECT SUM(n) FROM t');
    await a.query('UPDATE t SET n = n + 1 WHERE id = 1');
    await b.query('UPDATE t SET n = n + 1 WHERE id = 2');
    await a.query('COMMIT');
    return raised(() => b.query('COMMIT'));
  },
  'pg backend terminated during a statement': async () => {
    const [victim, admin] = [await pgClient(), await pgClient()];
    const { rows } = await victim.query('SELECT pg_backend_pid() AS pid');
    const running = raised(() => victim.query('SELECT pg_sleep(5)'));
    await sleep(200);
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
    return running;
  },
  'pg statement on a terminated connection': async () => {
    const [victim, admin] = [await pgClient(), await pgClient()];
    const { rows } = await victim.query('SELECT pg_backend_pid() AS pid');
    await raised(async () => {
      const running = victim.query('SELECT pg_sleep(5)');
      // The victim's error may arrive before the admin's answer: handled from the start, not an unhandled rejection.
      running.catch(() => undefined);
      await sleep(200);
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      await running;
    });
    return raised(() => victim.query('SELECT 1'));
  },
  'pg statement on a client that saw a connection error': async () => {
    const [idle, admin] = [await pgClient(), await pgClient()];
    const { rows } = await idle.query('SELECT pg_backend_pid() AS pid');
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
    await sleep(300);
    return raised(() => idle.query('SELECT 1'));
  },
  'pg connect to a database not accepting connections': async () => {
    const other = await createDatabase('postgres', 'dwerr');
    const admin = await pgClient('postgres');
    await admin.query(`ALTER DATABASE "${other.name}" ALLOW_CONNECTIONS false`);
    try {
      return await raised(() => pgClient(other.name));
    } finally {
      await admin.query(`ALTER DATABASE "${other.name}" ALLOW_CONNECTIONS true`);
      await other.drop();
    }
  },
  'pg connect refused': async () => raised(() => new Client({ host: '127.0.0.1', port: 1, user: 'postgres' }).connect()),

  'mysql duplicate key': async () => raised(async () => (await myConnection()).execute("INSERT INTO t VALUES (1, 'a', 1, NULL)")),
  'mysql not-null violation': async () => raised(async () => (await myConnection()).execute("INSERT INTO t VALUES (9, NULL, 1, NULL)")),
  'mariadb check violation': async () => raised(async () => (await myConnection()).execute("INSERT INTO t VALUES (9, 'a', 0, NULL)")),
  'mariadb invalid JSON in a json column': async () => raised(async () => (await myConnection()).execute("INSERT INTO t VALUES (9, 'a', 1, '{not json')")),
  'mysql data too long': async () => raised(async () => (await myConnection()).execute("INSERT INTO t VALUES (9, 'abcd', 1, NULL)")),
  'mysql incorrect integer value': async () => raised(async () => (await myConnection()).execute("INSERT INTO t VALUES ('x', 'a', 1, NULL)")),
  'mysql no such table': async () => raised(async () => (await myConnection()).execute('SELECT * FROM nope')),
  'mysql unknown column': async () => raised(async () => (await myConnection()).execute('SELECT nope FROM t')),
  'mysql syntax error': async () => raised(async () => (await myConnection()).query('selec 1')),
  'mysql lock wait timeout': async () => {
    const [holder, waiter] = [await myConnection(), await myConnection()];
    await holder.query('BEGIN');
    await holder.query('UPDATE t SET n = 2 WHERE id = 1');
    await waiter.query('SET SESSION innodb_lock_wait_timeout = 1');
    const error = await raised(() => waiter.query('UPDATE t SET n = 3 WHERE id = 1'));
    await holder.query('ROLLBACK');
    return error;
  },
  'mysql deadlock': async () => deadlock(await myConnection(), await myConnection()),
  'mysql statement killed (KILL QUERY)': async () => {
    const [victim, admin] = [await myConnection(), await myConnection()];
    const [[{ id }]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    const running = raised(() => victim.query('SELECT SLEEP(5) FROM t'));
    await sleep(200);
    await admin.query(`KILL QUERY ${Number(id)}`);
    return running;
  },
  'mariadb max_statement_time exceeded': async () =>
    raised(async () => (await myConnection()).query('SET STATEMENT max_statement_time = 0.05 FOR SELECT SLEEP(2) FROM t')),
  'mysql connection killed during a statement': async () => {
    const [victim, admin] = [await myConnection(), await myConnection()];
    const [[{ id }]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    const running = raised(() => victim.query('SELECT SLEEP(5)'));
    await sleep(200);
    await admin.query(`KILL CONNECTION ${Number(id)}`);
    return running;
  },
  'mysql statement on a closed connection': async () => {
    const [victim, admin] = [await myConnection(), await myConnection()];
    const [[{ id }]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    await admin.query(`KILL CONNECTION ${Number(id)}`);
    await sleep(300);
    return raised(() => victim.query('SELECT 1'));
  },
  'mariadb connect to a locked account': async () => {
    const admin = await myConnection();
    const user = `dwerr_${process.pid}_${Date.now() % 1e6}`;
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw' ACCOUNT LOCK`);
    try {
      return await raised(() => myConnection({ user, password: 'pw' }));
    } finally {
      await admin.query(`DROP USER '${user}'@'%'`);
    }
  },
  'mysql connect refused': async () => raised(() => myConnection({ port: 1 })),
};

beforeAll(async () => {
  pgDb = await createDatabase('postgres', 'dwerr');
  myDb = await createDatabase('mariadb', 'dwerr');
  const pg = await pgClient();
  await pg.query('CREATE TABLE t (id int PRIMARY KEY, v varchar(3) NOT NULL, n int CHECK (n > 0))');
  await pg.query("INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 1)");
  const my = await myConnection();
  await my.query('CREATE TABLE t (id int PRIMARY KEY, v varchar(3) NOT NULL, n int CHECK (n > 0), doc json NULL) ENGINE=InnoDB');
  await my.query("INSERT INTO t VALUES (1, 'a', 1, NULL), (2, 'b', 1, NULL)");
});

afterEach(async () => {
  for (const c of open.splice(0)) await c.end().catch(() => undefined);
});

afterAll(async () => {
  await pgDb?.drop();
  await myDb?.drop();
});

describe.each(DRIVER_ERRORS.map((c) => [c.id, c] as const))('%s', (id, c) => {
  it(`is raised with the captured shape and classified ${c.expected.class} (${c.expected.reason})`, async () => {
    const produce = PRODUCERS[id];
    expect(produce).toBeDefined();
    const live = await produce();
    expect(identity(live)).toEqual(identity(rebuildDriverError(c)));
    expect(classifyError(live)).toMatchObject(c.expected);
  });
});
