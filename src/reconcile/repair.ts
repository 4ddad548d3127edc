import type { QueryRunner } from 'typeorm';
import type { SessionLimits } from '../dialect/checksum-sql';
import { classifyError } from '../errors/classify-error';
import type { Logger } from '../observability/logger';
import { OutboxWriter, type CapturedChange } from '../outbox/outbox-writer';
import type { ReconcileTable } from './reconcile-table';
import { readRowImagesForUpdate } from './row-images-by-key';
import type { ConfirmedDrift } from './second-look';
import { limitSession, resetSession } from './session-limits';

const KEYS_PER_TRANSACTION = 500;
/** Failures that mean "the application holds these rows right now": give up, try the keys later. */
const CONFLICTS = new Set(['lock-timeout', 'deadlock', 'statement-timeout', 'serialization']);

export interface RepairOutcome {
  /** Keys for which a change carrying the primary's current state was written to the outbox. */
  repaired: number;
  /** Keys that were busy (locked, or changed meanwhile): left to the next look. */
  hot: string[][];
}

/**
 * Repairs confirmed drift THROUGH THE NORMAL PATH (DESIGN §3.6): for each
 * batch of keys, one primary transaction writes outbox rows for the target
 * alone, so the changes get fresh versions and the target's version gate
 * lets any newer write win. Per key:
 *
 * - missing or changed: a locking read of the primary's row, then an upsert
 *   with that image. The lock makes the outbox sequence, allocated after the
 *   read, later than that of any write that committed before it; a writer
 *   that comes later waits for the commit and gets a later sequence. A row
 *   that is gone by then was deleted meanwhile: its delete is on its way,
 *   so nothing is written.
 * - extra (the primary has no such row): a versioned delete, whose sequence
 *   is allocated BEFORE the locking read, so a concurrent insert of that key
 *   that allocated a smaller sequence is visible to the read (PostgreSQL: after
 *   waiting for the transactions in progress; InnoDB: the read waits for the
 *   inserting transaction's lock) and is re-emitted as an upsert after the
 *   delete. An insert that allocates later wins by its own version.
 */
export async function repairDrift(
  table: ReconcileTable,
  drift: readonly ConfirmedDrift[],
  limits: SessionLimits,
  logger: Logger,
): Promise<RepairOutcome> {
  const outcome: RepairOutcome = { repaired: 0, hot: [] };
  const outbox = new OutboxWriter(table.primary.dialect);
  for (let start = 0; start < drift.length; start += KEYS_PER_TRANSACTION) {
    const batch = drift.slice(start, start + KEYS_PER_TRANSACTION);
    const queryRunner = table.primary.dataSource.createQueryRunner('master');
    try {
      await queryRunner.connect();
      const done = await repairBatch(queryRunner, table, batch, outbox, limits);
      outcome.repaired += done.repaired;
      outcome.hot.push(...done.hot);
    } catch (error) {
      if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
      const classified = classifyError(error);
      if (!CONFLICTS.has(classified.reason)) throw error;
      logger.info({ entity: table.entity.name, target: table.target, keys: batch.length, reason: classified.reason }, 'repair postponed: rows are busy');
      outcome.hot.push(...batch.map((d) => d.key));
    } finally {
      await resetSession(queryRunner, table.primary).catch(() => undefined);
      await queryRunner.release().catch(() => undefined);
    }
  }
  return outcome;
}

async function repairBatch(
  queryRunner: QueryRunner,
  table: ReconcileTable,
  batch: readonly ConfirmedDrift[],
  outbox: OutboxWriter,
  limits: SessionLimits,
): Promise<RepairOutcome> {
  const primary = table.primary;
  const entity = table.entity.name;
  const change = (key: string[], row: CapturedChange['row']): CapturedChange => ({
    entity,
    op: row ? 'upsert' : 'delete',
    key,
    row,
    targets: table.target,
    capturedAt: Date.now(),
  });
  await limitSession(queryRunner, primary, limits);
  await queryRunner.startTransaction();
  const extras = batch.filter((d) => d.kind === 'extra');
  if (extras.length) {
    await outbox.write(queryRunner, extras.map((d) => change(d.key, null)));
    if (primary.dialect.name === 'postgres') await waitForConcurrentTransactions(queryRunner, limits.lockTimeout);
  }
  const rows = await readRowImagesForUpdate(queryRunner, primary.dialect, table.entity, batch.map((d) => d.key), primary.keyParams);
  const changes: CapturedChange[] = [];
  const hot: string[][] = [];
  for (const d of batch) {
    const row = rows.get(d.key.join('\u0000')) ?? null;
    // An extra that exists now was inserted meanwhile: re-emit it after the delete.
    if (row) changes.push(change(d.key, row));
    else if (d.kind !== 'extra') hot.push(d.key);
  }
  if (changes.length) await outbox.write(queryRunner, changes);
  await queryRunner.commitTransaction();
  return { repaired: batch.length - hot.length, hot };
}

/**
 * PostgreSQL does not make a reader wait for an uncommitted INSERT of the key
 * it looks for. Waiting for every transaction that was in progress once our
 * sequence was allocated makes the following read see each insert whose
 * sequence is smaller than ours. (A later transaction allocates a later
 * sequence.) In progress are the snapshot's `xip` and, as PostgreSQL does not
 * list them there, every transaction id from the snapshot's `xmax` up to ours.
 * Transaction ids are server-wide: those that pg_stat_activity (or
 * pg_prepared_xacts) shows in ANOTHER database are left out — they cannot
 * write this database's rows, and one long transaction elsewhere on a shared
 * server used to postpone every repair of an extra row (found by the chaos
 * soak). Without the privilege to see other sessions, nothing is left out.
 */
async function waitForConcurrentTransactions(queryRunner: QueryRunner, timeoutMs: number): Promise<void> {
  // pg_stat_activity is read once per transaction unless its snapshot is cleared.
  await queryRunner.query('SELECT pg_stat_clear_snapshot()');
  const rows = (await queryRunner.query(
    'WITH s AS (SELECT pg_current_snapshot() AS snap, pg_current_xact_id()::text::bigint AS me), ' +
      'elsewhere AS (SELECT backend_xid AS x FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database() ' +
      'UNION ALL SELECT transaction FROM pg_prepared_xacts WHERE database <> current_database()), ' +
      'candidates AS (SELECT x FROM s, pg_snapshot_xip(s.snap) AS x WHERE x::text::bigint <> s.me ' +
      'UNION SELECT g::text::xid8 FROM s, generate_series(pg_snapshot_xmax(s.snap)::text::bigint, s.me - 1) AS g) ' +
      'SELECT x::text AS xid FROM candidates WHERE x::xid NOT IN (SELECT x FROM elsewhere)',
  )) as Array<{ xid: string }>;
  let pending = rows.map((r) => r.xid);
  const deadline = Date.now() + timeoutMs;
  while (pending.length) {
    const still = (await queryRunner.query(
      "SELECT x::text AS xid FROM unnest($1::xid8[]) AS x WHERE pg_xact_status(x) = 'in progress'",
      [pending],
    )) as Array<{ xid: string }>;
    pending = still.map((r) => r.xid);
    if (pending.length === 0) return;
    if (Date.now() > deadline) throw Object.assign(new Error(`transactions ${pending.join(', ')} still in progress`), { code: '55P03' });
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
