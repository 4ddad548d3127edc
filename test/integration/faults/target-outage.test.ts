/**
 * Fault test: the target becomes unreachable in the middle of a stream and
 * comes back a few seconds later. The shared database server keeps running
 * (other test files use it): only this test's target database is closed to
 * the worker (see outage.ts).
 *
 * Proves: every failure the outage causes is classified transient; jobs are
 * retried with exponential backoff (retry.delay 100 ms, jitter 0: 100, 200,
 * 400, … ms, each at least the previous); once the target is back everything
 * applies; nothing is lost (target = primary) and nothing is applied out of
 * turn or twice (each ledger row holds the version of its row's LAST change).
 */
import type { DataSource } from 'typeorm';
import { DualWrite, runMigrations } from '../../../src';
import { faultEntities } from '../../fixtures/fault-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { LogSink } from '../../support/harness';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { streamChanges } from './change-stream';
import { auditOutbox, compareTarget, ledgerVersionMismatches, outboxCount } from './convergence';
import { queueEvents, retriesByJob } from './job-events';
import { targetOutage, type TargetOutage } from './outage';

// [primary, target]: each target engine once.
const PAIRS: Array<[Engine, Engine]> = [
  ['mariadb', 'postgres'],
  ['postgres', 'mariadb'],
];
const TOTAL = 4000;
const RETRY = { attempts: 30, delay: 100, maxDelay: 20_000, jitter: 0 };
const ENTITY_NAMES = ['FaultItem', 'FaultPair'];
/** Redis time vs the worker's Date.now() (one clock here, rounding only). */
const CLOCK_SLACK = 30;
/** The worker computes the run-at time before Redis records the event: that latency shortens `scheduled`. */
const LATENCY_SLACK = 200;

jest.setTimeout(120_000);

describe.each(PAIRS)('target outage %s → %s', (primaryEngine, targetEngine) => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  const prefix = queuePrefix();
  const sink = new LogSink();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let outage: TargetOutage;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    primaryDb = await createDatabase(primaryEngine, 'dwop');
    targetDb = await createDatabase(targetEngine, 'dwot');
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all); // the test's own view of the target: schema and checks
    await primary.initialize();
    await target.initialize();
    await runMigrations({ primary, targets: { t: target } });
    await auditOutbox(primary);
    outage = await targetOutage(targetDb);
    dw = await DualWrite.start({
      primary,
      targets: { t: outage.workerDataSource() },
      redis: REDIS,
      queuePrefix: prefix,
      logger: sink.logger,
      retry: RETRY,
      relay: { pollInterval: 500 },
    });
  });

  afterAll(async () => {
    await outage?.end().catch(() => undefined);
    await worker?.close();
    await dw?.close();
    await outage?.dispose();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  it('retries with growing delays while the target is down, then applies everything exactly once in effect', async () => {
    const queue = dw.queues.get('t');
    worker = await dw.startWorker();

    const seed = Number(process.env.DW_FAULT_SEED ?? Date.now() % 2 ** 31);
    let committed = 0;
    const stream = streamChanges(primary, source, { total: TOTAL, seed, onCommit: (n) => void (committed = n) });

    await eventually(async () => committed >= TOTAL / 4, 60_000, 20);
    // Best effort: cut the target while a job is being applied, so running statements fail too.
    await eventually(async () => (await queue.getActiveCount()) > 0, 2000, 2);
    const down = Date.now();
    await outage.begin();
    // Down until some job has failed five times (retries of 100+200+400+800 ms) and at least 3 s passed.
    const retried = await eventually(
      async () => {
        if (Date.now() - down < 3000) return false;
        const jobs = await queue.getJobs(['delayed', 'wait', 'active'], 0, 200);
        return jobs.some((j) => j.attemptsMade >= 5);
      },
      45_000,
      100,
    );
    await outage.end();
    const upAfter = Date.now() - down;
    const stats = await stream;
    expect(retried).toBe(true);
    expect(stats.changes).toBe(TOTAL);

    const drained = await eventually(
      async () => {
        const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'prioritized');
        return Object.values(counts).every((n) => n === 0) && (await outboxCount(primary)) === 0;
      },
      60_000,
      200,
    );
    expect(drained).toBe(true);

    // Nothing lost.
    let comparison = await compareTarget(dw, target, 't', ENTITY_NAMES);
    if (!comparison.equal) await eventually(async () => (comparison = await compareTarget(dw, target, 't', ENTITY_NAMES)).equal, 10_000, 500);
    expect(comparison.differences).toEqual([]);
    expect(await queue.getFailedCount()).toBe(0);

    // Nothing applied out of turn or twice: each ledger entry holds its row's last captured version.
    const ledger = await ledgerVersionMismatches(primary, target, 't');
    expect(ledger.problems).toEqual([]);
    expect(ledger.rows).toBeGreaterThan(comparison.rows);

    // Every apply failure was transient.
    const failures = sink.lines.filter((l) => String(l.msg).startsWith('apply failed'));
    const kinds = new Map<string, number>();
    for (const l of failures) {
      const f = l.failure as { class: string; reason: string; code?: string };
      const kind = `${f.class} ${f.reason}${f.code ? ` ${f.code}` : ''}: ${String(l.msg).replace(/^apply failed: \S+ \S+( \([^)]*\))?: /, '').replace(/"[^"]*"/g, '"…"')}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    expect(failures.length).toBeGreaterThan(0);
    expect([...kinds.keys()].filter((k) => !k.startsWith('transient '))).toEqual([]);

    // Backoff: what the worker scheduled is exactly delay·2^(n−1) (jitter 0) and never shrinks;
    // the job never ran again earlier than that, and not absurdly later.
    const retries = retriesByJob(await queueEvents(prefix, 't'));
    const long = [...retries.values()].filter((r) => r.length >= 4);
    expect(long.length).toBeGreaterThan(0);
    const backoffProblems: string[] = [];
    for (const [jobId, list] of retries) {
      list.forEach((r, i) => {
        const want = Math.min(RETRY.maxDelay, RETRY.delay * 2 ** (r.n - 1));
        if (r.scheduled > want + CLOCK_SLACK || r.scheduled < want - LATENCY_SLACK) backoffProblems.push(`${jobId} retry ${r.n}: scheduled ${r.scheduled} ms, expected ${want}`);
        if (i > 0 && r.scheduled < list[i - 1].scheduled - LATENCY_SLACK) backoffProblems.push(`${jobId} retry ${r.n}: ${r.scheduled} ms < previous ${list[i - 1].scheduled}`);
        if (r.observed !== undefined && r.observed < r.scheduled - CLOCK_SLACK) backoffProblems.push(`${jobId} retry ${r.n}: ran again after ${r.observed} ms, before its ${r.scheduled} ms`);
        if (r.observed !== undefined && r.observed > want + 5000) backoffProblems.push(`${jobId} retry ${r.n}: ran again only after ${r.observed} ms (scheduled ${want})`);
      });
    }
    expect(backoffProblems.slice(0, 10)).toEqual([]);

    if (process.env.DW_FAULT_VERBOSE) {
      const sample = long[0].map((r) => `${r.scheduled}/${r.observed ?? '-'}`).join(' ');
      process.stderr.write(
        `${primaryEngine} → ${targetEngine}: seed ${seed}, target down ${upAfter} ms, ${failures.length} failed attempts, ` +
          `${retries.size} jobs retried (max ${Math.max(...[...retries.values()].map((r) => r.length))} times); ` +
          `one job's retries scheduled/observed ms: ${sample}\n${[...kinds].map(([k, n]) => `  ${n}× ${k}`).join('\n')}\n`,
      );
    }
  });
});
