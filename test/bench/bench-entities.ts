import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Replicate } from '../../decorators';
import type { Engine } from '../support/databases';

/** One table shape for every benchmark; the replicated class and a plain twin with the same columns. */
export function benchEntities(engine: Engine) {
  const ts = engine === 'postgres' ? 'timestamptz' : 'datetime';

  @Replicate({ to: ['t'] })
  @Entity('bench_item')
  class BenchItem {
    @PrimaryColumn({ type: 'int' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) name!: string;
    @Column({ type: 'decimal', precision: 12, scale: 2 }) price!: string;
    @Column({ type: 'int' }) qty!: number;
    @Column({ type: ts, precision: 3 }) at!: Date;
  }

  @Entity('bench_plain')
  class BenchPlain {
    @PrimaryColumn({ type: 'int' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) name!: string;
    @Column({ type: 'decimal', precision: 12, scale: 2 }) price!: string;
    @Column({ type: 'int' }) qty!: number;
    @Column({ type: ts, precision: 3 }) at!: Date;
  }

  return { BenchItem, BenchPlain };
}

export function item(id: number, round = 0) {
  return { id, name: `item-${id}-${round}`, price: `${(id % 1000) + round}.25`, qty: id % 97, at: new Date(1_700_000_000_000 + id * 1000 + round) };
}
