import { OUTBOX_TABLE } from '../../migrations/table-names';
import type { QueryRunner } from 'typeorm';
import { dialectFor } from '../dialect/dialect-for';
import { DualWriteError } from '../errors/dual-write-error';
import { CHANGES_PER_ROW, type RowImage } from '../outbox/change';
import { OutboxWriter, outboxRowOf, outboxRows, type CapturedChange } from '../outbox/outbox-writer';
import type { OutboxRow } from '../relay/outbox-row';
import { classifyError } from '../errors/classify-error';
import { encodeValue } from '../outbox/value-codec';
import { ProgressStore } from './progress-store';
import { openTargets, selectPairs, type ReconcileContext } from './reconcile-context';
import { describeReconcileTable } from './reconcile-table';
import { limitSession, resetSession } from './session-limits';

/** Consecutive conflicts one page may meet before the backfill gives up (it resumes from there). */
const MAX_PAGE_RETRIES = 20;

export interface BackfillOptions {
  /** The entity to copy (TypeORM metadata name). */
  entity: string;
  /** The target to copy it into. */
  target: string;
  /** Start from the first row instead of resuming an interrupted backfill. @defaultValue false */
  restart?: boolean;
  /** Rows per primary transaction (PostgreSQL: a locking read, after taking their versions; MySQL/MariaDB: a locking read and an outbox INSERT). @defaultValue 2000 */
  pageSize?: number;
  /**
   * Changes that may wait in the outbox and the target's queue before the
   * backfill pauses for the worker to catch up, so Redis never holds the
   * whole table. @defaultValue 40 × `relay.jobSize`
   */
  maxBacklog?: number;
  /** Called after each page, and while waiting for the worker. */
  onProgress?: (progress: BackfillProgress) => void;
  /** Stops after the current page; the backfill resumes from there next time. */
  signal?: AbortSignal;
}

export interface BackfillProgress {
  entity: string;
  target: string;
  /** Rows written to the outbox so far (this run and the interrupted ones it resumed). */
  rows: number;
  /** Rows of the table when the run started. */
  total: number;
  /** Rows per second of this run. */
  rate: number;
  /** Estimated ms left; undefined until there is a rate. */
  etaMs?: number;
  /** Paused until the worker catches up. */
  waiting: boolean;
  done: boolean;
  resumed: boolean;
}

export interface BackfillResult {
  entity: string;
  target: string;
  rows: number;
  durationMs: number;
  resumed: boolean;
  /** False when `signal` stopped it early. */
  complete: boolean;
}

interface BackfillState {
  startedAt: string;
  cursor: string[] | null;
  rows: number;
}

/**
 * Copies every existing row of an entity into a target while the
 * application keeps writing, through the normal path: page by page, a
 * locking read of the next rows in key order, each row with a fresh version
 * from the outbox's own sequence, taken no later than the read. A write of
 * the same row that commits later waits for that row lock, so it gets a
 * later version and the copy never overwrites it (the version gate).
 *
 * On PostgreSQL the page's versions come from the outbox sequence without an
 * outbox row: one `nextval` per 1,000 rows, taken just before the locking
 * read, so each 1,000 rows are versioned as the changes of one batch outbox
 * row would be (`value × 1000 + place`). A write that committed before the read
 * is in the copy (whatever its version, the copy holds its image); one that
 * commits after waited for the row lock, so it allocated its sequence after
 * ours and wins. The page's apply jobs are added to the target's queue right
 * after the read; only once Redis acknowledged them is the page recorded as
 * done, so a crash in between loses nothing (the page is read again on
 * resume, with new versions). On MySQL/MariaDB, whose AUTO_INCREMENT hands
 * out values only to inserted rows, the page goes through the outbox (batch
 * rows for this target only) and the relay. Progress is kept in Redis: an
 * interrupted backfill resumes from its last page.
 *
 * @example
 * ```ts
 * await backfill(dw, { entity: 'Order', target: 'reporting', onProgress: (p) => console.log(p.rows, '/', p.total) });
 * ```
 */
