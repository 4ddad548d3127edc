/**
 * Availability: Redis loses its data while changes wait in it (DESIGN.md §3
 * invariant 2: "delays a change, never drops it"). Runs on a PRIVATE
 * redis-server without persistence (never the shared 6379). Two workers;
 * their target is made unreachable (faults/outage.ts) so the relayed changes
 * sit in the queue; then Redis is flushed (or crash-restarted), the target
 * comes back, and the target must converge to the primary with no manual
 * reconcile: the workers notice the lost epoch key, put the reconcile
 * schedule back and run ONE reconcile with repair between them. Also with
 * `reconcile.every: 0` (the recovery run does not depend on the schedule).
 */
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import type { DataSource } from 'typeorm';
import { DualWrite, RECONCILE_QUEUE, runMigrations } from '../../../src';
import { epochKey } from '../../../src/worker/redis-epoch';
import { privateRedis, type PrivateServer } from '../../chaos/private-servers';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { LogSink } from '../../support/harness';
import { queuePrefix } from '../../support/redis';
import { compareTarget, outboxCount } from '../faults/convergence';
import { targetOutage, type TargetOutage } from '../faults/outage';
import { availabilityEntities, writeItems } from './availability-entities';

jest.setTimeout(120_000);

const CASES: Array<{ every: number; loss: 'FLUSHALL' | 'crash-restart' }> = [
  { every: 60_000, loss: 'FLUSHALL' },
  { every: 0, loss: 'crash-restart' },
];

describe.each(CASES)('Redis loses its data (reconcile.every $every, $loss)', ({ every, loss }) => {
  const source = availabilityEntities(['t']);
  const replica = availabilityEntities(undefined);
  const prefix = queuePrefix();
  const sink = new LogSink();
  let redisServer: PrivateServer;
  let redis: IORedis;
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let outage: TargetOutage;
  const dws: DualWrite[] = [];
  const workers: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    redisServer = await privateRedis();
    redis = new IORedis({ host: '127.0.0.1', port: redisServer.port, maxRetriesPerRequest: null });
    [primaryDb, targetDb] = await Promise.all([createDatabase('postgres', 'dwrlp'), createDatabase('mariadb', 'dwrlt')]);
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all);
    await Promise.all([primary.initialize(), target.initialize()]);
    await runMigrations({ primary, targets: { t: target } });
    outage = await targetOutage(targetDb);
    // Two workers, as two processes would be: the second has its own primary DataSource (nothing writes through it).
    for (const primarySide of [primary, dataSource(primaryDb, source.all)]) {
      dws.push(
        await DualWrite.start({
          primary: primarySide,
          targets: { t: outage.workerDataSource() },
          redis: { host: '127.0.0.1', port: redisServer.port },
          queuePrefix: prefix,
          logger: sink.logger,
          retry: { attempts: 1000, delay: 100, maxDelay: 1000, jitter: 0 },
          relay: { pollInterval: 300 },
          reconcile: { every, repair: true, lagWindow: 200 },
        }),
      );
    }
  });

  afterAll(async () => {
    await outage?.end().catch(() => undefined);
    for (const w of workers) await w.close();
    for (const dw of dws) await dw.close();
    redis?.disconnect();
    await outage?.dispose();
    await primary?.destroy();
    await target?.destroy();
    await Promise.all([primaryDb, targetDb].map((db) => db?.drop()));
    await redisServer?.destroy();
  });

  it('re-creates the schedule and repairs the target on its own, with one recovery run across workers', async () => {
    for (const dw of dws) workers.push(await dw.startWorker({ redisCheckInterval: 300 }));
    const [dw] = dws;
    const epochBefore = await redis.get(epochKey(prefix));
    expect(epochBefore).toBeTruthy();
    const reconcileQueue = new Queue(RECONCILE_QUEUE, { connection: { host: '127.0.0.1', port: redisServer.port, maxRetriesPerRequest: null }, prefix });
    try {
      expect(await reconcileQueue.getJobSchedulersCount()).toBe(every > 0 ? 1 : 0);

      // Applied normally first.
      await writeItems(primary, source.AvailItem, 1, 101, 'before');
      expect(await eventually(async () => (await compareTarget(dw, target, 't', ['AvailItem'])).equal, 30_000, 200)).toBe(true);

      // The target goes away: the next changes are relayed and wait in Redis.
      await outage.begin();
      await writeItems(primary, source.AvailItem, 1, 251, 'queued');
      const queue = dw.queues.get('t');
      const pending = async () => Object.values(await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized')).reduce((n, c) => n + c, 0);
      expect(await eventually(async () => (await outboxCount(primary)) === 0 && (await pending()) > 0, 30_000, 100)).toBe(true);
      const lostJobs = await pending();

      // Redis loses everything it held: the queued jobs, the schedule, the epoch key.
      const lostAt = Date.now();
      if (loss === 'FLUSHALL') await redis.flushall();
      else {
        await redisServer.stop();
        await redisServer.start();
      }
      expect(await pending()).toBe(0);
      expect(await reconcileQueue.getJobSchedulersCount()).toBe(0);

      // Each worker notices and says so, at error level.
      const noticed = await eventually(async () => sink.lines.some((l) => l.level === 50 && String(l.msg).startsWith('Redis lost its data')), 20_000, 100);
      expect(noticed).toBe(true);
      const noticedAfter = Date.now() - lostAt;
      const epochAfter = await redis.get(epochKey(prefix));
      expect(epochAfter).toBeTruthy();
      expect(epochAfter).not.toBe(epochBefore);

      // The target comes back; no reconcile is run by hand.
      await outage.end();
      const backAt = Date.now();
      let comparison = await compareTarget(dw, target, 't', ['AvailItem']);
      await eventually(async () => (comparison = await compareTarget(dw, target, 't', ['AvailItem'])).equal, 60_000, 300);
      expect({ lostJobs: lostJobs > 0, differences: comparison.differences }).toEqual({ lostJobs: true, differences: [] });
      if (process.env.DW_AVAIL_VERBOSE) {
        process.stderr.write(`${loss}: ${lostJobs} queued jobs lost; noticed after ${noticedAfter} ms (check every 300 ms); target converged ${Date.now() - backAt} ms after it came back\n`);
      }

      // The schedule is back (when there is one), and the two workers ran ONE recovery reconcile between them.
      expect(await reconcileQueue.getJobSchedulersCount()).toBe(every > 0 ? 1 : 0);
      const recoveries = async () => (await reconcileQueue.getJobs(['completed', 'active', 'wait', 'delayed', 'failed'])).filter((j) => j.name === 'recovery');
      const completed = await eventually(async () => (await reconcileQueue.getJobs(['completed'])).some((j) => j.name === 'recovery'), 20_000, 100);
      expect({ completed, jobs: (await recoveries()).map((j) => ({ id: j.id, attempts: j.attemptsMade, failedReason: j.failedReason })) }).toMatchObject({ completed: true });
      expect((await recoveries()).map((j) => j.id)).toEqual([`recovery-${epochAfter}`]);
      expect(sink.lines.some((l) => String(l.msg).startsWith('recovery reconcile after Redis data loss'))).toBe(true);
    } finally {
      await reconcileQueue.close();
    }
  });
});
