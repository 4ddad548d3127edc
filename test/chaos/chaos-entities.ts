import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Replicate } from '../../decorators';

/** The chaos soak's two targets: a PostgreSQL one and a MariaDB one (private servers). */
export const CHAOS_TARGETS = ['pg', 'maria'] as const;
export const CHAOS_ENTITY_NAMES = ['ChaosItem', 'ChaosPair', 'ChaosCounter'];

/**
 * The three entities of the chaos soak. Each call makes fresh classes, so the
 * primary's (marked @Replicate) and the targets' (plain, only to create the
 * tables) never share decorator metadata. Column types are spelled the same on
 * both engines: the soak is about delivery under faults, not the type matrix.
 */
export function chaosEntities(replicated: boolean) {
  const decorate = replicated ? Replicate({ to: [...CHAOS_TARGETS] }) : () => undefined;

  /** Integer key; each writer owns the ids ≡ its index (mod writers). */
  @Entity('chaos_item')
  class ChaosItem {
    @PrimaryColumn({ type: 'int' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) label!: string;
    @Column({ type: 'int' }) qty!: number;
    @Column({ type: 'text', nullable: true }) note!: string | null;
  }
  decorate(ChaosItem);

  /** Composite string key, lowercase only (MariaDB's default collation is case-insensitive); owners are prefixed per writer. */
  @Entity('chaos_pair')
  class ChaosPair {
    @PrimaryColumn({ type: 'varchar', length: 24 }) owner!: string;
    @PrimaryColumn({ type: 'int' }) slot!: number;
    @Column({ type: 'bigint' }) total!: string;
  }
  decorate(ChaosPair);

  /** A few hot rows that EVERY writer updates: concurrent writers of one row, ordered only by the primary's row locks. */
  @Entity('chaos_counter')
  class ChaosCounter {
    @PrimaryColumn({ type: 'varchar', length: 16 }) name!: string;
    @Column({ type: 'bigint' }) value!: string;
    @Column({ type: 'varchar', length: 16 }) writer!: string;
  }
  decorate(ChaosCounter);

  return { ChaosItem, ChaosPair, ChaosCounter, all: [ChaosItem, ChaosPair, ChaosCounter] };
}

export type ChaosEntities = ReturnType<typeof chaosEntities>;

export const COUNTERS = 32;
export const counterName = (i: number) => `c${String(i).padStart(2, '0')}`;
