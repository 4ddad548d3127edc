import type { MigrationInterface, QueryRunner } from 'typeorm';
import { OUTBOX_TABLE } from './table-names';

/**
 * The outbox on the PRIMARY database. A row holds one change, or a batch of
 * one transaction's changes of one entity (`op` = 'batch'); its `seq` gives
 * their versions (`seq × 1000 + place`): it is allocated while the entity
 * writes still hold their row locks, so later writers of a row get a greater value. Add this class to the primary
 * DataSource's `migrations`, or run `dualwrite migrate`.
 */
export class CreateDualWriteOutbox1764400000000 implements MigrationInterface {
  name = 'CreateDualWriteOutbox1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (isPostgres(queryRunner)) {
      await queryRunner.query(`CREATE TABLE IF NOT EXISTS "${OUTBOX_TABLE}" (
        seq bigserial PRIMARY KEY,
        entity varchar(255) NOT NULL,
        op varchar(8) NOT NULL,
        pk text NOT NULL,
        row_image text NULL,
        targets text NOT NULL,
        captured_at bigint NOT NULL,
        trace varchar(128) NULL
      )`);
    } else {
      await queryRunner.query(`CREATE TABLE IF NOT EXISTS \`${OUTBOX_TABLE}\` (
        seq bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        entity varchar(255) NOT NULL,
        op varchar(8) NOT NULL,
        pk text NOT NULL,
        row_image longtext NULL,
        targets text NOT NULL,
        captured_at bigint NOT NULL,
        trace varchar(128) NULL
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS ${quote(queryRunner, OUTBOX_TABLE)}`);
  }
}

export function isPostgres(queryRunner: QueryRunner): boolean {
  const type = String(queryRunner.connection.options.type);
  return type === 'postgres' || type === 'aurora-postgres';
}

export function quote(queryRunner: QueryRunner, name: string): string {
  return isPostgres(queryRunner) ? `"${name}"` : `\`${name}\``;
}
