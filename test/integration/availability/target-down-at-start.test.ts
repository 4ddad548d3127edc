/**
 * Availability: a worker started while one of its two targets is unreachable
 * (a database-level outage on the shared server, see faults/outage.ts; the
 * server keeps running for the other tests) starts anyway, serves the other
 * target at once, warns naming the down one (host:port/database, never the
 * password), shows it as not connected in its metrics, and connects to it in
 * the background once it is back: then its queued changes apply. Nothing lost.
 */
import type { DataSource } from 'typeorm';
import { DualWrite, runMigrations } from '../../../src';
import { freePort } from '../../chaos/private-servers';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { LogSink } from '../../support/harness';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { auditOutbox, compareTarget, ledgerVersionMismatches, outboxCount } from '../faults/convergence';
import { targetOutage, type TargetOutage } from '../faults/outage';
import { availabilityEntities, writeItems } from './availability-entities';

jest.setTimeout(120_000);

// The engine of the target that is down (the primary and the other target use the other engine).
describe.each<Engine>(['mariadb', 'postgres'])('worker started while target "b" (%s) is down', (downEngine) => {
  const upEngine: Engine = downEngine === 'mariadb' ? 'postgres' : 'mariadb';
  const source = availabilityEntities(['a', 'b']);
  const replica = availabilityEntities(undefined);
  const prefix = queuePrefix();
  const sink = new LogSink();
  let primaryDb: TestDatabase;
  let aDb: TestDatabase;
  let bDb: TestDatabase;
  let primary: DataSource;
  let a: DataSource;
  let b: DataSource;
  let outage: TargetOutage;
  let bWorkerSide: DataSource;
  let dw: DualWrite;
  let worker: Awaited<ReturnType<DualWrite['startWorker']>> | undefined;

  beforeAll(async () => {
    [primaryDb, aDb, bDb] = await Promise.all([createDatabase(upEngine, 'dwavp'), createDatabase(upEngine, 'dwava'), createDatabase(downEngine, 'dwavb')]);
    primary = dataSource(primaryDb, source.all);
    a = dataSource(aDb, replica.all);
    b = dataSource(bDb, replica.all);
    await Promise.all([primary.initialize(), a.initialize(), b.initialize()]);
    await runMigrations({ primary, targets: { a, b } });
    await auditOutbox(primary); // records every captured change, for the ledger check
    outage = await targetOutage(bDb);
    bWorkerSide = outage.workerDataSource();
    dw = await DualWrite.start({
      primary,
      targets: { a: dataSource(aDb), b: bWorkerSide },
      redis: REDIS,
      queuePrefix: prefix,
      logger: sink.logger,
      retry: { attempts: 30, delay: 100, maxDelay: 2000, jitter: 0 },
      relay: { pollInterval: 300 },
      observability: { metricsPort: await freePort() },
    });
  });

  afterAll(async () => {
    await outage?.end().catch(() => undefined);
    await worker?.close();
    await dw?.close();
    await outage?.dispose();
    await Promise.all([primary, a, b].map((ds) => ds?.destroy()));
    await Promise.all([primaryDb, aDb, bDb].map((db) => db?.drop()));
    await removeQueues(prefix);
  });

  const gauge = async (port: number, target: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return text.match(new RegExp(`^dualwrite_target_connected\\{target="${target}"\\} (\\d+)$`, 'm'))?.[1];
  };

  it('serves target "a" at once, queues "b"\'s changes, and applies them once "b" is back', async () => {
    await outage.begin();
    worker = await dw.startWorker();
    expect(worker.waitingTargets()).toEqual(['b']);
    expect(await gauge(worker.metricsPort!, 'a')).toBe('1');
    expect(await gauge(worker.metricsPort!, 'b')).toBe('0');

    // The warning names the target and where it is, never the password.
    const where = `127.0.0.1:${downEngine === 'mariadb' ? 3306 : 5432}/${bDb.name}`;
    const warning = sink.lines.find((l) => l.level === 40 && String(l.msg).startsWith(`target "b" (${where}) is unreachable`));
    expect(warning?.msg).toContain('changes for "b" wait in its queue');
    const password = (bWorkerSide.options as { password?: string }).password;
    if (password) expect(sink.lines.filter((l) => JSON.stringify(l).includes(password))).toEqual([]);

    await writeItems(primary, source.AvailItem, 1, 301, 'down');
    // Target "a" converges while "b" is still down; "b"'s changes wait in its queue.
    let aComparison = await compareTarget(dw, a, 'a', ['AvailItem']);
    const aConverged = await eventually(async () => (aComparison = await compareTarget(dw, a, 'a', ['AvailItem'])).equal, 30_000, 200);
    expect(aComparison.differences).toEqual([]);
    expect(aConverged).toBe(true);
    expect(await outboxCount(primary)).toBe(0);
    const bQueue = dw.queues.get('b');
    expect(await bQueue.getWaitingCount()).toBeGreaterThan(0);
    // (A PostgreSQL outage closes the database to everyone, this test included: only MariaDB's can be looked into.)
    if (downEngine === 'mariadb') expect(Number((await b.query('SELECT COUNT(*) AS n FROM avail_item'))[0].n)).toBe(0);
    expect(worker.waitingTargets()).toEqual(['b']);

    await outage.end();
    // The background retry connects (1 s, 2 s, 4 s, … apart), starts b's apply worker, and it works off the queue.
    expect(await eventually(async () => worker!.waitingTargets().length === 0, 30_000, 100)).toBe(true);
    expect(sink.lines.some((l) => l.level === 30 && String(l.msg).startsWith('target "b" is reachable: its apply worker started'))).toBe(true);
    await writeItems(primary, source.AvailItem, 301, 341, 'up');
    let bComparison = await compareTarget(dw, b, 'b', ['AvailItem']);
    await eventually(async () => (bComparison = await compareTarget(dw, b, 'b', ['AvailItem'])).equal, 30_000, 200);
    expect(bComparison.differences).toEqual([]);
    expect(bComparison.rows).toBeGreaterThan(250);
    expect((await compareTarget(dw, a, 'a', ['AvailItem'])).differences).toEqual([]);
    expect(await gauge(worker.metricsPort!, 'b')).toBe('1');
    expect((await ledgerVersionMismatches(primary, b, 'b')).problems).toEqual([]);
    expect(await bQueue.getFailedCount()).toBe(0);
  });
});
