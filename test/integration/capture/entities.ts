import {
  Column,
  CreateDateColumn,
  DeleteDateColumn,
  Entity,
  PrimaryColumn,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import { NotReplicated, Replicate } from '../../../decorators';

export const SECRET = 'card-4111-1111-1111-1111';

export class Address {
  @Column({ type: 'varchar', length: 80, nullable: true })
  city?: string | null;

  @Column({ type: 'varchar', length: 16, nullable: true })
  zip?: string | null;
}

@Replicate({ to: ['reporting', 'analytics'] })
@Entity('cap_order')
export class Order {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 80 })
  customer!: string;

  @Column({ type: 'decimal', precision: 12, scale: 2 })
  total!: string;

  @NotReplicated()
  @Column({ type: 'varchar', length: 64, nullable: true })
  cardNumber?: string | null;

  @Column(() => Address)
  address!: Address;

  @UpdateDateColumn()
  updatedAt!: Date;

  @DeleteDateColumn({ nullable: true })
  deletedAt?: Date | null;
}

@Replicate({ to: ['reporting'] })
@Entity('cap_line')
export class OrderLine {
  @PrimaryColumn({ type: 'int' })
  orderId!: number;

  @PrimaryColumn({ type: 'int' })
  lineNo!: number;

  @Column({ type: 'varchar', length: 40 })
  sku!: string;

  @Column({ type: 'int', default: 1 })
  quantity!: number;
}

export abstract class Audited {
  @CreateDateColumn()
  createdAt!: Date;

  @Column({ type: 'varchar', length: 40, default: 'system' })
  createdBy!: string;
}

@Replicate({ to: ['analytics'] })
@Entity('cap_customer')
export class Customer extends Audited {
  @PrimaryColumn({ type: 'varchar', length: 20 })
  code!: string;

  @Column({ type: 'varchar', length: 80 })
  name!: string;
}

/** Not replicated: writes to it must never reach the outbox. */
@Entity('cap_note')
export class Note {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 80 })
  text!: string;
}

export const ENTITIES = [Order, OrderLine, Customer, Note];