export async function backfill(ctx: ReconcileContext, options: BackfillOptions): Promise<BackfillResult> {
  if (!options.entity || !options.target) {
    throw new DualWriteError('CLI_USAGE', 'backfill needs an entity and a target: --entity <name> --target <name>.', { option: options.entity ? '--target' : '--entity' });
  }
  const [{ entity, target }] = selectPairs(ctx, options);
  const pageSize = options.pageSize ?? 2000;
  const maxBacklog = options.maxBacklog ?? 40 * ctx.config.relay.jobSize;
  const store = new ProgressStore<BackfillState>(ctx.redis, ctx.config.queuePrefix, 'backfill');
  if (options.restart) await store.clear(target, entity.name);
  const saved = await store.load(target, entity.name);
  const state: BackfillState = saved ?? { startedAt: new Date().toISOString(), cursor: null, rows: 0 };
  const startRows = state.rows;
  const started = Date.now();
  const limits = { statementTimeout: ctx.config.reconcile.statementTimeout, lockTimeout: ctx.config.reconcile.lockTimeout };
  const close = await openTargets(ctx, [target]);
  const primary = ctx.config.primary;
  const runner = primary.createQueryRunner('master');
  const targetRunner = ctx.config.targets[target].createQueryRunner('master');
  const queue = ctx.queues.get(target);
  const outbox = new OutboxWriter(ctx.dialect);
  let side: Awaited<ReturnType<typeof describeReconcileTable>>['primary'] | undefined;
  try {
    await runner.connect();
    const table = await describeReconcileTable(
      entity,
      target,
      { queryRunner: runner, dataSource: primary, dialect: ctx.dialect },
      { queryRunner: targetRunner, dataSource: ctx.config.targets[target], dialect: dialectFor(ctx.config.targets[target], { target }) },
    );
    await targetRunner.release();
    side = table.primary;
    // Read in the entity's column order (the row image's); `v0`, `v1`, … follow it.
    const columns = table.columns.map((c) => ({ facts: c.primary, norm: c.norm, nullBit: c.nullBit }));
    await limitSession(runner, side, limits);
    const [{ n }] = (await runner.query(`SELECT COUNT(*) AS n FROM ${ctx.dialect.quoteTable(entity.tablePath)}`)) as Array<{ n: string | number }>;
    const total = Math.max(Number(n), state.rows);
    const mysql = ctx.dialect.name === 'mysql';
    // The outbox's sequence, where versions can be taken without an outbox row (PostgreSQL).
    const sequence = ctx.dialect.name === 'postgres' && ctx.relay.enqueue ? await outboxSequence(runner, ctx.dialect.quoteTable(OUTBOX_TABLE)) : undefined;
    const report = (waiting: boolean, done: boolean) => {
      const elapsed = Math.max(1, Date.now() - started);
      const rate = ((state.rows - startRows) * 1000) / elapsed;
      options.onProgress?.({
        entity: entity.name,
        target,
        rows: state.rows,
        total,
        rate,
        etaMs: rate > 0 ? (Math.max(0, total - state.rows) * 1000) / rate : undefined,
        waiting,
        done,
        resumed: saved !== undefined,
      });
    };
    const backlog = async () => {
      const [counts, [{ n: queued }]] = await Promise.all([
        queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active'),
        // On a pooled connection: it runs beside the page's read.
        primary.query(`SELECT COUNT(*) AS n FROM ${ctx.dialect.quoteTable(OUTBOX_TABLE)}`) as Promise<Array<{ n: string | number }>>,
      ]);
      return Number(queued) + (counts.waiting + counts.delayed + counts.prioritized + counts.active) * ctx.config.relay.jobSize;
    };
    const finish = (complete: boolean): BackfillResult => ({
      entity: entity.name,
      target,
      rows: state.rows,
      durationMs: Date.now() - started,
      resumed: saved !== undefined,
      complete,
    });

    // Pages are pipelined: the next page is read while Redis takes the last
    // one's jobs. `state` is what Redis has acknowledged (and what is saved);
    // `cursor` is where the next read starts.
    let cursor = state.cursor;
    let acknowledged: Promise<void> = Promise.resolve();
    let failures = 0;
    try {
      for (;;) {
        if (options.signal?.aborted) {
          await acknowledged;
          return finish(false);
        }
        // The backlog is measured while the page is read; a page waits for the worker before it is added.
        const load = backlog();
        load.catch(() => undefined); // awaited below, unless the read fails first
        const page = side.sql.page(side.table, { after: cursor ? side.keyParams(cursor) : undefined }, columns, { limit: pageSize, lock: true });
        let changes: CapturedChange[] = [];
        let seqs: string[] | undefined;
        const toChanges = (rows: Record<string, unknown>[]): CapturedChange[] => {
          const capturedAt = Date.now();
          return rows.map((raw) => {
            const row: RowImage = {};
            table.columns.forEach((c, i) => (row[c.source.databaseName] = encodeValue(c.source.kind, raw[`v${i}`], mysql)));
            return { entity: entity.name, op: 'upsert', key: side!.keyOfRow(raw), row, targets: target, capturedAt };
          });
        };
        try {
          if (sequence) {
            // The versions first, then the locking read in a statement of its own (see above).
            const taken = (await runner.query(`SELECT nextval($1::regclass)::text AS seq FROM generate_series(1, $2::int)`, [
              sequence,
              Math.ceil(pageSize / CHANGES_PER_ROW),
            ])) as Array<{ seq: string }>;
            seqs = taken.map((r) => r.seq);
            changes = toChanges((await runner.query(page.sql, page.params)) as Record<string, unknown>[]);
          } else {
            await runner.startTransaction();
            changes = toChanges((await runner.query(page.sql, page.params)) as Record<string, unknown>[]);
            if (changes.length > 0) await outbox.write(runner, changes);
            await runner.commitTransaction();
          }
        } catch (error) {
          if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
          // A deadlock or lock wait with the application's writes: this page
          // gives way and is read again (the cursor did not move).
          if (classifyError(error).class === 'transient' && ++failures <= MAX_PAGE_RETRIES) {
            await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 25 * 2 ** failures)));
            continue;
          }
          throw error;
        }
        for (let queued = await load; queued > maxBacklog && !options.signal?.aborted; queued = await backlog()) {
          report(true, false);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        failures = 0;
        const count = changes.length;
        if (count > 0) cursor = changes[count - 1].key;
        if (!sequence) ctx.relay.nudge();
        // The previous page first: if Redis refused it, this one is not added either (both are read again on resume).
        await acknowledged;
        if (options.signal?.aborted) return finish(false);
        const pageCursor = cursor;
        const enqueued = seqs && count > 0 ? ctx.relay.enqueue!(pageRows(changes, seqs), true) : Promise.resolve(0);
        // Only once Redis has the page's jobs does it count as done.
        acknowledged = enqueued.then(async () => {
          state.cursor = pageCursor;
          state.rows += count;
          if (count < pageSize) return;
          await store.save(target, entity.name, state);
          report(false, false);
        });
        if (count < pageSize) {
          await acknowledged;
          await store.clear(target, entity.name);
          report(false, true);
          return finish(true);
        }
        acknowledged.catch(() => undefined); // awaited (and thrown) by the next page or the exit
      }
    } finally {
      await acknowledged.catch(() => undefined);
    }
  } finally {
    if (side) await resetSession(runner, side).catch(() => undefined);
    await runner.release().catch(() => undefined);
    if (!targetRunner.isReleased) await targetRunner.release().catch(() => undefined);
    await close();
  }
}

/**
 * A page's changes as the batch outbox rows `seqs` (one per CHANGES_PER_ROW
 * changes), as the relay reads them. They never go into the outbox table, so
 * long keys do not split a row: each part is exactly one row, whose sequence
 * was taken before the read.
 */
function pageRows(changes: readonly CapturedChange[], seqs: readonly string[]): OutboxRow[] {
  const rows: OutboxRow[] = [];
  for (let start = 0, i = 0; start < changes.length; start += CHANGES_PER_ROW, i++) {
    const [values, ...more] = outboxRows(changes.slice(start, start + CHANGES_PER_ROW), Infinity);
    if (more.length > 0 || seqs[i] === undefined) throw new Error(`backfill: a page part became ${more.length + 1} outbox rows for ${seqs.length - i} sequences`);
    rows.push(outboxRowOf(values, seqs[i]));
  }
  return rows;
}

/** The sequence behind the PostgreSQL outbox's `seq` column (its versions), or undefined. */
async function outboxSequence(runner: QueryRunner, outbox: string): Promise<string | undefined> {
  const [row] = (await runner.query(`SELECT pg_get_serial_sequence($1, 'seq') AS s`, [outbox])) as Array<{ s: string | null }>;
  return row?.s ?? undefined;
}
