/**
 * Transient failures never dead-letter before the job's attempts are
 * exhausted. The target becomes unreachable (only this test's database: see
 * ../faults/outage.ts) with retry.attempts 4 and delays of 200, 400, 800 ms.
 *
 * Proves: while the job has failed fewer than three times no dead letter
 * exists (polled); every letter was written after the 4th attempt had started
 * (BullMQ's event stream vs the letters' times); then each change of the job
 * is a dead letter of class `transient` with attempts 4 and its first failure
 * time at the first attempt; once the target is back, replay applies them.
 */
import { DataSource } from 'typeorm';
import { DualWrite, runMigrations, type DeadLetter } from '../../../src';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { queueEvents } from '../faults/job-events';
import { targetOutage, type TargetOutage } from '../faults/outage';
import { createTargetTables, targetItems } from './dlq-tables';

// [primary, target]: each target engine (and its way of being unreachable) once.
const PAIRS: Array<[Engine, Engine]> = [
  ['mariadb', 'postgres'],
  ['postgres', 'mariadb'],
];
const RETRY = { attempts: 4, delay: 200, maxDelay: 5000, jitter: 0 };
const CHANGES = 10;
/** Redis stream ids (Redis's clock) vs Date.now() in this process: one machine clock, rounding only. */
const CLOCK_SLACK = 30;

jest.setTimeout(60_000);

describe.each(PAIRS)('attempts exhausted %s → %s', (primaryEngine, targetEngine) => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let outage: TargetOutage;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase(primaryEngine, 'dwxp'), createDatabase(targetEngine, 'dwxt')]);
    primary = dataSource(primaryDb, source.all);
    target = new DataSource({ ...targetDb.options([]), synchronize: false }); // the test's own view of the target
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, targetEngine);
    await runMigrations({ primary, targets: { t: target } });
    outage = await targetOutage(targetDb);
    dw = await DualWrite.start({
      primary,
      targets: { t: outage.workerDataSource() },
      redis: REDIS,
      queuePrefix: prefix,
      logger: { level: 'silent' },
      retry: RETRY,
    });
    worker = await dw.startWorker();
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

  it(`dead-letters each change only after the ${RETRY.attempts}th attempt failed, as transient`, async () => {
    const queue = dw.queues.get('t');
    await outage.begin();
    const written = Date.now();
    await primary.transaction((m) =>
      m.save(
        source.DlqItem,
        Array.from({ length: CHANGES }, (_, i) => ({ id: i + 1, label: `x${i + 1}`, qty: i, secret: null })),
      ),
    );

    // Poll: the job's finished attempts, THEN the letters. Between the 3rd failure and the 4th
    // attempt lies an 800 ms backoff, so a letter seen right after "fewer than 3 failures" would
    // be a letter written before the attempts ran out.
    const observations: Array<{ attemptsMade: number; letters: number }> = [];
    let letters: DeadLetter[] = [];
    const done = await eventually(
      async () => {
        const jobs = await queue.getJobs(['wait', 'active', 'delayed', 'prioritized'], 0, -1);
        letters = await dw.listDeadLetters();
        if (jobs.length > 0) observations.push({ attemptsMade: Math.max(...jobs.map((j) => j.attemptsMade)), letters: letters.length });
        return jobs.length === 0 && letters.length === CHANGES;
      },
      30_000,
      20,
    );
    expect(done).toBe(true);
    expect(observations.filter((o) => o.attemptsMade < RETRY.attempts - 1 && o.letters > 0)).toEqual([]);
    expect(observations.some((o) => o.attemptsMade === 2 && o.letters === 0)).toBe(true);

    // The job ran exactly 4 times, retried 3 times, and every letter was written during the 4th run.
    const events = (await queueEvents(prefix, 't')).filter((e) => e.jobId?.startsWith('c-'));
    expect(new Set(events.map((e) => e.jobId)).size).toBe(1);
    const actives = events.filter((e) => e.event === 'active');
    const delays = events.filter((e) => e.event === 'delayed');
    expect(actives).toHaveLength(RETRY.attempts);
    expect(delays).toHaveLength(RETRY.attempts - 1);
    const fourth = actives[RETRY.attempts - 1].at;
    for (const letter of letters) expect(letter.lastFailedAt).toBeGreaterThanOrEqual(fourth - CLOCK_SLACK);

    // Each change of the job is a letter: transient, attempts 4, first failure at the first attempt.
    expect(letters.map((l) => l.change.key[0]).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: CHANGES }, (_, i) => String(i + 1)));
    for (const letter of letters) {
      expect(letter).toMatchObject({ target: 't', attempts: RETRY.attempts, failure: { class: 'transient' } });
      expect(letter.firstFailedAt).toBeGreaterThanOrEqual(written);
      expect(letter.firstFailedAt).toBeLessThanOrEqual(delays[0].at + CLOCK_SLACK);
      expect(letter.lastFailedAt - letter.firstFailedAt).toBeGreaterThanOrEqual(200 + 400 + 800 - CLOCK_SLACK);
    }
    expect(await queue.getFailedCount()).toBe(0);

    // Target back: replay applies them all and empties the queue.
    await outage.end();
    const result = await dw.replayDeadLetters(letters);
    expect(result).toMatchObject({ upserts: CHANGES, deletes: 0 });
    const applied = await eventually(async () => (await targetItems(target).catch(() => ({ labels: new Map() }))).labels.size === CHANGES, 30_000, 100);
    expect(applied).toBe(true);
    expect(await dw.listDeadLetters()).toEqual([]);
  });
});
