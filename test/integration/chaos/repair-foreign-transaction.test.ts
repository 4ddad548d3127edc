/**
 * Regression test for a bug the chaos soak found (on the shared PostgreSQL
 * server, where other test files run at the same time): repairing an "extra"
 * row on a PostgreSQL primary waits for every transaction in progress, and it
 * counted transactions of OTHER databases of the same server too. One open
 * transaction anywhere on the server for longer than `reconcile.lockTimeout`
 * postponed every such repair (status `incomplete`, run after run), though a
 * transaction in another database can never write this database's rows.
 *
 * Runs on a private PostgreSQL server of its own (the chaos soak's), so its
 * open transaction cannot slow down other tests' repairs.
 */
import { Client } from 'pg';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { Replicate } from '../../../decorators';
import { DualWrite, reconcile, runMigrations } from '../../../src';
import { privatePostgres, type PrivateServer } from '../../chaos/private-servers';
import { PG } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';

jest.setTimeout(90_000);

function entities(replicated: boolean) {
  @Entity('repair_item')
  class RepairItem {
    @PrimaryColumn({ type: 'int' }) id!: number;
    @Column({ type: 'varchar', length: 40 }) label!: string;
  }
  if (replicated) Replicate({ to: ['t'] })(RepairItem);
  return RepairItem;
}

describe('reconcile --repair of an extra row on a PostgreSQL primary', () => {
  let server: PrivateServer;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> };
  let foreign: Client;
  const prefix = queuePrefix();
  const Item = entities(true);

  beforeAll(async () => {
    server = await privatePostgres();
    const admin = new Client({ host: PG.host, port: server.port, user: PG.username, database: 'postgres' });
    await admin.connect();
    for (const db of ['app', 'replica', 'elsewhere']) await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    const connection = { type: 'postgres' as const, host: PG.host, port: server.port, username: PG.username, synchronize: true, logging: false };
    primary = new DataSource({ ...connection, database: 'app', entities: [Item] });
    target = new DataSource({ ...connection, database: 'replica', entities: [entities(false)] });
    await primary.initialize();
    await target.initialize();
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } });
    worker = await dw.startWorker();
  });

  afterAll(async () => {
    await foreign?.end().catch(() => undefined);
    await worker?.close();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await server?.destroy();
    await removeQueues(prefix);
  });

  it('is not held up by a transaction in another database of the server', async () => {
    await primary.getRepository(Item).save([1, 2, 3].map((id) => ({ id, label: `l${id}` })));
    const deadline = Date.now() + 20_000;
    while (Number((await target.query('SELECT COUNT(*) AS n FROM repair_item'))[0].n) < 3) {
      if (Date.now() > deadline) throw new Error('the worker did not apply the rows');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Drift: a row on the target the primary never had.
    await target.query(`INSERT INTO repair_item (id, label) VALUES (99, 'extra')`);

    // A transaction with an id, open in another database of the same server for the whole run.
    foreign = new Client({ host: PG.host, port: server.port, user: PG.username, database: 'elsewhere' });
    await foreign.connect();
    await foreign.query('BEGIN');
    await foreign.query('SELECT pg_current_xact_id()');

    const [report] = await reconcile(dw, { repair: true, lockTimeout: 500, lagWindow: 50 });
    expect({ status: report.status, extra: report.extra, repaired: report.repaired, hotKeys: report.hotKeys }).toEqual({
      status: 'repaired',
      extra: 1,
      repaired: 1,
      hotKeys: 0,
    });
    const gone = Date.now() + 20_000;
    while (Number((await target.query('SELECT COUNT(*) AS n FROM repair_item WHERE id = 99'))[0].n) > 0) {
      if (Date.now() > gone) throw new Error('the repair did not delete the extra row on the target');
      await new Promise((r) => setTimeout(r, 50));
    }
    await foreign.query('ROLLBACK');
  });
});
