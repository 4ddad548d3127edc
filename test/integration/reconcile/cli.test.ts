import path from 'node:path';
import { backfillCommand } from '../../../src/cli/backfill-command';
import { reconcileCommand } from '../../../src/cli/reconcile-command';
import { faultEntities } from '../../fixtures/fault-entities';
import { pairFixture, type PairFixture } from './pair-fixture';

const CONFIG = path.resolve(__dirname, '../../fixtures/worker-config.ts');

/** `dualwrite reconcile` and `dualwrite backfill` as verbs: output, exit codes, errors. */
describe.each([
  ['postgres', 'mariadb'],
  ['mariadb', 'postgres'],
] as const)('dualwrite reconcile / backfill, %s → %s', (primaryEngine, targetEngine) => {
  const source = faultEntities(true);
  const replica = faultEntities(false);
  let f: PairFixture;
  let out: string[];
  let spy: jest.SpyInstance;

  beforeAll(async () => {
    f = await pairFixture(primaryEngine, targetEngine, source.all, replica.all);
    Object.assign(process.env, {
      DW_PRIMARY_ENGINE: primaryEngine,
      DW_PRIMARY_DB: f.primaryDb.name,
      DW_TARGET_ENGINE: targetEngine,
      DW_TARGET_DB: f.targetDb.name,
      DW_PREFIX: f.prefix,
      DW_LOG_LEVEL: 'silent',
    });
    jest.resetModules(); // the config module reads the environment once
    await f.startWorker();
    await f.primary.getRepository(source.FaultItem).save([1, 2, 3, 4].map((id) => ({ id, label: `l${id}`, qty: id, note: null })));
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });

  afterAll(async () => {
    await f?.cleanup();
  });

  beforeEach(() => {
    out = [];
    spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
  });
  afterEach(() => spy.mockRestore());

  it('reconcile exits 0 on a clean target, 1 on drift, and 0 once --repair re-emitted it', async () => {
    expect(await reconcileCommand({ config: CONFIG, json: true })).toBe(0);
    const reports = JSON.parse(out.join('')) as Array<{ entity: string; status: string }>;
    expect(reports.map((r) => `${r.entity}:${r.status}`).sort()).toEqual(['FaultItem:clean', 'FaultPair:clean']);

    const q = targetEngine === 'postgres' ? '"fault_item"' : '`fault_item`';
    await f.target.query(`DELETE FROM ${q} WHERE id = 3`);
    out = [];
    expect(await reconcileCommand({ config: CONFIG, entity: 'FaultItem' })).toBe(1);
    expect(out.join('')).toMatch(/FaultItem → t: DRIFT, 4 rows compared \(target 3\).*1 missing, 0 extra, 0 changed, 0 repaired/);
    expect(out.join('')).toMatch(/missing: 3\n/);
    expect(out.join('')).toMatch(/--repair/);

    out = [];
    expect(await reconcileCommand({ config: CONFIG, entity: 'FaultItem', target: 't', repair: true })).toBe(0);
    expect(out.join('')).toMatch(/FaultItem → t: REPAIRED.*1 missing, 0 extra, 0 changed, 1 repaired/);
    expect((await f.converged(['FaultItem'])).differences).toEqual([]);
  });

  it('backfill copies rows that predate the plugin, with plain progress lines off a terminal', async () => {
    const pq = primaryEngine === 'postgres' ? '"fault_pair"' : '`fault_pair`';
    for (let slot = 0; slot < 30; slot++) await f.primary.query(`INSERT INTO ${pq} (owner, slot, total) VALUES ('old', ${slot}, '${slot * 1000}')`);
    expect(await backfillCommand({ config: CONFIG, entity: 'FaultPair', target: 't', 'page-size': '7' })).toBe(0);
    const text = out.join('');
    expect(text).toMatch(/backfill FaultPair → t: 30\/30 rows \(100\.0%\), \d+ rows\/s, ETA 0s, done\n/);
    expect(text).toMatch(/Backfill of FaultPair into t: 30 rows queued/);
    expect((await f.converged(['FaultPair'])).differences).toEqual([]);
  });

  it('says what is wrong with bad arguments', async () => {
    await expect(reconcileCommand({ config: CONFIG, entity: 'Nope' })).rejects.toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    await expect(reconcileCommand({ config: CONFIG, target: 'nope' })).rejects.toMatchObject({ code: 'TARGET_UNKNOWN' });
    await expect(backfillCommand({ config: CONFIG, entity: 'FaultPair' })).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(backfillCommand({ config: CONFIG, entity: 'FaultPair', target: 't', 'page-size': '0' })).rejects.toMatchObject({ code: 'CLI_USAGE' });
  });
});
