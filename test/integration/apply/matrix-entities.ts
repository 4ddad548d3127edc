import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { Replicate } from '../../../decorators';
import type { Engine } from '../../support/databases';

export type Mood = 'happy' | 'sad';

/**
 * The DESIGN type matrix as one entity. Each engine gets its own class with
 * the same name and columns, typed the way that engine spells them; only the
 * primary's class is marked @Replicate (the target's creates the table).
 */
export function matrixEntities(engine: Engine, replicated: boolean) {
  const pg = engine === 'postgres';
  const decorate = replicated ? Replicate({ to: ['t'] }) : () => undefined;

  @Entity('matrix_row')
  class MatrixRow {
    @PrimaryGeneratedColumn({ type: 'int' }) id!: number;
    @Column({ type: 'bigint', nullable: true }) big!: string | null;
    @Column({ type: 'decimal', precision: 14, scale: 4, nullable: true }) amount!: string | null;
    @Column({ type: 'double precision', nullable: true }) ratio!: number | null;
    @Column({ type: 'varchar', length: 120, nullable: true }) label!: string | null;
    @Column({ type: 'text', nullable: true }) body!: string | null;
    @Column({ type: 'boolean', nullable: true }) flag!: boolean | null;
    @Column({ type: 'date', nullable: true }) day!: string | null;
    @Column({ type: 'time', nullable: true }) at!: string | null;
    @Column({ type: pg ? 'timestamp' : 'datetime', precision: 3, nullable: true }) localTime!: Date | null;
    @Column({ type: pg ? 'timestamptz' : 'timestamp', precision: 3, nullable: true }) instant!: Date | null;
    @Column({ type: pg ? 'jsonb' : 'json', nullable: true }) doc!: unknown;
    @Column({ type: 'simple-json', nullable: true }) settings!: { a: number } | null;
    @Column({ type: 'uuid', nullable: true }) ref!: string | null;
    @Column({ type: 'enum', enum: ['happy', 'sad'], nullable: true }) mood!: Mood | null;
    @Column({ type: 'simple-array', nullable: true }) tags!: string[] | null;
  }
  decorate(MatrixRow);

  @Entity('matrix_line')
  class MatrixLine {
    @PrimaryColumn({ type: 'varchar', length: 20 }) orderCode!: string;
    @PrimaryColumn({ type: 'int' }) lineNo!: number;
    @Column({ type: 'int' }) qty!: number;
  }
  decorate(MatrixLine);

  return { MatrixRow, MatrixLine };
}
