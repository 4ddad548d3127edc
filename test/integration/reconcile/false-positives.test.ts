import { reconcile } from '../../../src';
import { matrixEntities } from '../apply/matrix-entities';
import { PAIRS, pairFixture, type PairFixture } from './pair-fixture';
import { randomMatrixRows } from './random-matrix';

/** RECONCILE_FP_ROWS scales the table (default 100,000 rows per engine pair). */
const ROWS = Number(process.env.RECONCILE_FP_ROWS ?? 100_000);
let generated: Array<Record<string, unknown>> | undefined;
const rows = () => (generated ??= randomMatrixRows(11, ROWS));

/**
 * Zero false positives: random rows covering the whole type matrix, written
 * into the target exactly as the apply writes them (its value decoding and
 * upsert SQL; the queue and the ledger, which do not touch values, are left
 * out to keep the test fast — the engineered-drift test goes through the
 * whole pipeline), reconcile clean — and not only in the end: no row even
 * needed a second look (the two engines' SQL hashed every row alike).
 */
describe.each(PAIRS)('reconcile on %s → %s: no false positives', (primaryEngine, targetEngine) => {
  const source = matrixEntities(primaryEngine, true);
  const replica = matrixEntities(targetEngine, false);
  let f: PairFixture;

  beforeAll(async () => {
    f = await pairFixture(primaryEngine, targetEngine, [source.MatrixRow, source.MatrixLine], [replica.MatrixRow, replica.MatrixLine]);
  }, 60_000);

  afterAll(async () => {
    await f?.cleanup();
  });

  it(`finds nothing in ${ROWS} random rows of every type`, async () => {
    await f.bulkLoad('MatrixRow', rows(), 'direct');
    const [report] = await reconcile(f.dw, { entity: 'MatrixRow', lagWindow: 100 });
    expect({ status: report.status, rowsCompared: report.rowsCompared, targetRows: report.targetRows, suspects: report.suspects }).toEqual({
      status: 'clean',
      rowsCompared: ROWS,
      targetRows: ROWS,
      suspects: 0,
    });
  }, 300_000);
});
