/**
 * A job whose workers keep dying is not left behind in BullMQ's failed set:
 * its changes become dead letters. `dualwrite worker` children (compiled CLI,
 * dist/test/fixtures/dlq-config.js) with retry.attempts 1, so a job may stall
 * once (maxStalledCount follows retry.attempts) and fails on its second stall.
 * The target table is locked by the test, so the apply blocks until the
 * worker holding it is SIGKILLed.
 *
 * Proves: after two workers died holding the job, the third worker
 * dead-letters each of its changes (class transient, reason stalled, attempts
 * 2, BullMQ's message) — nothing was applied, the handler is called once per
 * letter — and replay applies them once the target is free.
 */
import { DataSource, type QueryRunner } from 'typeorm';
import { DualWrite, runMigrations, type DeadLetter } from '../../../src';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { DlqWorker } from './dlq-process';
import { countRows, createTargetTables, targetItems } from './dlq-tables';

const PRIMARY: Engine = 'mariadb';
const TARGET: Engine = 'postgres'; // LOCK TABLE … IN ACCESS EXCLUSIVE MODE blocks the apply

jest.setTimeout(90_000);

describe(`a job that stalls out (${PRIMARY} → ${TARGET})`, () => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let locker: QueryRunner | undefined;
  let dw: DualWrite;
  let env: Record<string, string>;
  const workers: DlqWorker[] = [];

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase(PRIMARY, 'dwsp'), createDatabase(TARGET, 'dwst')]);
    primary = dataSource(primaryDb, source.all);
    target = new DataSource({ ...targetDb.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, TARGET);
    await runMigrations({ primary, targets: { t: target } });
    // The relay (here) gives jobs their attempts; the children's config matches it.
    dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' }, retry: { attempts: 1 } });
    env = {
      DW_PRIMARY_ENGINE: PRIMARY,
      DW_PRIMARY_DB: primaryDb.name,
      DW_TARGET_ENGINE: TARGET,
      DW_TARGET_DB: targetDb.name,
      DW_PREFIX: prefix,
      DW_RETRY_ATTEMPTS: '1',
      DW_LOCK_DURATION: '1000',
    };
  });

  afterAll(async () => {
    if (locker?.isTransactionActive) await locker.rollbackTransaction().catch(() => undefined);
    await locker?.release();
    await Promise.all(workers.map((w) => w.stop()));
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  async function spawnWorker(): Promise<DlqWorker> {
    const worker = DlqWorker.spawn(env);
    workers.push(worker);
    const ready = await eventually(async () => !worker.running || (await dw.queues.get('t').getWorkersCount()) > 0, 30_000, 50);
    if (!ready || !worker.running) throw new Error(`worker did not start:\n${worker.output()}`);
    return worker;
  }

  /** The job is held by a worker for the `n`th time. */
  async function activeFor(n: number): Promise<boolean> {
    const jobs = await dw.queues.get('t').getJobs(['active'], 0, -1);
    return jobs.some((job) => job.attemptsStarted >= n);
  }

  it('dead-letters the changes of a job whose workers died, and replays them', async () => {
    locker = target.createQueryRunner();
    await locker.connect();
    await locker.startTransaction();
    await locker.query('LOCK TABLE dlq_item IN ACCESS EXCLUSIVE MODE');

    const queue = dw.queues.get('t');
    let worker = await spawnWorker();
    await primary.transaction((m) => m.save(source.DlqItem, [1, 2, 3].map((id) => ({ id, label: `s${id}`, qty: id, secret: null }))));
    // Two workers die while applying the job (blocked on the locked table).
    for (let died = 0; died < 2; died++) {
      if (!(await eventually(() => activeFor(died + 1), 30_000, 50))) throw new Error(`the job was not taken (${died} died):\n${worker.output()}`);
      await worker.kill();
      worker = await spawnWorker();
    }

    let letters: DeadLetter[] = [];
    const dead = await eventually(async () => (letters = await dw.listDeadLetters()).length === 3, 30_000, 100);
    if (!dead) throw new Error(`no dead letters; worker output:\n${worker.output()}`);
    expect(letters.map((l) => l.change.key[0]).sort()).toEqual(['1', '2', '3']);
    for (const letter of letters) {
      expect(letter).toMatchObject({ attempts: 2, failure: { class: 'transient', reason: 'stalled', message: 'job stalled more than allowable limit' } });
    }
    expect(await queue.getFailedCount()).toBe(1);

    // Nothing was applied; the handler ran once per letter.
    await locker.commitTransaction();
    expect((await targetItems(target)).labels.size).toBe(0);
    const calls = await eventually(async () => (await countRows(primary, 'dlq_call')) === 3, 30_000, 100);
    expect(calls).toBe(true);

    // Replay (the target is free now) applies them.
    await dw.replayDeadLetters(letters);
    const applied = await eventually(async () => (await targetItems(target)).labels.size === 3, 30_000, 100);
    expect(applied).toBe(true);
    expect(await dw.listDeadLetters()).toEqual([]);
    expect(await countRows(primary, 'dlq_call')).toBe(3);
  });
});
