import type { DataSource } from 'typeorm';
import { backfill, reconcile, type BackfillProgress } from '../../../src';
import { applyQueueName } from '../../../src/queue/apply-job';
import { faultEntities, type FaultEntities } from '../../fixtures/fault-entities';
import { seededRandom } from '../../support/seeded-random';
import { PAIRS, pairFixture, type PairFixture } from './pair-fixture';

const ROWS = 6000;

/**
 * Adopting the plugin on tables that already hold data: backfill copies the
 * existing rows into the target through the normal path while the
 * application keeps writing the same rows, never overwriting a newer change,
 * and resumes where an interrupted run stopped.
 */
describe.each(PAIRS)('backfill %s → %s', (primaryEngine, targetEngine) => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  let f: PairFixture;

  beforeAll(async () => {
    f = await pairFixture(primaryEngine, targetEngine, source.all, replica.all, { relay: { pollInterval: 200 } });
    // Rows written before the plugin: never captured, absent from the target.
    const random = seededRandom(7);
    await f.bulkLoad(
      'FaultItem',
      Array.from({ length: ROWS }, (_, i) => ({ label: `pre-${i}-'"%`, qty: Math.floor(random() * 1000), note: random() < 0.2 ? null : `n${i}` })),
      'primary',
    );
    await f.startWorker();
  }, 60_000);

  afterAll(async () => {
    await f?.cleanup();
  });

  it('converges to the primary while a write stream changes the same rows, and resumes after an interruption', async () => {
    let writing = true;
    const stream = (async () => {
      let writes = 0;
      const random = seededRandom(3);
      while (writing || writes < 300) writes += await writeSome(f.primary, source, random);
      return writes;
    })();
    try {
      // First run: stopped after a few pages.
      const stop = new AbortController();
      let pages = 0;
      const first = await backfill(f.dw, {
        entity: 'FaultItem',
        target: 't',
        pageSize: 500,
        onProgress: (p) => {
          if (!p.waiting && ++pages === 3) stop.abort();
        },
        signal: stop.signal,
      });
      expect(first).toMatchObject({ complete: false, rows: 1500, resumed: false });

      // Second run: resumes from the fourth page.
      const progress: BackfillProgress[] = [];
      const second = await backfill(f.dw, { entity: 'FaultItem', target: 't', pageSize: 500, onProgress: (p) => progress.push(p) });
      expect(second).toMatchObject({ complete: true, resumed: true });
      expect(second.rows).toBeGreaterThanOrEqual(ROWS - 300);
      expect(progress[0].rows).toBe(2000);
      expect(progress.at(-1)).toMatchObject({ done: true });
      expect(progress.every((p) => p.total >= ROWS - 300)).toBe(true);
    } finally {
      writing = false;
      await stream;
    }
    const converged = await f.converged(['FaultItem', 'FaultPair'], 60_000);
    expect(converged.differences).toEqual([]);
    // And the reconciler agrees, without a second look anywhere.
    const reports = await reconcile(f.dw, { lagWindow: 50 });
    expect(reports.map((r) => [r.entity, r.status, r.suspects])).toEqual(
      expect.arrayContaining([
        ['FaultItem', 'clean', 0],
        ['FaultPair', 'clean', 0],
      ]),
    );
  });

  it('copies every row of an entity with long string keys, in pages of 2,000 (batch rows of 1,000 long keys each)', async () => {
    // 24-character owners: 1,000 keys are over 30,000 characters of JSON.
    const rows = Array.from({ length: 2500 }, (_, i) => ({ owner: `long-owner-${String(i).padStart(13, '0')}`, slot: i % 3, total: String(i) }));
    await f.bulkLoad('FaultPair', rows, 'primary');
    const run = await backfill(f.dw, { entity: 'FaultPair', target: 't', restart: true });
    expect(run).toMatchObject({ complete: true });
    expect(run.rows).toBeGreaterThanOrEqual(2500);
    const converged = await f.converged(['FaultPair'], 60_000);
    expect(converged.differences).toEqual([]);
  });

  // PostgreSQL primaries add each page's jobs to the queue themselves (no outbox rows); MySQL/MariaDB ones go through the outbox.
  (primaryEngine === 'postgres' ? it : it.skip)('counts a page done only once Redis has its jobs, and reads it again after a refusal', async () => {
    // A key of the wrong type where BullMQ keeps the queue's metadata: Redis answers WRONGTYPE to every add.
    const meta = `${f.prefix}:${applyQueueName('t')}:meta`;
    const saved = await f.dw.redis.dumpBuffer(meta);
    try {
      await f.dw.redis.del(meta);
      await f.dw.redis.rpush(meta, 'not a hash');
      await expect(backfill(f.dw, { entity: 'FaultItem', target: 't', pageSize: 500, restart: true })).rejects.toThrow(/WRONGTYPE/);
    } finally {
      await f.dw.redis.del(meta);
      if (saved) await f.dw.redis.restore(meta, 0, saved);
    }
    const [{ n }] = (await f.primary.query('SELECT COUNT(*) AS n FROM dualwrite_outbox')) as Array<{ n: string }>;
    expect(Number(n)).toBe(0);
    // Nothing was recorded: the next run starts from the first page, not after it.
    const progress: BackfillProgress[] = [];
    const run = await backfill(f.dw, { entity: 'FaultItem', target: 't', pageSize: 500, onProgress: (p) => progress.push(p) });
    expect(run).toMatchObject({ complete: true, resumed: false });
    expect(progress[0].rows).toBe(500);
    const converged = await f.converged(['FaultItem'], 60_000);
    expect(converged.differences).toEqual([]);
  });
});

/** One application transaction of 1–5 captured writes on rows the backfill is copying: updates, deletes, inserts. */
async function writeSome(primary: DataSource, entities: FaultEntities, random: () => number): Promise<number> {
  const int = (n: number) => Math.floor(random() * n);
  const count = 1 + int(5);
  await primary.transaction(async (m) => {
    const seen = new Set<number>();
    for (let i = 0; i < count; i++) {
      const id = 1 + int(ROWS + 500);
      if (seen.has(id)) continue;
      seen.add(id);
      const existing = await m.findOneBy(entities.FaultItem, { id });
      if (existing && random() < 0.25) await m.remove(existing);
      else await m.save(m.create(entities.FaultItem, { id, label: `app-${int(1e6)}`, qty: int(1000), note: null }));
      if (random() < 0.2) await m.save(m.create(entities.FaultPair, { owner: `o${int(20)}`, slot: int(4), total: String(int(1e9)) }));
    }
  });
  return count;
}
