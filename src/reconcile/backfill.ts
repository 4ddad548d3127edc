import { OUTBOX_TABLE } from '../../migrations/table-names';
import { dialectFor } from '../dialect/dialect-for';
import { DualWriteError } from '../errors/dual-write-error';
import type { RowImage } from '../outbox/change';
import { OutboxWriter, type CapturedChange } from '../outbox/outbox-writer';
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
  /** Rows per primary transaction (one locking read, one outbox INSERT). @defaultValue 2000 */
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
 * locking read of the next rows in key order and one outbox row per row (for
 * this target only), in one primary transaction. Each copy gets a fresh
 * version, and a write that commits later gets a later one, so the copy never
 * overwrites a newer change. Progress is kept in Redis: an interrupted
 * backfill resumes from its last page.
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
      const counts = await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active');
      const [{ n: queued }] = (await runner.query(
        `SELECT COUNT(*) AS n FROM ${ctx.dialect.quoteTable(OUTBOX_TABLE)}`,
      )) as Array<{ n: string | number }>;
      return Number(queued) + (counts.waiting + counts.delayed + counts.prioritized + counts.active) * ctx.config.relay.jobSize;
    };

    let failures = 0;
    for (;;) {
      if (options.signal?.aborted) {
        return { entity: entity.name, target, rows: state.rows, durationMs: Date.now() - started, resumed: saved !== undefined, complete: false };
      }
      while ((await backlog()) > maxBacklog && !options.signal?.aborted) {
        report(true, false);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const after = state.cursor ? side.keyParams(state.cursor) : undefined;
      const page = side.sql.page(side.table, { after }, columns, { limit: pageSize, lock: true });
      await runner.startTransaction();
      let count = 0;
      try {
        const rows = (await runner.query(page.sql, page.params)) as Record<string, unknown>[];
        count = rows.length;
        if (count > 0) {
          const changes: CapturedChange[] = rows.map((raw) => {
            const row: RowImage = {};
            table.columns.forEach((c, i) => (row[c.source.databaseName] = encodeValue(c.source.kind, raw[`v${i}`], mysql)));
            return { entity: entity.name, op: 'upsert', key: side!.keyOfRow(raw), row, targets: target, capturedAt: Date.now() };
          });
          await outbox.write(runner, changes);
          state.cursor = changes[changes.length - 1].key;
        }
        await runner.commitTransaction();
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
      failures = 0;
      ctx.relay.nudge();
      state.rows += count;
      if (count < pageSize) {
        await store.clear(target, entity.name);
        report(false, true);
        return { entity: entity.name, target, rows: state.rows, durationMs: Date.now() - started, resumed: saved !== undefined, complete: true };
      }
      await store.save(target, entity.name, state);
      report(false, false);
    }
  } finally {
    if (side) await resetSession(runner, side).catch(() => undefined);
    await runner.release().catch(() => undefined);
    if (!targetRunner.isReleased) await targetRunner.release().catch(() => undefined);
    await close();
  }
}
