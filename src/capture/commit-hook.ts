import type { QueryRunner } from 'typeorm';

type Query = QueryRunner['query'];

/**
 * TypeORM's `commitTransaction()` (0.3.x and 1.x alike) broadcasts
 * BeforeTransactionCommit, then sends `this.query("COMMIT")` on the same
 * query runner. Runs `commit` in place of that query, so the caller can send
 * its own last statements and the COMMIT in one round trip (`query` is the
 * runner's own, unreplaced). Any other query
 * passes through unchanged; a ROLLBACK, or `disarm()`, withdraws the
 * replacement. `isArmed()` tells whether the COMMIT has not come yet.
 */
export function replaceNextCommit(
  queryRunner: QueryRunner,
  commit: (query: (sql: string, parameters?: unknown[]) => Promise<unknown>) => Promise<void>,
): { disarm(): void; isArmed(): boolean } {
  const runner = queryRunner as { query: Query };
  const ownQuery = Object.prototype.hasOwnProperty.call(runner, 'query') ? runner.query : undefined;
  const passThrough = runner.query;
  let armed = true;
  const disarm = () => {
    if (!armed) return;
    armed = false;
    if (ownQuery) runner.query = ownQuery;
    else delete (runner as { query?: Query }).query;
  };
  const original = passThrough as (q: string, p?: unknown[], s?: boolean) => Promise<unknown>;
  runner.query = function replacedCommit(this: QueryRunner, query: string, parameters?: unknown[], structured?: boolean) {
    if (query === 'COMMIT' && !parameters?.length) {
      disarm();
      return commit((sql, params) => original.call(this, sql, params)) as Promise<never>;
    }
    if (query === 'ROLLBACK') disarm();
    return original.call(this, query, parameters, structured);
  } as Query;
  return { disarm, isArmed: () => armed };
}

/** The query runner's transaction depth (TypeORM keeps it on the runner; 1 = no savepoint open). */
export function transactionDepth(queryRunner: QueryRunner): number {
  return (queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? (queryRunner.isTransactionActive ? 1 : 0);
}
