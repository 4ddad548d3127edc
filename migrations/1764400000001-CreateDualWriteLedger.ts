import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isPostgres, quote } from './1764400000000-CreateDualWriteOutbox';
import { LEDGER_TABLE } from './table-names';

/**
 * The version ledger in each TARGET database: the newest version applied for
 * each (entity, row key), and whether that version was a delete (a tombstone,
 * kept until the retention passes). Updated in the same transaction as the
 * rows it describes. On MySQL/MariaDB, whose upsert cannot return which rows
 * it changed, `prior_version` keeps the version the last upsert found. Add this class to each target DataSource's
 * `migrations`, or run `dualwrite migrate`.
 */
export class CreateDualWriteLedger1764400000001 implements MigrationInterface {
  name = 'CreateDualWriteLedger1764400000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (isPostgres(queryRunner)) {
      await queryRunner.query(`CREATE TABLE IF NOT EXISTS "${LEDGER_TABLE}" (
        entity varchar(255) NOT NULL,
        row_key varchar(512) NOT NULL,
        version bigint NOT NULL,
        deleted boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (entity, row_key)
      )`);
      await queryRunner.query(
        `CREATE INDEX IF NOT EXISTS "${LEDGER_TABLE}_tombstones" ON "${LEDGER_TABLE}" (updated_at) WHERE deleted`,
      );
    } else {
      await queryRunner.query(`CREATE TABLE IF NOT EXISTS \`${LEDGER_TABLE}\` (
        entity varchar(191) NOT NULL,
        row_key varchar(512) NOT NULL,
        version bigint NOT NULL,
        deleted tinyint(1) NOT NULL DEFAULT 0,
        prior_version bigint NOT NULL DEFAULT 0,
        updated_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        PRIMARY KEY (entity, row_key),
        KEY \`${LEDGER_TABLE}_tombstones\` (deleted, updated_at)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS ${quote(queryRunner, LEDGER_TABLE)}`);
  }
}
