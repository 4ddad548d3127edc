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

  return { BenchItem, BenchPlain, ...wideEntities(ts) };
}

/** Columns of the wide table: id and 20 values, five each of these kinds. */
const WIDE_KINDS = ['varchar', 'int', 'decimal', 'timestamp'] as const;
const WIDE_COLUMNS = 20;

/**
 * A wider table, as many applications' entities are (id and 20 columns):
 * what capture costs grows with the columns (row images, the outbox row's
 * bytes, and TypeORM's own recompute of changed columns after our hooks).
 */
function wideEntities(ts: string) {
  const columns = (target: Function) => {
    PrimaryColumn({ type: 'int' })(target.prototype, 'id');
    for (let i = 0; i < WIDE_COLUMNS; i++) {
      const kind = WIDE_KINDS[i % WIDE_KINDS.length];
      const options =
        kind === 'varchar' ? { type: 'varchar', length: 48 } as const
        : kind === 'int' ? { type: 'int' } as const
        : kind === 'decimal' ? { type: 'decimal', precision: 12, scale: 2 } as const
        : { type: ts as 'timestamp', precision: 3 };
      Column(options)(target.prototype, `c${i}`);
    }
  };

  @Replicate({ to: ['t'] })
  @Entity('bench_wide')
  class BenchWide {}
  columns(BenchWide);

  @Entity('bench_wide_plain')
  class BenchWidePlain {}
  columns(BenchWidePlain);

  return { BenchWide, BenchWidePlain };
}

export function wideItem(id: number) {
  const row: Record<string, unknown> = { id };
  for (let i = 0; i < WIDE_COLUMNS; i++) {
    const kind = WIDE_KINDS[i % WIDE_KINDS.length];
    row[`c${i}`] =
      kind === 'varchar' ? `value-${id}-${i}`
      : kind === 'int' ? (id * 31 + i) % 100_000
      : kind === 'decimal' ? `${(id + i) % 10_000}.50`
      : new Date(1_700_000_000_000 + id * 1000 + i);
  }
  return row;
}

export function item(id: number, round = 0) {
  return { id, name: `item-${id}-${round}`, price: `${(id % 1000) + round}.25`, qty: id % 97, at: new Date(1_700_000_000_000 + id * 1000 + round) };
}
