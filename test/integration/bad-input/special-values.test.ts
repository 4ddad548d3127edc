/**
 * The bad-input catalogue, part 6: values a target engine cannot hold, which
 * must never turn silently into something else. PostgreSQL's float columns
 * hold NaN and ±Infinity; JSON has no such numbers (JSON.stringify writes
 * null), so without care they would reach every target as NULL. They must
 * arrive as themselves in a PostgreSQL target, and become a dead letter that
 * says why in a MariaDB one (which has no NaN), while the other rows apply.
 */
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { DualWrite, reconcile, runMigrations } from '../../../src';
import { Replicate } from '../../../decorators';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { outboxCount } from '../faults/convergence';

jest.setTimeout(60_000);

@Replicate({ to: ['pg', 'my'] })
@Entity('sv_reading')
class SvReading {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'double precision', nullable: true }) value!: number | null;
}

describe('bad input: float values a target cannot hold (postgres → postgres and mariadb)', () => {
  const prefix = queuePrefix();
  let dbs: TestDatabase[];
  let primary: DataSource;
  let targets: Record<'pg' | 'my', DataSource>;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    const [p, pg, my] = await Promise.all([createDatabase('postgres', 'dwsvp'), createDatabase('postgres', 'dwsvt'), createDatabase('mariadb', 'dwsvt')]);
    dbs = [p, pg, my];
    primary = dataSource(p, [SvReading]);
    targets = { pg: dataSource(pg, [SvReading]), my: dataSource(my, [SvReading]) };
    await Promise.all([primary.initialize(), targets.pg.initialize(), targets.my.initialize()]);
    await runMigrations({ primary, targets });
    dw = await DualWrite.start({
      primary,
      targets,
      redis: REDIS,
      queuePrefix: prefix,
      retry: { attempts: 3, delay: 100, maxDelay: 500, jitter: 0 },
      reconcile: { every: 0 },
      logger: { level: 'silent' },
    });
    worker = await dw.startWorker();
  });

  afterAll(async () => {
    await worker?.close();
    await dw?.close();
    await Promise.all([primary, targets?.pg, targets?.my].map((ds) => (ds?.isInitialized ? ds.destroy() : undefined)));
    await Promise.all((dbs ?? []).map((db) => db.drop()));
    await removeQueues(prefix);
  });

  it('NaN and ±Infinity arrive as themselves in PostgreSQL and as dead letters in MariaDB, never as NULL', async () => {
    await primary.getRepository(SvReading).save([
      { id: 1, value: 1.5 },
      { id: 2, value: Number.NaN },
      { id: 3, value: Number.POSITIVE_INFINITY },
      { id: 4, value: Number.NEGATIVE_INFINITY },
      { id: 5, value: null },
    ]);
    // Also through a read-back path (the driver's value, not the entity's).
    await primary.getRepository(SvReading).upsert([{ id: 6, value: Number.NaN }], ['id']);

    const settled = await eventually(
      async () => (await outboxCount(primary)) === 0 && (await dw.listDeadLetters({ target: 'my' })).length === 4 && (await rows(targets.pg)).size === 6,
      30_000,
      100,
    );
    const letters = await dw.listDeadLetters();
    expect({ settled, letters: letters.map((l) => `${l.target} ${l.change.key[0]} ${l.failure.message}`) }).toMatchObject({ settled: true });

    expect(await rows(targets.pg)).toEqual(
      new Map<number, string | null>([[1, '1.5'], [2, 'NaN'], [3, 'Infinity'], [4, '-Infinity'], [5, null], [6, 'NaN']]),
    );
    expect(letters.every((l) => l.target === 'my')).toBe(true);
    expect(letters.map((l) => Number(l.change.key[0])).sort()).toEqual([2, 3, 4, 6]);
    for (const letter of letters) {
      expect(letter.failure).toMatchObject({ class: 'permanent', reason: 'data' });
      expect(letter.failure.message).toMatch(/^Incorrect double value: '(NaN|Infinity|-Infinity)' for column .*`value`/);
    }
    expect(await rows(targets.my)).toEqual(new Map<number, string | null>([[1, '1.5'], [5, null]]));
    const [report] = await reconcile(dw, { entity: 'SvReading', target: 'pg' });
    expect(`${report.status} ${report.rowsCompared}`).toBe('clean 6');
  });
});

/** id → the value as text, so NaN and the infinities compare. */
async function rows(ds: DataSource): Promise<Map<number, string | null>> {
  const pg = ds.options.type === 'postgres';
  const result = (await ds.query(`SELECT id, ${pg ? 'value::text' : 'CAST(value AS CHAR)'} AS v FROM sv_reading`)) as Array<{ id: number; v: string | null }>;
  return new Map(result.map((r) => [Number(r.id), r.v]));
}
