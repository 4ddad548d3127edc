import { reconcile } from '../../../src';
import { faultEntities } from '../../fixtures/fault-entities';
import { pairFixture, type PairFixture } from './pair-fixture';

/**
 * A key whose change is still on its way (in the outbox or the queue) is not
 * drift: it is skipped, looked at again later, and reported as hot — never
 * repaired over the change that is coming.
 */
describe.each([
  ['postgres', 'mariadb'],
  ['mariadb', 'postgres'],
] as const)('keys in flight, %s → %s', (primaryEngine, targetEngine) => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  let f: PairFixture;

  beforeAll(async () => {
    f = await pairFixture(primaryEngine, targetEngine, source.all, replica.all);
    await f.startWorker();
    await f.primary.getRepository(source.FaultItem).save([1, 2, 3].map((id) => ({ id, label: `l${id}`, qty: id, note: null })));
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });

  afterAll(async () => {
    await f?.cleanup();
  });

  it('skips a key whose change waits in the queue, and finds it clean once applied', async () => {
    await f.stopWorker();
    await f.primary.getRepository(source.FaultItem).save({ id: 2, label: 'newer', qty: 20, note: 'queued' });
    await f.dw.flush(); // the change now waits in the target's queue

    const [hot] = await reconcile(f.dw, { entity: 'FaultItem', repair: true, lagWindow: 30, hotRounds: 2 });
    expect(hot).toMatchObject({ status: 'incomplete', suspects: 1, missing: 0, extra: 0, changed: 0, repaired: 0, hotKeys: 1, chunksSkippedHot: 1 });

    await f.startWorker();
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
    const [clean] = await reconcile(f.dw, { entity: 'FaultItem', lagWindow: 30 });
    expect(clean).toMatchObject({ status: 'clean', suspects: 0, hotKeys: 0 });
  });

  it('resumes an interrupted run from its last chunk', async () => {
    await f.primary.getRepository(source.FaultItem).save(Array.from({ length: 300 }, (_, i) => ({ id: 100 + i, label: 'x', qty: i, note: null })));
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
    const q = targetEngine === 'postgres' ? '"fault_item"' : '`fault_item`';
    await f.target.query(`DELETE FROM ${q} WHERE id IN (1, 399)`);
    // Stop the run after its first chunk of 100 rows.
    let chunks = 0;
    await expect(
      reconcile(f.dw, {
        entity: 'FaultItem',
        firstChunk: 100,
        lagWindow: 30,
        onChunk: () => {
          if (++chunks === 1) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    const [resumed] = await reconcile(f.dw, { entity: 'FaultItem', lagWindow: 30 });
    expect(resumed).toMatchObject({ resumed: true, rowsCompared: 303, missing: 2, status: 'drift' });
    expect(resumed.samples.missing.sort()).toEqual(['1', '399']);
  });
});
