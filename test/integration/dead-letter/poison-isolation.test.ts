/**
 * Dead letters, in-process, for every primary × target pair.
 *
 * Proves (issue 4, DESIGN §3.5 and §3.7):
 * - one change that violates the target's schema among 1,000 is isolated: it
 *   alone becomes a dead letter, the 999 others are applied, nothing is retried
 *   (a permanent error burns no attempts) and no job is left failed;
 * - the letter holds the change without @NotReplicated values, the target, the
 *   error class, code and message, the attempts and the failure times; no
 *   @NotReplicated value is anywhere in Redis;
 * - letters survive a worker restart;
 * - after the target is fixed, replay applies them and empties the queue; a
 *   replayed OLD letter never rolls the target back past a newer write (the
 *   row's current state is what is sent), and a row deleted meanwhile replays
 *   as a delete.
 */
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { DualWrite, runMigrations, type DeadLetter } from '../../../src';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, ENGINES, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { outboxCount } from '../faults/convergence';
import { queueEvents } from '../faults/job-events';
import { countRows, createTargetTables, NARROW, targetItems, widenTargetColumns } from './dlq-tables';
import { dumpRedis } from './redis-dump';

const PAIRS: Array<[Engine, Engine]> = ENGINES.flatMap((p) => ENGINES.map((t) => [p, t] as [Engine, Engine]));
const TOTAL = 1000;
const POISON_ID = 637;
const LONG = 'far-too-long-for-the-target';

jest.setTimeout(60_000);

