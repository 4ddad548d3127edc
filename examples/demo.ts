/**
 * `npm run demo`: the whole pipeline against the local services.
 * Creates the demo databases, runs `dualwrite migrate`, starts a
 * `dualwrite worker` process, then saves, updates and deletes a few entities
 * in PostgreSQL and prints them arriving in MariaDB and PostgreSQL targets.
 */
import 'reflect-metadata';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { DualWrite } from 'typeorm-dualwrite';
import config, { analytics, primary, reporting } from '../ormconfig';
import { Customer, Order } from './entities';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'dualwrite.js');

async function ensureDatabases(): Promise<void> {
  const pgOptions = primary.options as { host?: string; port?: number; username?: string; password?: string; database?: string };
  const admin = new Client({ host: pgOptions.host, port: pgOptions.port, user: pgOptions.username, password: pgOptions.password, database: 'postgres' });
  await admin.connect();
  for (const name of [pgOptions.database, (analytics.options as { database?: string }).database]) {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${name}"`);
  }
  await admin.end();
  const m = reporting.options as { host?: string; port?: number; username?: string; password?: string; database?: string };
  const maria = await createConnection({ host: m.host, port: m.port, user: m.username, password: m.password });
  await maria.query(`CREATE DATABASE IF NOT EXISTS \`${m.database}\``);
  await maria.end();
}

/** The analytics store's tables are the user's own; orders land under another name there. */
async function ensureAnalyticsTables(): Promise<void> {
  await analytics.initialize();
  await analytics.query(`CREATE TABLE IF NOT EXISTS demo_customer (code varchar(20) PRIMARY KEY, name varchar(80) NOT NULL, "cardToken" varchar(64))`);
  await analytics.query(`CREATE TABLE IF NOT EXISTS orders_replica (
    id int PRIMARY KEY, "customerCode" varchar(20) NOT NULL, total numeric(12,2) NOT NULL,
    status varchar(16) NOT NULL, "createdAt" timestamp(3) NOT NULL, "updatedAt" timestamp(3) NOT NULL)`);
  await analytics.destroy();
}

function cli(args: string[]): void {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`dualwrite ${args.join(' ')} exited with ${result.status}`);
}

async function rows(ds: DataSource, table: string): Promise<string> {
  const q = ds.options.type === 'postgres' ? '"' : '`';
  const list = (await ds.query(`SELECT * FROM ${q}${table}${q} ORDER BY 1`)) as Array<Record<string, unknown>>;
  return list.map((r) => JSON.stringify(r, (_k, v) => (v instanceof Date ? v.toISOString() : v))).join('\n      ') || '(none)';
}

async function show(step: string): Promise<void> {
  process.stdout.write(`\n== ${step}\n`);
  for (const [name, ds, orders] of [
    ['primary   (PostgreSQL)', primary, 'demo_order'],
    ['reporting (MariaDB)   ', reporting, 'demo_order'],
    ['analytics (PostgreSQL)', analytics, 'orders_replica'],
  ] as const) {
    process.stdout.write(`  ${name}\n    customers: ${await rows(ds, 'demo_customer')}\n    orders:    ${await rows(ds, orders)}\n`);
  }
}

/** Waits until both targets hold what the primary holds (or 15 s pass). */
async function settle(): Promise<number> {
  const started = Date.now();
  const expected = async () => `${await rows(primary, 'demo_customer')}|${await rows(primary, 'demo_order')}`;
  const strip = (s: string) => s.replace(/,"cardToken":[^,}]*/g, '');
  for (;;) {
    const want = strip(await expected());
    const gotReporting = strip(`${await rows(reporting, 'demo_customer')}|${await rows(reporting, 'demo_order')}`);
    const gotAnalytics = strip(`${await rows(analytics, 'demo_customer')}|${await rows(analytics, 'orders_replica')}`);
    if (want === gotReporting && want === gotAnalytics.replace(/"total":"(\d+\.\d+)"/g, '"total":"$1"')) return Date.now() - started;
    if (Date.now() - started > 15_000) throw new Error('targets did not catch up within 15 s: is the worker running?');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  process.stdout.write('typeorm-dualwrite demo: PostgreSQL primary → MariaDB "reporting" + PostgreSQL "analytics"\n');
  await ensureDatabases();
  await ensureAnalyticsTables();
  await reporting.initialize(); // synchronize creates the reporting tables from the entities
  await reporting.destroy();

  process.stdout.write('\n$ dualwrite migrate\n');
  cli(['migrate']);

  process.stdout.write('\n$ dualwrite worker   (a separate process, as operators run it)\n');
  const worker: ChildProcess = spawn(process.execPath, [CLI, 'worker'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });

  const dw = await DualWrite.start(config);
  await analytics.initialize();
  await reporting.initialize();
  try {
    const customers = primary.getRepository(Customer);
    const orders = primary.getRepository(Order);
    // Start from empty tables (a previous run's rows), deleted through the captured path.
    await orders.remove(await orders.find());
    await customers.remove(await customers.find());
    await settle();

    await customers.save({ code: 'ADA', name: 'Ada Lovelace', cardToken: 'tok_secret_ada' });
    const first = await orders.save(orders.create({ customerCode: 'ADA', total: '120.00' }));
    const second = await orders.save(orders.create({ customerCode: 'ADA', total: '35.50' }));
    await show(`saved a customer and two orders (applied in ${await settle()} ms)`);

    await primary.transaction(async (m) => {
      await m.save(Order, { ...first, status: 'paid' });
      await m.save(Order, { ...second, total: '36.00' });
    });
    await show(`updated both orders in one transaction (applied in ${await settle()} ms)`);

    await orders.remove(await orders.findOneByOrFail({ id: second.id }));
    await show(`deleted the second order (applied in ${await settle()} ms)`);

    await primary.transaction(async (m) => {
      await m.save(Order, { customerCode: 'ADA', total: '999.99' });
      throw new Error('rolled back on purpose');
    }).catch(() => undefined);
    await show(`a rolled-back transaction reached no target (${await settle()} ms)`);
    process.stdout.write('\nThe @NotReplicated cardToken stayed in the primary: the targets hold NULL there.\n');
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    await dw.close();
    await analytics.destroy();
    await reporting.destroy();
    if (primary.isInitialized) await primary.destroy();
  }
  process.stdout.write('\nworker stopped (SIGTERM: in-flight jobs finished). Demo done.\n');
}

main().catch((error) => {
  process.stderr.write(`demo failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
