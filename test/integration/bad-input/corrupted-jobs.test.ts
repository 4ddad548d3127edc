/**
 * The bad-input catalogue, part 4: apply jobs in Redis that the worker cannot
 * use as they are (Redis is shared; a job can be written by hand, by another
 * version of the library, or be damaged), and a primary key longer than the
 * targets' version ledger holds. Each bad change must become a dead letter
 * whose failure says what is wrong (PAYLOAD_INVALID / KEY_TOO_LONG /
 * ENTITY_NOT_FOUND), without crashing the worker or holding back the good
 * changes next to it; `dualwrite dlq list` (the real CLI) must still list
 * them, and `dlq discard` remove them.
 */
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { DualWrite, OUTBOX_TABLE, runMigrations, type Change } from '../../../src';
import { Replicate } from '../../../decorators';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { outboxCount } from '../faults/convergence';
import { runCli } from '../dead-letter/dlq-process';
import { createTargetTables, targetItems } from '../dead-letter/dlq-tables';

jest.setTimeout(90_000);

@Replicate({ to: ['t'] })
@Entity('cj_long_key')
class CjLongKey {
  @PrimaryColumn({ type: 'varchar', length: 600 }) code!: string;
  @Column({ type: 'int' }) n!: number;
}

describe('bad input: corrupted apply jobs and over-long keys (postgres → mariadb)', () => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;
  let queue: Queue;
  let env: Record<string, string>;

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase('postgres', 'dwcjp'), createDatabase('mariadb', 'dwcjt')]);
    primary = dataSource(primaryDb, [...source.all, CjLongKey]);
    target = new DataSource({ ...targetDb.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, 'mariadb');
    await target.query('CREATE TABLE cj_long_key (code varchar(600) NOT NULL PRIMARY KEY, n integer NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({
      primary,
      targets: { t: target },
      redis: REDIS,
      queuePrefix: prefix,
      retry: { attempts: 3, delay: 100, maxDelay: 500, jitter: 0 },
      worker: { lockDuration: 2000 },
      reconcile: { every: 0 },
      logger: { level: 'silent' },
    });
    worker = await dw.startWorker();
    queue = new Queue('t', { connection: REDIS, prefix });
    env = { DW_PRIMARY_ENGINE: 'postgres', DW_PRIMARY_DB: primaryDb.name, DW_TARGET_ENGINE: 'mariadb', DW_TARGET_DB: targetDb.name, DW_PREFIX: prefix };
  });

  afterAll(async () => {
    await queue?.close();
    await worker?.close();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  it('dead-letters each malformed change with its reason, applies the good ones, and keeps working', async () => {
    const items = primary.getRepository(source.DlqItem);
    await items.save([{ id: 1, label: 'one', qty: 1, secret: null }, { id: 2, label: 'two', qty: 2, secret: null }]);
    expect(await eventually(async () => (await targetItems(target)).labels.size === 2, 20_000)).toBe(true);

    // A well-formed change from outside the relay applies like any other (its high version also wins over row 2's later writes).
    const good: Change = { id: 'DlqItem#900000001', entity: 'DlqItem', op: 'upsert', key: ['2'], version: '900000001', row: { id: 2, label: 'TWO', qty: 2 }, capturedAt: Date.now() };
    const noVersion = { id: 'x', entity: 'DlqItem', op: 'upsert', key: ['3'], row: { id: 3, label: 'three', qty: 3 }, capturedAt: Date.now() };
    const ghost: Change = { id: 'Ghost#900000002', entity: 'Ghost', op: 'delete', key: ['1'], version: '900000002', row: null, capturedAt: Date.now() };
    const badOp = { id: 'DlqItem#900000003', entity: 'DlqItem', op: 'frobnicate', key: ['1'], version: '900000003', row: null, capturedAt: Date.now() };
    const noRow = { id: 'DlqItem#900000004', entity: 'DlqItem', op: 'upsert', key: ['1'], version: '900000004', row: null, capturedAt: Date.now() };
    await queue.add('apply', 'garbage' as never, { jobId: 'x-garbage' });
    await queue.add('apply', { target: 't', changes: 'nope' } as never, { jobId: 'x-not-a-list' });
    await queue.add('apply', { target: 't', changes: [good, noVersion, null, ghost, badOp, noRow] } as never, { jobId: 'x-mixed', attempts: 3 });

    // A primary key longer than the ledger's row_key, next to a normal one in the same transaction.
    const long = 'k'.repeat(550);
    await primary.getRepository(CjLongKey).save([{ code: long, n: 1 }, { code: 'short', n: 2 }]);

    const expected = 8; // garbage, not-a-list, 5 of the mixed job, the long key
    const settled = await eventually(async () => (await dw.listDeadLetters()).length === expected && (await outboxCount(primary)) === 0, 30_000, 100);
    const letters = await dw.listDeadLetters();
    if (!settled) {
      const counts = await queue.getJobCounts();
      throw new Error(`not settled: ${JSON.stringify(counts)} outbox ${await outboxCount(primary)}\n${letters.map((l) => `${l.id} ${l.failure.message}`).join('\n')}`);
    }
    expect({ settled, letters: letters.map((l) => `${l.id} ${l.failure.message}`) }).toEqual({ settled: true, letters: expect.anything() });

    const messages = letters.map((l) => `${l.failure.code} ${l.change.entity} ${l.failure.message}`);
    const find = (pattern: RegExp) => {
      const found = messages.filter((m) => pattern.test(m));
      expect({ pattern: String(pattern), found: found.length, messages }).toMatchObject({ found: 1 });
      return found[0];
    };
    find(/^PAYLOAD_INVALID \(unknown\) Apply job x-garbage is malformed: its data is "garbage", not a list of changes\. .*dualwrite dlq show/);
    find(/^PAYLOAD_INVALID \(unknown\) Apply job x-not-a-list is malformed: its "changes" is "nope"/);
    find(/^PAYLOAD_INVALID DlqItem Change 2 of apply job x-mixed is malformed: "version" must be a decimal string, got nothing/);
    find(/^PAYLOAD_INVALID \(unknown\) Change 3 of apply job x-mixed is malformed: expected an object, got null/);
    find(/^PAYLOAD_INVALID DlqItem Change 5 of apply job x-mixed is malformed: "op" must be "upsert" or "delete", got "frobnicate"/);
    find(/^PAYLOAD_INVALID DlqItem Change 6 of apply job x-mixed is malformed: an upsert needs a row image object in "row", got null/);
    find(/^KEY_TOO_LONG CjLongKey Change CjLongKey#\d+ of entity "CjLongKey" has a primary key of 550 characters .* holds at most 512/);
    // The unknown entity is found by the applier (its message names the entity and the fix) and, being a well-formed change, keeps its own id.
    find(/^ENTITY_NOT_FOUND Ghost A change of entity "Ghost" reached target "t"/);
    const ghostFailure = letters.find((l) => l.change.entity === 'Ghost')!.failure;
    expect(ghostFailure).toMatchObject({ class: 'permanent', code: 'ENTITY_NOT_FOUND' });
    expect(ghostFailure.message).toContain('this worker\'s config has no replicated entity of that name');

    for (const l of letters) expect(l.failure.class).toBe('permanent');

    // The good change of the mixed job and the short key were applied; the worker keeps applying new writes.
    expect((await targetItems(target)).labels.get(2)).toBe('TWO');
    expect(await target.query("SELECT n FROM cj_long_key WHERE code = 'short'")).toEqual([{ n: 2 }]);
    await items.save({ id: 1, label: 'uno', qty: 11, secret: null });
    await items.save({ id: 5, label: 'five', qty: 5, secret: null });
    expect(await eventually(async () => {
      const { labels } = await targetItems(target);
      return labels.get(1) === 'uno' && labels.get(5) === 'five';
    }, 20_000)).toBe(true);

    // No job is left failed or stuck: each was completed, with its bad changes as letters.
    expect(await queue.getJobCounts('failed', 'active', 'waiting', 'delayed')).toEqual({ failed: 0, active: 0, waiting: 0, delayed: 0 });

    // The real CLI lists these letters (placeholders included) and discards them.
    const listed = await runCli(['dlq', 'list'], env);
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    expect(listed.stdout.trimEnd().split('\n')).toHaveLength(1 + 8);
    expect(listed.stdout).toMatch(/\(unknown\)\s+upsert\s+permanent payload PAYLOAD_INVALID/);
    const ids = (await dw.listDeadLetters()).map((l) => l.id);
    const placeholder = letters.find((l) => l.failure.message.startsWith('Apply job x-not-a-list'))!;
    const replayed = await runCli(['dlq', 'replay', placeholder.id], env);
    expect(replayed.code).toBe(1);
    expect(replayed.stderr).toContain(`Dead letter ${placeholder.id} came from a malformed apply job and names no row that could be replayed; nothing was replayed. Discard it`);
    expect((await dw.listDeadLetters()).map((l) => l.id)).toEqual(ids);
    const discarded = await runCli(['dlq', 'discard', ...ids], env);
    expect(discarded).toMatchObject({ code: 0, stdout: `Discarded ${ids.length} dead letter(s).\n` });
    expect(await dw.listDeadLetters()).toEqual([]);
  });

  it('an outbox row written by hand that the relay cannot read becomes a dead letter; it holds back neither the relay nor the rows around it', async () => {
    const items = primary.getRepository(source.DlqItem);
    await items.save({ id: 8, label: 'eight', qty: 8, secret: null });
    // Rows the relay's claims (the worker's poll) find together, in one job: a key that is not JSON, a batch
    // row whose key list is not a list, a key that only looks like JSON, and a well-formed row among them.
    await primary.query(
      `INSERT INTO ${OUTBOX_TABLE} (entity, op, pk, row_image, targets, captured_at) VALUES ` +
        `('DlqItem', 'upsert', 'id=9', '{"id":9,"label":"nine","qty":9}', 't', $1), ('DlqItem', 'batch', '{"id":9}', '[]', 't', $1), ` +
        `('DlqItem', 'upsert', '["12"]', '{"id":12,"label":"twelve","qty":12}', 't', $1), ('DlqItem', 'upsert', '["11",]', '{"id":11,"label":"eleven","qty":11}', 't', $1)`,
      [Date.now()],
    );
    await items.save({ id: 10, label: 'ten', qty: 10, secret: null });
    const fromOutbox = async () => (await dw.listDeadLetters()).filter((l) => l.failure.message.includes('is not as typeorm-dualwrite writes it'));
    const settled = await eventually(async () => (await fromOutbox()).length === 3 && (await outboxCount(primary)) === 0, 30_000, 100);
    expect({ settled, outbox: await outboxCount(primary), letters: (await dw.listDeadLetters()).map((l) => l.failure.message) }).toMatchObject({ settled: true, outbox: 0 });
    const messages = (await fromOutbox()).map((l) => `${l.failure.code} ${l.change.entity} ${l.failure.message}`);
    expect(messages).toHaveLength(3);
    expect(messages).toEqual(expect.arrayContaining([
      expect.stringMatching(/^PAYLOAD_INVALID DlqItem Change \d+ of apply job \S+ is malformed: outbox row \d+ \(entity "DlqItem", op "batch"\) is not as typeorm-dualwrite writes it: "pk" of a batch row must list 1 to 1000 keys\. .*the primary still has the row/),
      expect.stringMatching(/^PAYLOAD_INVALID DlqItem Change \d+ of apply job \S+ is malformed: outbox row \d+ \(entity "DlqItem", op "upsert"\) is not as typeorm-dualwrite writes it: "pk" is not JSON \(.+\)\. .*the primary still has the row/),
    ]));
    expect(messages.filter((m) => m.includes('"pk" is not JSON'))).toHaveLength(2);
    const { labels } = await targetItems(target);
    // The well-formed row claimed with the bad ones was applied: nothing else of their job was dead-lettered.
    expect([labels.get(8), labels.get(9), labels.get(10), labels.get(11), labels.get(12)]).toEqual(['eight', undefined, 'ten', undefined, 'twelve']);
    expect(await queue.getJobCounts('failed', 'active', 'waiting', 'delayed')).toEqual({ failed: 0, active: 0, waiting: 0, delayed: 0 });
    for (const letter of await fromOutbox()) await dw.deadLetters.remove(letter.id);
  });

  it('a job whose data is not even JSON is dead-lettered too, instead of coming back forever', async () => {
    // BullMQ parses a job before any processor sees it; the worker hands such a job on as unreadable.
    await queue.add('apply', { target: 't', changes: [] } as never, { jobId: 'x-unparsable', delay: 300 });
    const redis = new IORedis(REDIS);
    try {
      await redis.hset(`${prefix}:t:x-unparsable`, 'data', '{"target": "t", "changes": [');
    } finally {
      redis.disconnect();
    }
    await primary.getRepository(source.DlqItem).save({ id: 7, label: 'seven', qty: 7, secret: null });
    expect(await eventually(async () => (await targetItems(target)).labels.get(7) === 'seven' && (await dw.listDeadLetters()).length === 1, 20_000)).toBe(true);
    const [letter] = await dw.listDeadLetters();
    expect(letter.failure).toMatchObject({ class: 'permanent', reason: 'payload', code: 'PAYLOAD_INVALID' });
    expect(letter.failure.message).toContain('Apply job x-unparsable is malformed: its data is not JSON ("{\\"target\\": \\"t\\", \\"changes\\": [")');
    expect(await queue.getJobCounts('failed', 'active', 'waiting', 'delayed')).toEqual({ failed: 0, active: 0, waiting: 0, delayed: 0 });
  });
});