describe.each(PAIRS)('dead letters %s → %s', (primaryEngine, targetEngine) => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  const secret = `s3cr3t-${randomBytes(6).toString('hex')}`;
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase(primaryEngine, 'dwdp'), createDatabase(targetEngine, 'dwdt')]);
    primary = dataSource(primaryDb, source.all);
    target = new DataSource({ ...targetDb.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, targetEngine);
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({
      primary,
      targets: { t: target },
      redis: REDIS,
      queuePrefix: prefix,
      logger: { level: process.env.DW_TEST_LOG ?? 'silent' },
      retry: { attempts: 5, delay: 100, maxDelay: 1000, jitter: 0 },
      // Four jobs, one holding the poison. One at a time: two MariaDB jobs applied at once can
      // deadlock on the ledger's gap locks, a (transient, retried) failure this test is not about.
      relay: { jobSize: 250 },
      worker: { concurrency: 1 },
    });
    worker = await dw.startWorker();
  });

  afterAll(async () => {
    await worker?.close();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  /** The outbox is empty and the apply queue has nothing left to do. */
  async function idle(): Promise<boolean> {
    return eventually(async () => {
      const counts = await dw.queues.get('t').getJobCounts('active', 'wait', 'delayed', 'prioritized');
      return Object.values(counts).every((n) => n === 0) && (await outboxCount(primary)) === 0;
    }, 30_000, 50);
  }

  it(`isolates one poison change among ${TOTAL}: exactly one dead letter, ${TOTAL - 1} applied, no retries`, async () => {
    const items = Array.from({ length: TOTAL }, (_, i) => ({ id: i + 1, label: `l${i + 1}`, qty: i, secret: `${secret}-${i + 1}` }));
    items[POISON_ID - 1].label = LONG;
    const before = Date.now();
    await primary.getRepository(source.DlqItem).save(items);

    let letters: DeadLetter[] = [];
    const settled = await eventually(async () => {
      letters = await dw.listDeadLetters();
      return letters.length >= 1 && (await countRows(target, 'dlq_item')) >= TOTAL - 1;
    }, 30_000, 100);
    expect(settled).toBe(true);
    expect(await idle()).toBe(true);
    letters = await dw.listDeadLetters();

    // Exactly one letter, the poison change, complete and without the @NotReplicated value.
    expect(letters).toHaveLength(1);
    const [letter] = letters;
    expect(letter.id).toBe(`t/${letter.change.version}`);
    expect(letter).toMatchObject({ target: 't', attempts: 1, change: { entity: 'DlqItem', op: 'upsert', key: [String(POISON_ID)] } });
    expect(letter.change.row).toEqual({ id: POISON_ID, label: LONG, qty: POISON_ID - 1 });
    expect(letter.failure.class).toBe('permanent');
    expect(letter.failure.reason).toBe('data');
    expect(letter.failure.code).toBe(targetEngine === 'postgres' ? '22001' : 'ER_DATA_TOO_LONG');
    expect(letter.failure.message).toMatch(targetEngine === 'postgres' ? /value too long for type character varying\(8\)/ : /Data too long for column 'label'/);
    expect(letter.firstFailedAt).toBeGreaterThanOrEqual(before);
    expect(letter.lastFailedAt).toBeGreaterThanOrEqual(letter.firstFailedAt);
    expect(letter.lastFailedAt).toBeLessThanOrEqual(Date.now());
    expect(await dw.deadLetters.get(letter.id)).toEqual(letter);

    // Everything else applied, without the secret column's values.
    const { labels, secrets } = await targetItems(target);
    expect(labels.size).toBe(TOTAL - 1);
    expect(labels.has(POISON_ID)).toBe(false);
    expect([...labels].filter(([id, label]) => label !== `l${id}`)).toEqual([]);
    expect(secrets).toBe(0);

    // A permanent error burns no attempts: no job was ever retried or left failed.
    const events = await queueEvents(prefix, 't');
    expect(events.filter((e) => e.event === 'delayed' || e.event === 'retries-exhausted')).toEqual([]);
    expect(await dw.queues.get('t').getFailedCount()).toBe(0);

    // No @NotReplicated value anywhere in Redis (the scan does see the letter).
    const dump = await dumpRedis(prefix);
    expect(dump.text).toContain(LONG);
    expect(dump.text).not.toContain(secret);
  });

  it('keeps letters across a worker restart; replay after the fix applies them, never rolls back past a newer write, and replays a deleted row as a delete', async () => {
    const repo = primary.getRepository(source.DlqItem);
    // While the target is still narrow: row 2001 fails twice (two letters), 2002 and 2003 once.
    await repo.save({ id: 2001, label: 'first-long-label-2001', qty: 1, secret });
    await repo.save({ id: 2001, label: 'second-long-label-2001', qty: 2, secret });
    await repo.save({ id: 2002, label: 'doomed-long-label-2002', qty: 1, secret });
    await repo.save({ id: 2003, label: 'stale-long-label-2003', qty: 1, secret });
    expect(await eventually(async () => (await dw.listDeadLetters()).length === 5, 30_000, 100)).toBe(true);
    // 2002 is deleted on the primary: the delete itself applies (a tombstone), its letter stays.
    await repo.remove(await repo.findOneByOrFail({ id: 2002 }));
    expect(await idle()).toBe(true);

    // Dead letters are kept in Redis, not in the worker: a restart changes nothing.
    const kept = await dw.listDeadLetters();
    await worker!.close();
    worker = await dw.startWorker();
    expect(await dw.listDeadLetters()).toEqual(kept);
    expect(kept.map((l) => l.change.key[0]).sort()).toEqual(['2001', '2001', '2002', '2003', String(POISON_ID)]);

    // Fix the target; then a newer write to 2003 applies normally.
    await widenTargetColumns(target, targetEngine);
    await repo.save({ id: 2003, label: 'fresh-2003', qty: 3, secret });
    expect(await eventually(async () => (await targetItems(target)).labels.get(2003) === 'fresh-2003', 30_000, 50)).toBe(true);

    // Replay the OLDEST letter of each row.
    const byKey = new Map<string, DeadLetter[]>();
    for (const l of kept) byKey.set(l.change.key[0], [...(byKey.get(l.change.key[0]) ?? []), l]);
    const oldest = [...byKey.values()].map((list) => list.sort((a, b) => Number(BigInt(a.change.version) - BigInt(b.change.version)))[0]);
    const result = await dw.replayDeadLetters(oldest);
    expect(result.replayed.sort()).toEqual(oldest.map((l) => l.id).sort());
    expect(result).toMatchObject({ upserts: 3, deletes: 1 });
    expect(await idle()).toBe(true);
    // The replayed rows are applied (once seen failing in CI right after idle(): say where things stood).
    if (!(await eventually(async () => (await targetItems(target)).labels.get(POISON_ID) === LONG, 10_000, 50))) {
      const ledger = await target.query(`SELECT entity, row_key, version, deleted FROM dualwrite_version_ledger WHERE row_key IN ('${POISON_ID}', '2001', '2002', '2003')`);
      const counts = await dw.queues.get('t').getJobCounts();
      throw new Error(
        `replayed rows not applied: replay ${JSON.stringify(result)}; letters ${JSON.stringify((await dw.listDeadLetters()).map((l) => [l.change.key[0], l.change.version, l.failure.code]))}; ` +
          `ledger ${JSON.stringify(ledger)}; queue ${JSON.stringify(counts)}; outbox ${await outboxCount(primary)}; target ${JSON.stringify([...(await targetItems(target)).labels].filter(([id]) => id >= 2000 || id === POISON_ID))}`,
      );
    }

    let labels = (await targetItems(target)).labels;
    expect(labels.get(POISON_ID)).toBe(LONG); // applied now
    expect(labels.get(2001)).toBe('second-long-label-2001'); // the row's newest state, not the replayed letter's
    expect(labels.get(2003)).toBe('fresh-2003'); // not rolled back to the stale letter
    expect(labels.has(2002)).toBe(false); // deleted meanwhile: replayed as a delete

    // Only 2001's newer letter is left; replaying it empties the queue and changes nothing.
    const left = await dw.listDeadLetters();
    expect(left.map((l) => l.id)).toEqual(byKey.get('2001')!.slice(1).map((l) => l.id));
    await dw.replayDeadLetters(left);
    expect(await idle()).toBe(true);
    expect(await dw.listDeadLetters()).toEqual([]);

    // The target equals the primary, and no new letter appeared.
    labels = (await targetItems(target)).labels;
    const primaryRows = await repo.find();
    const byId = (a: [number, string], b: [number, string]) => a[0] - b[0];
    expect([...labels].sort(byId)).toEqual(primaryRows.map((r): [number, string] => [r.id, r.label]).sort(byId));
    expect((await targetItems(target)).secrets).toBe(0);
    expect(LONG.length).toBeGreaterThan(NARROW);
  });
});
