/**
 * Fault test: the worker process is SIGKILLed twice while it applies the SAME
 * job (the target is slow: a test session holds a lock the apply waits for).
 * A kill at any point must delay a change, never drop it (invariant 2): after
 * the lock is released, the third worker applies the job.
 */
import type { Job, Queue } from 'bullmq';
import type { DataSource, QueryRunner } from 'typeorm';
import { DualWrite, LEDGER_TABLE, runMigrations } from '../../../src';
import { faultEntities } from '../../fixtures/fault-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { WorkerProcess } from './worker-process';

jest.setTimeout(90_000);

describe('a job whose worker is killed twice while applying it (postgres → postgres)', () => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let queue: Queue;
  let locker: QueryRunner | undefined;
  const workers: WorkerProcess[] = [];

  const spawnWorker = () => {
    const w = WorkerProcess.spawn({
      DW_PRIMARY_ENGINE: 'postgres',
      DW_PRIMARY_DB: primaryDb.name,
      DW_TARGET_ENGINE: 'postgres',
      DW_TARGET_DB: targetDb.name,
      DW_PREFIX: prefix,
      DW_LOCK_DURATION: '2000',
    });
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    primaryDb = await createDatabase('postgres', 'dwsp');
    targetDb = await createDatabase('postgres', 'dwst');
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all);
    await primary.initialize();
    await target.initialize();
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } });
    queue = dw.queues.get('t');
  });

  afterAll(async () => {
    if (locker?.isTransactionActive) await locker.rollbackTransaction().catch(() => undefined);
    await locker?.release();
    for (const w of workers) await w.kill();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  async function theJob(): Promise<Job | undefined> {
    const jobs = await queue.getJobs(['active', 'wait', 'delayed', 'failed', 'completed'], 0, 10);
    return jobs[0];
  }

  it('still applies the job', async () => {
    // The apply blocks on the ledger until the lock is released.
    locker = target.createQueryRunner();
    await locker.connect();
    await locker.startTransaction();
    await locker.query(`LOCK TABLE "${LEDGER_TABLE}" IN ACCESS EXCLUSIVE MODE`);

    await primary.getRepository(source.FaultItem).save({ id: 1, label: 'survivor', qty: 1, note: null });
    await dw.flush();

    for (let kill = 1; kill <= 2; kill++) {
      const w = spawnWorker();
      // Active in THIS worker: after the first kill the job comes back (stalled) only once its lock expired.
      const active = await eventually(async () => {
        const job = await theJob();
        return (await job?.getState()) === 'active' && (await queue.getWorkersCount()) > 0 && Number(job?.stalledCounter ?? 0) >= kill - 1;
      }, 30_000, 50);
      expect(active).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      await w.kill();
    }
    const last = spawnWorker();
    await eventually(async () => Number((await theJob())?.stalledCounter ?? 0) >= 2, 30_000, 100);
    await locker.rollbackTransaction();

    const settled = await eventually(async () => ['completed', 'failed'].includes(String(await (await theJob())?.getState())) || (await theJob()) === undefined, 30_000, 100);
    const job = await theJob();
    const rows = await target.query('SELECT label FROM fault_item WHERE id = 1');
    if (rows.length === 0) process.stderr.write(`job ${job?.id}: ${await job?.getState()} ${job?.failedReason ?? ''}\n${last.output()}\n`);
    expect(settled).toBe(true);
    expect(await queue.getFailedCount()).toBe(0);
    expect(rows).toEqual([{ label: 'survivor' }]);
  });
});
