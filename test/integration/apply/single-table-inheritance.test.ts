import { ChildEntity, Column, DataSource, Entity, PrimaryColumn, TableInheritance } from 'typeorm';
import { DualWrite, reconcile, runMigrations } from '../../../src';
import { Replicate } from '../../../decorators';
import { createDatabase, dataSource, ENGINES, type Engine, type TestDatabase } from '../../support/databases';
import { eventually } from '../../support/compare';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';

/** A single-table hierarchy: every kind of payment in table `payment`, told apart by `kind`. */
function paymentEntities(replicated: boolean) {
  @Entity('payment')
  @TableInheritance({ column: { type: 'varchar', length: 16, name: 'kind' } })
  class Payment {
    @PrimaryColumn({ type: 'int' }) id!: number;
    @Column({ type: 'decimal', precision: 10, scale: 2 }) amount!: string;
  }
  if (replicated) Replicate({ to: ['t'] })(Payment);

  @ChildEntity('card')
  class CardPayment extends Payment {
    @Column({ type: 'varchar', length: 4, nullable: true }) last4!: string | null;
    @Column({ type: 'varchar', length: 8, default: 'visa' }) network!: string;
  }

  @ChildEntity('bank')
  class BankPayment extends Payment {
    @Column({ type: 'varchar', length: 34, nullable: true }) iban!: string | null;
  }
  return { Payment, CardPayment, BankPayment };
}

const PAIRS: Array<[Engine, Engine]> = ENGINES.map((p) => [p, p === 'postgres' ? 'mariadb' : 'postgres']);

describe.each(PAIRS)('single-table inheritance, %s → %s', (primaryEngine, targetEngine) => {
  const source = paymentEntities(true);
  const replica = paymentEntities(false);
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> };
  const prefix = queuePrefix();

  beforeAll(async () => {
    primaryDb = await createDatabase(primaryEngine, 'dwp');
    targetDb = await createDatabase(targetEngine, 'dwt');
    primary = dataSource(primaryDb, [source.Payment, source.CardPayment, source.BankPayment]);
    target = dataSource(targetDb, [replica.Payment, replica.CardPayment, replica.BankPayment]);
    await primary.initialize();
    await target.initialize();
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } });
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

  async function rows(ds: DataSource) {
    const raw = (await ds.query('SELECT id, kind, amount, last4, network, iban FROM payment ORDER BY id')) as Array<Record<string, unknown>>;
    return raw.map((r) => ({ ...r, id: Number(r.id), amount: String(r.amount) }));
  }

  it('replicates writes through the root and the child entities as one entity, discriminator and defaults included', async () => {
    expect([...dw.entities.keys()]).toEqual(['Payment']);
    await primary.getRepository(source.CardPayment).save({ id: 1, amount: '10.00', last4: '4242' });
    await primary.getRepository(source.BankPayment).save({ id: 2, amount: '20.00', iban: 'DE00' });
    await primary.getRepository(source.Payment).save({ id: 1, amount: '11.00' });
    const bank = primary.getRepository(source.BankPayment);
    await bank.remove(await bank.findOneByOrFail({ id: 2 }));
    await primary.transaction(async (m) => {
      await m.save(source.CardPayment, { id: 3, amount: '30.00', last4: '0000', network: 'amex' });
      await m.save(source.BankPayment, { id: 4, amount: '40.00', iban: 'FR76' });
      await m.save(source.Payment, { id: 5, amount: '50.00' });
    });
    let want: unknown;
    let got: unknown;
    const converged = await eventually(async () => {
      want = await rows(primary);
      got = await rows(target);
      return JSON.stringify(want) === JSON.stringify(got);
    });
    expect(got).toEqual(want);
    expect(converged).toBe(true);
    expect((want as Array<{ kind: string }>).map((r) => r.kind)).toEqual(['card', 'card', 'bank', 'Payment']);
    const reports = await reconcile(dw);
    expect(reports.map((r) => [r.entity, r.status, r.missing, r.extra, r.changed])).toEqual([['Payment', 'clean', 0, 0, 0]]);
  });
});
