import { Queue } from 'bullmq';
import { readReconcileHistory, readReconcileReports, RECONCILE_QUEUE, startReconcileScheduler } from '../../../src';
import { faultEntities } from '../../fixtures/fault-entities';
import { eventually } from '../../support/compare';
import { REDIS } from '../../support/redis';
import { pairFixture, type PairFixture } from './pair-fixture';

/** Reconcile runs scheduled inside the worker through a BullMQ job scheduler; `every: 0` turns them off. */
describe('scheduled reconcile', () => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  let f: PairFixture;
  let queue: Queue;

  beforeAll(async () => {
    f = await pairFixture('postgres', 'mariadb', source.all, replica.all, { reconcile: { every: 700, repair: true, lagWindow: 50 } });
    await f.startWorker();
    queue = new Queue(RECONCILE_QUEUE, { connection: { ...REDIS, maxRetriesPerRequest: null }, prefix: f.prefix });
    await f.primary.getRepository(source.FaultItem).save([1, 2, 3].map((id) => ({ id, label: `l${id}`, qty: id, note: null })));
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });

  afterAll(async () => {
    await queue?.close();
    await f?.cleanup();
  });

  it('finds and repairs drift on its own, one run at a time across workers, and stores the reports', async () => {
    await f.target.query('DELETE FROM `fault_item` WHERE id = 2');
    // Two worker processes' worth of schedulers: one schedule, each run processed by one of them.
    const a = await startReconcileScheduler(f.dw);
    const b = await startReconcileScheduler(f.dw);
    try {
      expect(await queue.getJobSchedulersCount()).toBe(1);
      expect((await f.converged(['FaultItem'], 20_000)).differences).toEqual([]);
      const reports = await readReconcileReports(f.dw.redis, f.prefix, { entity: 'FaultItem' });
      expect(reports).toHaveLength(1);
      const history = await readReconcileHistory(f.dw.redis, f.prefix);
      expect(history.some((r) => r.entity === 'FaultItem' && r.status === 'repaired' && r.missing === 1 && r.repaired === 1)).toBe(true);
      // Each scheduled run reconciles both entities once: the history holds whole runs.
      await eventually(async () => (await readReconcileHistory(f.dw.redis, f.prefix)).length >= 6, 10_000);
      const runs = await readReconcileHistory(f.dw.redis, f.prefix, 200);
      const byEntity = runs.reduce<Record<string, number>>((m, r) => ({ ...m, [r.entity]: (m[r.entity] ?? 0) + 1 }), {});
      expect(Math.abs(byEntity.FaultItem - byEntity.FaultPair)).toBeLessThanOrEqual(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('every: 0 removes the schedule', async () => {
    const off = await startReconcileScheduler(f.dw, { every: 0 });
    await off.close();
    expect(await queue.getJobSchedulersCount()).toBe(0);
  });
});
