/**
 * `deadLetter.retention`: letters are removed automatically only when it is
 * set, and not before it has passed. In-process worker, with an in-process
 * onDeadLetter handler (so the letter is in BullMQ's completed state when the
 * purge finds it).
 *
 * Proves: with retention 1 s the letter is kept at least 1 s after its handler
 * ran, then removed by the worker's purge; the handler was called once.
 */
import { DataSource } from 'typeorm';
import { DualWrite, runMigrations, type DeadLetter } from '../../../src';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { createTargetTables } from './dlq-tables';

const ENGINE: Engine = 'mariadb';

jest.setTimeout(60_000);

describe(`dead-letter retention (${ENGINE} → ${ENGINE})`, () => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;
  const handled: Array<{ id: string; at: number }> = [];

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase(ENGINE, 'dwrp'), createDatabase(ENGINE, 'dwrt')]);
    primary = dataSource(primaryDb, source.all);
    target = new DataSource({ ...targetDb.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, ENGINE);
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({
      primary,
      targets: { t: target },
      redis: REDIS,
      queuePrefix: prefix,
      logger: { level: 'silent' },
      deadLetter: { retention: 1 },
      onDeadLetter: (letter) => void handled.push({ id: letter.id, at: Date.now() }),
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

  it('removes a letter once the retention has passed, not before', async () => {
    await primary.getRepository(source.DlqItem).save({ id: 1, label: 'too-long-for-the-target', qty: 1, secret: null });
    let letters: DeadLetter[] = [];
    expect(await eventually(async () => (letters = await dw.listDeadLetters()).length === 1 && handled.length === 1, 30_000, 20)).toBe(true);
    let goneAt = 0;
    const gone = await eventually(
      async () => {
        if ((await dw.listDeadLetters()).length > 0) return false;
        goneAt = Date.now();
        return true;
      },
      15_000,
      20,
    );
    expect(gone).toBe(true);
    expect(goneAt - handled[0].at).toBeGreaterThanOrEqual(1000);
    expect(handled.map((h) => h.id)).toEqual([letters[0].id]);
  });
});
