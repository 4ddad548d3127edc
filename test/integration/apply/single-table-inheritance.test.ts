import { ChildEntity, Column, DataSource, Entity, PrimaryColumn, TableInheritance } from 'typeorm';
import { reconcile } from '../../../src';
import { Replicate } from '../../../decorators';
import { ENGINES, type Engine } from '../../support/databases';
import { eventually } from '../../support/compare';
import { replicationFixture, type ReplicationFixture } from '../../support/harness';

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

const PAIRS: Array<[Engine, Engine]> = ENGINES.flatMap((p) => ENGINES.map((t) => [p, t] as [Engine, Engine]));

describe.each(PAIRS)('single-table inheritance, %s → %s', (primaryEngine, targetEngine) => {
  const source = paymentEntities(true);
  const replica = paymentEntities(false);
  let fx: ReplicationFixture;

  beforeAll(async () => {
    fx = await replicationFixture(primaryEngine, targetEngine, Object.values(source), Object.values(replica));
  });

  afterAll(async () => {
    await fx?.cleanup();
  });

  async function rows(ds: DataSource) {
    const raw = (await ds.query('SELECT id, kind, amount, last4, network, iban FROM payment ORDER BY id')) as Array<Record<string, unknown>>;
    return raw.map((r) => ({ ...r, id: Number(r.id), amount: String(r.amount) }));
  }

  it('replicates writes through the root and the child entities as one entity, discriminator and defaults included', async () => {
    expect([...fx.dw.entities.keys()]).toEqual(['Payment']);
    await fx.primary.getRepository(source.CardPayment).save({ id: 1, amount: '10.00', last4: '4242' });
    await fx.primary.getRepository(source.BankPayment).save({ id: 2, amount: '20.00', iban: 'DE00' });
    await fx.primary.getRepository(source.Payment).save({ id: 1, amount: '11.00' });
    const bank = fx.primary.getRepository(source.BankPayment);
    await bank.remove(await bank.findOneByOrFail({ id: 2 }));
    await fx.primary.transaction(async (m) => {
      await m.save(source.CardPayment, { id: 3, amount: '30.00', last4: '0000', network: 'amex' });
      await m.save(source.BankPayment, { id: 4, amount: '40.00', iban: 'FR76' });
      await m.save(source.Payment, { id: 5, amount: '50.00' });
    });
    let want: unknown;
    let got: unknown;
    const converged = await eventually(async () => {
      want = await rows(fx.primary);
      got = await rows(fx.target);
      return JSON.stringify(want) === JSON.stringify(got);
    });
    expect(got).toEqual(want);
    expect(converged).toBe(true);
    expect((want as Array<{ kind: string }>).map((r) => r.kind)).toEqual(['card', 'card', 'bank', 'Payment']);
    const reports = await reconcile(fx.dw);
    expect(reports.map((r) => [r.entity, r.status, r.missing, r.extra, r.changed])).toEqual([['Payment', 'clean', 0, 0, 0]]);
  });
});
