import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { NotReplicated, Replicate } from 'typeorm-dualwrite/decorators';

// Explicit `type:` on every column keeps these entities loadable by tools
// that emit no decorator metadata (tsx, esbuild).

@Replicate({ to: ['reporting', 'analytics'] })
@Entity('demo_customer')
export class Customer {
  @PrimaryColumn({ type: 'varchar', length: 20 })
  code!: string;

  @Column({ type: 'varchar', length: 80 })
  name!: string;

  /** Stays in the primary: never in the outbox, Redis, logs or a target. */
  @NotReplicated()
  @Column({ type: 'varchar', length: 64, nullable: true })
  cardToken!: string | null;
}

@Replicate({ to: ['reporting', 'analytics'], table: { analytics: 'orders_replica' } })
@Entity('demo_order')
export class Order {
  @PrimaryGeneratedColumn({ type: 'int' })
  id!: number;

  @Column({ type: 'varchar', length: 20 })
  customerCode!: string;

  @Column({ type: 'decimal', precision: 12, scale: 2 })
  total!: string;

  @Column({ type: 'varchar', length: 16, default: 'open' })
  status!: string;

  @CreateDateColumn({ type: 'timestamp', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ type: 'timestamp', precision: 3 })
  updatedAt!: Date;
}
