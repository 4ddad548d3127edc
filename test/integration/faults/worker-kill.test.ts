/**
 * Fault test: the `dualwrite worker` process is SIGKILLed five times at random
 * moments while 20,000 changes stream through, and restarted each time.
 * Invariant 2 (no loss), 3 and 4 (idempotent, order-safe apply): at the end the
 * target equals the primary, every ledger entry holds its row's last captured
 * version and agrees with the target's rows, and no job failed.
 *
 * Needs `npm run build` first (`npm test` does it): the worker runs the
 * compiled CLI with dist/test/fixtures/worker-config.js.
 */
import type { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { DualWrite, runMigrations } from '../../../src';
import { faultEntities } from '../../fixtures/fault-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { streamChanges } from './change-stream';
import { auditOutbox, compareTarget, ledgerMismatches, ledgerVersionMismatches, outboxCount } from './convergence';
import { WorkerProcess } from './worker-process';

const ALL_PAIRS: Array<[Engine, Engine]> = [
  ['postgres', 'mariadb'],
  ['mariadb', 'postgres'],
  ['postgres', 'postgres'],
  ['mariadb', 'mariadb'],
];
// About 20 s per pair here; DW_FAULT_PAIRS=cross runs only the cross-engine pairs.
const PAIRS = process.env.DW_FAULT_PAIRS === 'cross' ? ALL_PAIRS.slice(0, 2) : ALL_PAIRS;
const TOTAL = Number(process.env.DW_FAULT_CHANGES ?? 20_000);
const KILLS = 5;
const ENTITY_NAMES = ['FaultItem', 'FaultPair'];

jest.setTimeout(150_000);

describe.each(PAIRS)('worker SIGKILL ×5 during a %s → %s stream', (primaryEngine, targetEngine) => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let queue: Queue;
  let worker: WorkerProcess | undefined;
  const log: string[] = [];
  const started = Date.now();
  const note = (line: string) => log.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${line}`);

  const spawnWorker = () =>
    WorkerProcess.spawn({
      DW_PRIMARY_ENGINE: primaryEngine,
      DW_PRIMARY_DB: primaryDb.name,
      DW_TARGET_ENGINE: targetEngine,
      DW_TARGET_DB: targetDb.name,
      DW_PREFIX: prefix,
      DW_LOCK_DURATION: '2000',
    });

  /** The child's BullMQ worker is connected (a SIGKILLed one's connection is gone at once). */
  async function workerReady(child: WorkerProcess): Promise<boolean> {
    return eventually(async () => !child.running || (await queue.getWorkersCount()) > 0, 30_000, 50).then((ok) => ok && child.running);
  }

  beforeAll(async () => {
    primaryDb = await createDatabase(primaryEngine, 'dwkp');
    targetDb = await createDatabase(targetEngine, 'dwkt');
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all);
    await primary.initialize();
    await target.initialize();
    await runMigrations({ primary, targets: { t: target } });
    await auditOutbox(primary);
    // Captures and relays in this process; applying is the child's job only.
    dw = await DualWrite.start({
      primary,
      targets: { t: target },
      redis: REDIS,
      queuePrefix: prefix,
      logger: { level: 'silent' },
      retry: { attempts: 25, delay: 100, maxDelay: 2000, jitter: 0.2 },
    });
    queue = dw.queues.get('t');
  });

  afterAll(async () => {
    await worker?.kill();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  it('loses nothing and applies nothing twice', async () => {
    const seed = Number(process.env.DW_FAULT_SEED ?? Date.now() % 2 ** 31);
    note(`seed ${seed}`);
    const random = (() => {
      let s = seed ^ 0x5bd1e995;
      return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    })();
    // Kill points: random, spread over the stream (one per fifth, anywhere in it).
    const thresholds = Array.from({ length: KILLS }, (_, i) => Math.floor(TOTAL * ((i + 0.1 + random() * 0.8) / KILLS)));
    let committed = 0;
    let streamDone = false;

    worker = spawnWorker();
    const chaos = (async () => {
      for (let k = 0; k < KILLS; k++) {
        await eventually(async () => committed >= thresholds[k] || streamDone, 120_000, 20);
        if (!(await workerReady(worker!))) throw new Error(`worker did not start:\n${worker!.output()}`);
        await new Promise((r) => setTimeout(r, random() * 700));
        // Prefer a moment when a job is being applied (they take milliseconds), but do not wait long for one.
        await eventually(async () => (await queue.getActiveCount()) > 0, 1500, 5);
        const counts = await queue.getJobCounts('active', 'wait', 'delayed');
        await worker!.kill();
        note(`kill ${k + 1} at ${committed} committed changes (active ${counts.active}, waiting ${counts.wait}, delayed ${counts.delayed})`);
        worker = spawnWorker();
      }
    })();

    const stats = await streamChanges(primary, source, {
      total: TOTAL,
      seed,
      onCommit: (n) => {
        committed = n;
      },
    });
    streamDone = true;
    note(`stream done: ${JSON.stringify(stats)}`);
    await chaos;
    expect(stats.changes).toBe(TOTAL);

    // The last worker drains everything, including jobs the killed ones held (after their locks expire).
    const drained = await eventually(
      async () => {
        const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'prioritized');
        return Object.values(counts).every((n) => n === 0) && (await outboxCount(primary)) === 0;
      },
      90_000,
      250,
    );
    note(`drained: ${drained}`);
    let comparison = await compareTarget(dw, target, 't', ENTITY_NAMES);
    if (!comparison.equal) {
      await eventually(async () => (comparison = await compareTarget(dw, target, 't', ENTITY_NAMES)).equal, 20_000, 500);
    }
    note(`compared ${comparison.rows} rows`);
    const failed = await queue.getJobs(['failed'], 0, 20);
    const report = [...log, ...comparison.differences, ...failed.map((j) => `failed job ${j.id}: ${j.failedReason}`)].join('\n');
    if (process.env.DW_FAULT_VERBOSE) process.stderr.write(`${report}\n`);
    else if (!comparison.equal || failed.length > 0) process.stderr.write(`${report}\nworker output:\n${worker!.output()}\n`);

    expect(comparison.differences).toEqual([]);
    expect(comparison.equal).toBe(true);
    expect(comparison.rows).toBeGreaterThan(1000);
    expect(await queue.getFailedCount()).toBe(0);
    expect(await ledgerMismatches(dw, target, 't', ENTITY_NAMES)).toEqual([]);
    // Nothing applied out of turn or twice: each ledger entry holds its row's last captured version.
    const ledger = await ledgerVersionMismatches(primary, target, 't');
    expect(ledger.problems).toEqual([]);
    expect(ledger.rows).toBeGreaterThan(comparison.rows);
    expect(log.filter((l) => l.includes(' kill '))).toHaveLength(KILLS);
  });
});
