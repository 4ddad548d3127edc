import type { QueryRunner } from 'typeorm';
import type { SessionLimits } from '../dialect/checksum-sql';
import type { Side } from './reconcile-table';

/**
 * Sets the reconciler's statement and lock timeouts on a session, so that in
 * a conflict with the application its queries are the ones that give up.
 * A setting the server does not know (MySQL has no `max_statement_time`) is
 * skipped.
 */
export async function limitSession(queryRunner: QueryRunner, side: Pick<Side, 'sql'>, limits: SessionLimits): Promise<void> {
  for (const sql of side.sql.limitSession(limits)) await run(queryRunner, sql);
}

/** Restores the session defaults before the connection goes back to the pool. */
export async function resetSession(queryRunner: QueryRunner, side: Pick<Side, 'sql'>): Promise<void> {
  if (queryRunner.isReleased) return;
  for (const sql of side.sql.resetSession()) await run(queryRunner, sql);
}

async function run(queryRunner: QueryRunner, sql: string): Promise<void> {
  try {
    await queryRunner.query(sql);
  } catch (error) {
    const code = (error as { driverError?: { code?: string }; code?: string }).driverError?.code ?? (error as { code?: string }).code;
    if (code !== 'ER_UNKNOWN_SYSTEM_VARIABLE') throw error;
  }
}
