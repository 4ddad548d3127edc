import { reconcile, readReconcileReports } from '../../../src';
import type { ReconcileReport } from '../../../src';
import { matrixEntities } from '../apply/matrix-entities';
import { PAIRS, pairFixture, type PairFixture } from './pair-fixture';

/**
 * Drift made behind the plugin's back in the target — rows deleted, rows
 * added, every column type of the DESIGN matrix changed, NULL ↔ value — is
 * found exactly (no more, no less), then repaired through the normal path.
 */
describe.each(PAIRS)('reconcile finds and repairs engineered drift, %s → %s', (primaryEngine, targetEngine) => {
  const source = matrixEntities(primaryEngine, true);
  const replica = matrixEntities(targetEngine, false);
  let f: PairFixture;
  const q = (name: string) => (targetEngine === 'postgres' ? `"${name}"` : `\`${name}\``);

  beforeAll(async () => {
    f = await pairFixture(primaryEngine, targetEngine, [source.MatrixRow, source.MatrixLine], [replica.MatrixRow, replica.MatrixLine]);
    await f.startWorker();
    const rows = Array.from({ length: 60 }, (_, i) => ({
      big: String(9007199254740993n + BigInt(i)),
      amount: `${1234 + i}.5678`,
      ratio: i === 0 ? null : 1 / (i + 3),
      label: `Row ${i} "quoted" 'single' %`,
      body: i % 7 === 0 ? null : `body ${i} ünïcödé 🚀\nline`,
      flag: i % 2 === 0,
      day: `2024-02-${String((i % 28) + 1).padStart(2, '0')}`,
      at: `${String(i % 24).padStart(2, '0')}:30:15`,
      localTime: new Date(Date.UTC(2024, 2, 10, 2, 30, 0, 123 + i)),
      instant: new Date(Date.UTC(2030, 0, 1, 0, 0, 0, 999 - i)),
      doc: { n: i, nested: { list: [1, 'two', null, true], f: 1.25 } },
      settings: { a: i },
      ref: `123e4567-e89b-12d3-a456-${String(426614174000 + i).padStart(12, '0')}`,
      mood: (i % 3 === 0 ? 'sad' : 'happy') as 'sad' | 'happy',
      tags: ['x', `y ${i}`],
    }));
    rows[4].label = null as unknown as string; // row 5: a NULL that drifts to a value
    await f.primary.getRepository(source.MatrixRow).save(rows);
    const lines = [];
    for (const code of ['A', 'b', 'c-9', 'Ünï']) for (let n = 1; n <= 5; n++) lines.push({ orderCode: code, lineNo: n, qty: n * 10 });
    await f.primary.getRepository(source.MatrixLine).save(lines);
    const converged = await f.converged(['MatrixRow', 'MatrixLine']);
    expect(converged.differences).toEqual([]);
  });

  afterAll(async () => {
    await f?.cleanup();
  });

  function byKind(report: ReconcileReport) {
    return {
      missing: [...report.samples.missing].sort(),
      extra: [...report.samples.extra].sort(),
      changed: report.samples.changed.map((c) => `${c.key}:${c.columns.join(',')}`).sort(),
    };
  }

  it('reports a replicated table as clean', async () => {
    const reports = await reconcile(f.dw, { lagWindow: 100 });
    // suspects = 0: the two engines' SQL hashed every row alike; nothing needed a look in Node.
    expect(reports.map((r) => [r.entity, r.status, r.rowsCompared, r.targetRows, r.suspects]).sort()).toEqual([
      ['MatrixLine', 'clean', 20, 20, 0],
      ['MatrixRow', 'clean', 60, 60, 0],
    ]);
  });

  it('finds exactly the engineered drift, then repairs it', async () => {
    const t = f.target;
    const row = q('matrix_row');
    // Missing: deleted from the target.
    await t.query(`DELETE FROM ${row} WHERE id IN (3, 17, 60)`);
    // Extra: rows the primary never had.
    await t.query(`INSERT INTO ${row} (id, ${q('label')}) VALUES (1001, 'ghost'), (1002, NULL)`);
    // Changed: one column of every type of the matrix on a row of its own (row id = i + 1).
    const changes: Array<[number, Record<string, unknown>]> = [
      [2, { big: '9007199254740999' }],
      [4, { amount: '1237.5679' }],
      [5, { label: 'now a value' }], // NULL → value
      [6, { label: null }], // value → NULL
      [7, { label: 'row 6 "quoted" \'single\' %' }], // case only (equal under MariaDB's default collation)
      [8, { body: 'was NULL' }], // NULL → value
      [9, { flag: false }],
      [10, { day: '2024-02-11' }],
      [11, { at: '10:30:16' }],
      [12, { localTime: new Date(Date.UTC(2024, 2, 10, 2, 30, 0, 135)) }], // 1 ms later
      [13, { instant: new Date(Date.UTC(2030, 0, 1, 0, 0, 0, 986)) }], // 1 ms earlier
      [14, { doc: { n: 13, nested: { list: [1, 'two', null, false], f: 1.25 } } }], // deep inside the JSON
      [15, { settings: { a: 15 } }],
      [16, { ref: '123e4567-e89b-12d3-a456-426614174016' }],
      [18, { mood: 'sad' }],
      [19, { tags: ['x', 'y 18 '] }],
      [20, { ratio: 1 / 22 + 1e-15 }], // a different double, 22 units in the last place away
      [1, { ratio: 0.25 }], // NULL → value
      [23, { body: null }], // value → NULL
      [24, { doc: null }], // JSON → NULL
    ];
    const repo = t.getRepository(replica.MatrixRow);
    for (const [id, values] of changes) await repo.update(id, values);
    const line = q('matrix_line');
    await t.query(`DELETE FROM ${line} WHERE ${q('orderCode')} = 'b' AND ${q('lineNo')} = 2`);
    await t.query(`INSERT INTO ${line} (${q('orderCode')}, ${q('lineNo')}, qty) VALUES ('zz', 1, 5)`);
    await t.query(`UPDATE ${line} SET qty = 999 WHERE ${q('orderCode')} = 'Ünï' AND ${q('lineNo')} = 5`);

    const [rowReport] = await reconcile(f.dw, { entity: 'MatrixRow', lagWindow: 100 });
    const [lineReport] = await reconcile(f.dw, { entity: 'MatrixLine', lagWindow: 100 });
    expect(byKind(rowReport)).toEqual({
      missing: ['17', '3', '60'],
      extra: ['1001', '1002'],
      changed: changes.map(([id, values]) => `${id}:${Object.keys(values).join(',')}`).sort(),
    });
    expect(rowReport).toMatchObject({ status: 'drift', missing: 3, extra: 2, changed: changes.length, repaired: 0, hotKeys: 0 });
    expect(rowReport.suspects).toBe(3 + 2 + changes.length);
    expect(byKind(lineReport)).toEqual({ missing: ['["b","2"]'], extra: ['["zz","1"]'], changed: ['["Ünï","5"]:qty'] });

    // The reports are stored for `status` and the dashboard.
    const stored = await readReconcileReports(f.dw.redis, f.prefix);
    expect(stored.map((r) => `${r.target}:${r.entity}:${r.status}`)).toEqual(['t:MatrixLine:drift', 't:MatrixRow:drift']);

    // Repair goes through the outbox and the worker.
    const repaired = await reconcile(f.dw, { lagWindow: 100, repair: true });
    for (const report of repaired) {
      expect(report.status).toBe('repaired');
      expect(report.repaired).toBe(report.missing + report.extra + report.changed);
    }
    const converged = await f.converged(['MatrixRow', 'MatrixLine']);
    expect(converged.differences).toEqual([]);
    const after = await reconcile(f.dw, { lagWindow: 100 });
    expect(after.map((r) => r.status)).toEqual(['clean', 'clean']);
  });
});
