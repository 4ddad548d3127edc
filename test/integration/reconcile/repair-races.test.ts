import type { QueryRunner } from 'typeorm';
import { reconcile } from '../../../src';
import { OutboxWriter } from '../../../src/outbox/outbox-writer';
import { faultEntities } from '../../fixtures/fault-entities';
import { PAIRS, pairFixture, type PairFixture } from './pair-fixture';

/**
 * The repair protocol against the races it exists for, forced: an
 * application transaction holds the row (or a new row of the key) while the
 * reconciler repairs it, and commits only later. A repair that wrote what
 * it had read without the locking read (or, for a delete, without
 * allocating its version first) would make the target older than the primary.
 */
describe.each(PAIRS)('repair races with an open application transaction, %s → %s', (primaryEngine, targetEngine) => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  let f: PairFixture;
  const q = (name: string) => (targetEngine === 'postgres' ? `"${name}"` : `\`${name}\``);
  const options = { entity: 'FaultItem', repair: true, lagWindow: 10, lockTimeout: 15_000 };

  beforeAll(async () => {
    f = await pairFixture(primaryEngine, targetEngine, source.all, replica.all);
    await f.startWorker();
    await f.primary.getRepository(source.FaultItem).save([1, 2, 3].map((id) => ({ id, label: `v0-${id}`, qty: 0, note: null })));
    const converged = await f.converged(['FaultItem']);
    expect(converged.differences).toEqual([]);
  });

  afterAll(async () => {
    await f?.cleanup();
  });

  const pq = (name: string) => (primaryEngine === 'postgres' ? `"${name}"` : `\`${name}\``);

  /**
   * An application transaction caught between its outbox INSERT (its version
   * is allocated) and its COMMIT: it has written `sql` and the outbox row of
   * `change`, and commits `ms` after the reconciler started.
   */
  async function preCommit(sql: string, change: { op: 'upsert' | 'delete'; id: number; row: Record<string, string | number | null> | null }) {
    const runner: QueryRunner = f.primary.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    await runner.query(sql);
    await new OutboxWriter(f.dw.dialect).write(runner, [
      { entity: 'FaultItem', op: change.op, key: [String(change.id)], row: change.row, targets: 't', capturedAt: Date.now() },
    ]);
    return {
      commitAfter: async (ms: number) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        await runner.commitTransaction();
        await runner.release();
      },
    };
  }

  it('a changed row that a transaction has updated but not committed: the repair waits and carries the newer value', async () => {
    await f.target.query(`UPDATE ${q('fault_item')} SET qty = 666 WHERE id = 1`);
    const app = await preCommit(`UPDATE ${pq('fault_item')} SET ${pq('label')} = 'v1-1', qty = 1 WHERE id = 1`, {
      op: 'upsert',
      id: 1,
      row: { id: 1, label: 'v1-1', qty: 1, note: null },
    });
    const [report] = await Promise.all([reconcile(f.dw, options).then((r) => r[0]), app.commitAfter(1500)]);
    expect(report).toMatchObject({ changed: 1, repaired: 1 });
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });

  it('a missing row that a transaction has deleted but not committed: nothing is re-emitted, the delete wins', async () => {
    await f.target.query(`DELETE FROM ${q('fault_item')} WHERE id = 2`);
    const app = await preCommit(`DELETE FROM ${pq('fault_item')} WHERE id = 2`, { op: 'delete', id: 2, row: null });
    const [report] = await Promise.all([reconcile(f.dw, options).then((r) => r[0]), app.commitAfter(1500)]);
    // Confirmed missing, then found deleted on the primary by the locking read: resolved, not repaired.
    expect(report).toMatchObject({ missing: 0, repaired: 0, hotKeys: 0, suspects: 1 });
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });

  it('a repair gives way to a transaction that holds the row for long: the key is left for later, the application is not blocked', async () => {
    await f.target.query(`UPDATE ${q('fault_item')} SET qty = 777 WHERE id = 3`);
    const app = await preCommit(`UPDATE ${pq('fault_item')} SET qty = 3 WHERE id = 3`, {
      op: 'upsert',
      id: 3,
      row: { id: 3, label: 'v0-3', qty: 3, note: null },
    });
    // The application transaction stays open until after the run: a repair that waited for it would never return.
    const [report] = await reconcile(f.dw, { ...options, lockTimeout: 300, hotRounds: 1 });
    expect(report).toMatchObject({ repaired: 0, hotKeys: 1, status: 'incomplete' });
    await app.commitAfter(0);
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });

  it('an extra row that a transaction has inserted on the primary but not committed: the insert survives the delete', async () => {
    await f.target.query(`INSERT INTO ${q('fault_item')} (id, ${q('label')}, qty, note) VALUES (50, 'ghost', 0, NULL)`);
    const app = await preCommit(`INSERT INTO ${pq('fault_item')} (id, ${pq('label')}, qty, note) VALUES (50, 'real', 5, NULL)`, {
      op: 'upsert',
      id: 50,
      row: { id: 50, label: 'real', qty: 5, note: null },
    });
    const [report] = await Promise.all([reconcile(f.dw, options).then((r) => r[0]), app.commitAfter(1500)]);
    expect(report).toMatchObject({ extra: 1, repaired: 1 });
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });
});
