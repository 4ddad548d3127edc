/**
 * The bad-input catalogue, part 7: a MariaDB/MySQL target whose key column
 * has a case-insensitive collation (MariaDB's default) while the primary is
 * PostgreSQL, where 'a' and 'A' are two keys. In the target they are one
 * row, so one of the two primary rows cannot exist there. The library does
 * not guess collations; what it guarantees is that this is not silent: the
 * worker warns once, naming the key column and the fix, and the
 * reconciler reports the drift (and keeps reporting it until the target's
 * key column gets a binary collation, after which repair converges).
 */
import pino from 'pino';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { DualWrite, reconcile, runMigrations } from '../../../src';
import { Replicate } from '../../../decorators';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { compareTarget, outboxCount } from '../faults/convergence';

jest.setTimeout(60_000);

@Replicate({ to: ['my'] })
@Entity('kc_code')
class KcCode {
  @PrimaryColumn({ type: 'varchar', length: 20 }) code!: string;
  @Column({ type: 'int' }) n!: number;
}

describe('bad input: a case-insensitive key collation in a MariaDB target (postgres primary)', () => {
  const prefix = queuePrefix();
  let dbs: TestDatabase[];
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;
  const warnings: Array<{ msg: string; columns?: string[] }> = [];

  beforeAll(async () => {
    const [p, my] = await Promise.all([createDatabase('postgres', 'dwkcp'), createDatabase('mariadb', 'dwkct')]);
    dbs = [p, my];
    primary = dataSource(p, [KcCode]);
    target = new DataSource({ ...my.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await target.query('CREATE TABLE kc_code (code varchar(20) NOT NULL PRIMARY KEY, n integer NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci');
    await runMigrations({ primary, targets: { my: target } });
    dw = await DualWrite.start({ primary, targets: { my: target }, redis: REDIS, queuePrefix: prefix, reconcile: { every: 0, lagWindow: 50 }, logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) }) });
    worker = await dw.startWorker();
  });

  afterAll(async () => {
    await worker?.close();
    await dw?.close();
    await Promise.all([primary, target].map((ds) => (ds?.isInitialized ? ds.destroy() : undefined)));
    await Promise.all((dbs ?? []).map((db) => db.drop()));
    await removeQueues(prefix);
  });

  it('is reported by the reconciler, and converges once the key column is binary', async () => {
    await primary.getRepository(KcCode).save([{ code: 'a', n: 1 }, { code: 'A', n: 2 }, { code: 'b', n: 3 }]);
    const idle = async () => {
      const { queue } = (await dw.overview()).targets[0];
      return (await outboxCount(primary)) === 0 && queue.waiting + queue.prioritized + queue.delayed + queue.active === 0;
    };
    // Three rows on the primary, two in the target: 'a' and 'A' are one key there. No dead letter says so.
    expect(await eventually(async () => (await idle()) && Number((await target.query('SELECT COUNT(*) AS n FROM kc_code'))[0].n) === 2, 20_000)).toBe(true);
    expect(await dw.listDeadLetters()).toEqual([]);
    const folding = warnings.filter((w) => w.msg.includes('case-insensitively'));
    expect(folding).toHaveLength(1);
    expect(folding[0]).toMatchObject({ columns: ['code'] });
    expect(folding[0].msg).toContain('utf8mb4_bin');

    const [report] = await reconcile(dw, { entity: 'KcCode' });
    expect(report.status).toBe('drift');
    expect(report.missing + report.changed).toBeGreaterThan(0);

    await target.query('ALTER TABLE kc_code MODIFY code varchar(20) COLLATE utf8mb4_bin NOT NULL');
    const [repaired] = await reconcile(dw, { entity: 'KcCode', repair: true });
    expect(repaired.status).toBe('repaired');
    expect(await eventually(async () => (await outboxCount(primary)) === 0 && (await compareTarget(dw, target, 'my', ['KcCode'])).equal, 20_000)).toBe(true);
  });
});
