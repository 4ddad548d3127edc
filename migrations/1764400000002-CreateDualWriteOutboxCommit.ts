import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isPostgres } from './1764400000000-CreateDualWriteOutbox';
import { OUTBOX_COMMIT_PROCEDURE, OUTBOX_TABLE } from './table-names';

/**
 * On a MariaDB 10.5+ PRIMARY: a procedure that writes one outbox row and
 * COMMITs the caller's open transaction, in one round trip. TypeORM's MySQL
 * connections send one statement at a time, so without it a transaction that
 * captured a change pays a round trip of its own for the outbox INSERT;
 * capture uses the procedure when it exists (for transactions that captured
 * one change) and the plain INSERT otherwise. Does nothing on PostgreSQL
 * (which sends the INSERT with its COMMIT anyway) or MySQL. Add this class to
 * the primary DataSource's `migrations` after the outbox's, or run
 * `dualwrite migrate`.
 */
export class CreateDualWriteOutboxCommit1764400000002 implements MigrationInterface {
  name = 'CreateDualWriteOutboxCommit1764400000002';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (isPostgres(queryRunner) || !(await supportsReturning(queryRunner))) return;
    // Text parameters in utf8mb4 whatever the database's default character set, like the table's columns.
    await queryRunner.query(`CREATE OR REPLACE PROCEDURE \`${OUTBOX_COMMIT_PROCEDURE}\`(
        IN p_entity varchar(255) CHARACTER SET utf8mb4,
        IN p_op varchar(8) CHARACTER SET utf8mb4,
        IN p_pk text CHARACTER SET utf8mb4,
        IN p_row_image longtext CHARACTER SET utf8mb4,
        IN p_targets text CHARACTER SET utf8mb4,
        IN p_captured_at bigint,
        IN p_trace varchar(128) CHARACTER SET utf8mb4)
      MODIFIES SQL DATA
      BEGIN
        INSERT INTO \`${OUTBOX_TABLE}\` (entity, op, pk, row_image, targets, captured_at, trace)
          VALUES (p_entity, p_op, p_pk, p_row_image, p_targets, p_captured_at, p_trace)
          RETURNING CAST(seq AS CHAR) AS seq;
        COMMIT;
      END`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (!isPostgres(queryRunner)) await queryRunner.query(`DROP PROCEDURE IF EXISTS \`${OUTBOX_COMMIT_PROCEDURE}\``);
  }
}

/** MariaDB 10.5 or later: INSERT … RETURNING. */
async function supportsReturning(queryRunner: QueryRunner): Promise<boolean> {
  const [row] = (await queryRunner.query('SELECT VERSION() AS version')) as Array<{ version?: string }>;
  const match = /^(\d+)\.(\d+).*mariadb/i.exec(String(row?.version ?? ''));
  if (!match) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 10 || (major === 10 && minor >= 5);
}
