/**
 * onDeadLetter with TWO `dualwrite worker` processes (the compiled CLI with
 * dist/test/fixtures/dlq-config.js; `npm run build` first). The handlers
 * (dlq-handler.ts) record every call in a non-replicated primary table, so the
 * count is durable and covers both processes.
 *
 * Proves: each dead letter's handler is called exactly once when it succeeds
 * at once; a handler that throws twice is called again (attempts 1, 2, 3) and
 * its third call succeeds; one that always throws is called
 * `deadLetter.handlerAttempts` times, is logged, and its letter is kept; the
 * per-entity `@Replicate({ onDeadLetter })` handler takes precedence over the
 * config's; a compensating write made through `context.transaction` replicates
 * to the target like any other write.
 */
import { DataSource } from 'typeorm';
import { DualWrite, runMigrations } from '../../../src';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { DlqWorker } from './dlq-process';
import { countRows, createTargetTables } from './dlq-tables';

const PRIMARY: Engine = 'postgres';
const TARGET: Engine = 'mariadb';
/** Poison keys: odd ones throw on calls 1–2, multiples of 100 always throw (dlq-handler.ts). */
const POISON_ITEMS = [5, 6, 77, 200];
const POISON_NOTES = [9, 10];
const HANDLER_ATTEMPTS = 3; // dlq-config.ts

jest.setTimeout(90_000);

describe(`onDeadLetter with two worker processes (${PRIMARY} → ${TARGET})`, () => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  const workers: DlqWorker[] = [];

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase(PRIMARY, 'dwhp'), createDatabase(TARGET, 'dwht')]);
    primary = dataSource(primaryDb, source.all);
    target = new DataSource({ ...targetDb.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, TARGET);
    await runMigrations({ primary, targets: { t: target } });
    // This process captures and relays; applying and calling the handlers is the children's job.
    dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } });
    const env = {
      DW_PRIMARY_ENGINE: PRIMARY,
      DW_PRIMARY_DB: primaryDb.name,
      DW_TARGET_ENGINE: TARGET,
      DW_TARGET_DB: targetDb.name,
      DW_PREFIX: prefix,
      DW_DLQ_FAIL: '2',
    };
    workers.push(DlqWorker.spawn(env), DlqWorker.spawn(env));
    const dead = dw.deadLetters.queue('t');
    const ready = await eventually(
      async () => workers.every((w) => w.running) && (await dw.queues.get('t').getWorkersCount()) >= 2 && (await dead.getWorkersCount()) >= 2,
      30_000,
      100,
    );
    if (!ready) throw new Error(`workers did not start:\n${workers.map((w) => w.output()).join('\n---\n')}`);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  it('calls the handler once per letter, again after it threw, and replicates its compensating write', async () => {
    const long = (id: number) => `too-long-for-the-target-${id}`;
    await primary.getRepository(source.DlqItem).save(
      Array.from({ length: 400 }, (_, i) => ({ id: i + 1, label: POISON_ITEMS.includes(i + 1) ? long(i + 1) : `i${i + 1}`, qty: i, secret: 'x' })),
    );
    await primary.getRepository(source.DlqNote).save(Array.from({ length: 50 }, (_, i) => ({ id: i + 1, body: POISON_NOTES.includes(i + 1) ? long(i + 1) : `n${i + 1}` })));

    const letterCount = POISON_ITEMS.length + POISON_NOTES.length;
    const succeeding = [...POISON_ITEMS, ...POISON_NOTES].filter((k) => k % 100 !== 0);
    const dead = dw.deadLetters.queue('t');
    // Done: every letter's handler job has finished (completed, or failed after its last call).
    const finished = await eventually(
      async () => (await dead.getCompletedCount()) + (await dead.getFailedCount()) === letterCount,
      45_000,
      200,
    );
    expect(finished).toBe(true);
    const letters = await dw.listDeadLetters();
    expect(letters).toHaveLength(letterCount);
    expect(await dead.getCompletedCount()).toBe(succeeding.length);
    expect(await dead.getFailedCount()).toBe(1);

    // Every call, from both processes, by letter.
    const calls = (await primary.getRepository(source.DlqCall).find({ order: { id: 'ASC' } })).map((c) => ({ ...c, pid: Number(c.pid) }));
    const byLetter = new Map<string, typeof calls>();
    for (const c of calls) byLetter.set(c.letter, [...(byLetter.get(c.letter) ?? []), c]);
    expect([...byLetter.keys()].sort()).toEqual(letters.map((l) => l.id).sort());
    for (const letter of letters) {
      const key = Number(letter.change.key[0]);
      const expected = key % 100 === 0 ? HANDLER_ATTEMPTS : key % 2 === 1 ? 3 : 1;
      const mine = byLetter.get(letter.id)!;
      expect({ letter: letter.id, attempts: mine.map((c) => c.attempt) }).toEqual({ letter: letter.id, attempts: Array.from({ length: expected }, (_, i) => i + 1) });
      expect({ letter: letter.id, handler: [...new Set(mine.map((c) => c.handler))] }).toEqual({
        letter: letter.id,
        handler: [letter.change.entity === 'DlqNote' ? 'entity' : 'config'],
      });
    }
    const pids = new Set(workers.map((w) => w.pid));
    expect(calls.every((c) => pids.has(c.pid))).toBe(true);

    // One compensating write per successful handler, replicated to the target.
    const compensations = await primary.getRepository(source.Compensation).find();
    const succeeded = letters.filter((l) => Number(l.change.key[0]) % 100 !== 0).map((l) => l.id);
    expect(compensations.map((c) => c.letter).sort()).toEqual(succeeded.sort());
    const replicated = await eventually(async () => (await countRows(target, 'dlq_compensation')) === succeeded.length, 30_000, 100);
    expect(replicated).toBe(true);
    const rows = (await target.query('SELECT letter, note FROM dlq_compensation')) as Array<{ letter: string; note: string }>;
    expect(rows.sort((a, b) => a.letter.localeCompare(b.letter))).toEqual(
      compensations.map((c) => ({ letter: c.letter, note: c.note })).sort((a, b) => a.letter.localeCompare(b.letter)),
    );
    expect(rows.every((r) => / permanent data$/.test(r.note))).toBe(true);

    // The hopeless handler was logged each time, and its letter is kept.
    const output = workers.map((w) => w.output()).join('\n');
    expect(output).toContain('onDeadLetter handler threw; it will be called again');
    expect(output).toContain(`onDeadLetter handler threw on its last call (${HANDLER_ATTEMPTS}); the dead letter is kept`);
    const hopeless = letters.find((l) => l.change.key[0] === '200')!;
    expect(await dw.deadLetters.get(hopeless.id)).toEqual(hopeless);
    expect(workers.every((w) => w.running)).toBe(true);
  });
});
