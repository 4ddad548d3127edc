import type { QueryRunner } from 'typeorm';
import type { SessionLimits } from '../dialect/checksum-sql';
import { dialectFor } from '../dialect/dialect-for';
import { classifyError } from '../errors/classify-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import { keyString } from '../outbox/change';
import { inFlightKeys } from './in-flight-keys';
import { ProgressStore } from './progress-store';
import { RangeDiffer, type DriftKind, type PrimaryChunk, type Suspect } from './range-differ';
import { openTargets, selectPairs, type ReconcileContext } from './reconcile-context';
import { saveReconcileReport, type ReconcileReport } from './reconcile-report';
import { describeReconcileTable, type ReconcileTable } from './reconcile-table';
import { repairDrift } from './repair';
import { secondLook, type ConfirmedDrift } from './second-look';
import { limitSession, resetSession } from './session-limits';

/** Options of one reconcile run; the tuning ones default to the config's `reconcile` section. */
export interface ReconcileRunOptions {
  /** Only this entity (TypeORM metadata name). @defaultValue every replicated entity */
  entity?: string;
  /** Only this target. @defaultValue every target of each entity */
  target?: string;
  /** Re-emit confirmed drift through the outbox. @defaultValue false */
  repair?: boolean;
  /** Start over instead of resuming an interrupted run from its last chunk. @defaultValue false */
  restart?: boolean;
  /** Target duration of one chunk, ms. @defaultValue config `reconcile.chunkTime` */
  chunkTime?: number;
  /** Rows of the first chunk; later chunks adapt to `chunkTime`. @defaultValue 20000 */
  firstChunk?: number;
  /** The replication lag window, ms. @defaultValue config `reconcile.lagWindow` */
  lagWindow?: number;
  statementTimeout?: number;
  lockTimeout?: number;
  /** Further looks at keys that were in flight, each a lag window later. @defaultValue 3 */
  hotRounds?: number;
  /** Called after each chunk. */
  onChunk?: (progress: { entity: string; target: string; chunks: number; rowsCompared: number }) => void;
}

/** What an interrupted run left behind (see `ProgressStore`). */
interface RunState {
  startedAt: string;
  /** Last key of the last finished chunk; null before the first. */
  cursor: string[] | null;
  chunkSize: number;
  chunks: number;
  rowsCompared: number;
  targetRows: number;
  /** Keys that differed on the first look (the SQL checksums), with their chunk and when they were seen. */
  suspects: Array<{ key: string[]; kind: DriftKind; chunk: number; seenAt: number }>;
  /** More suspects than MAX_SUSPECTS: the rest were not looked at. */
  truncated?: boolean;
}

const FIRST_CHUNK = 20_000;
const SESSIONS = 2;
/** Suspects one run looks at; past that, the run reports itself truncated (a target that lacks most rows wants a backfill). */
const MAX_SUSPECTS = 100_000;
const MIN_CHUNK = 200;
const MAX_CHUNK = 500_000;
const SAMPLES = 20;

/**
 * Compares every replicated entity (or one) with every target (or one) and,
 * with `repair`, re-emits what differs through the normal path. Returns and
 * stores one report per entity × target.
 *
 * @example
 * ```ts
 * const reports = await reconcile(dw, { repair: true });
 * ```
 */
export async function reconcile(ctx: ReconcileContext, options: ReconcileRunOptions = {}): Promise<ReconcileReport[]> {
  const pairs = selectPairs(ctx, options);
  const close = await openTargets(ctx, pairs.map((p) => p.target));
  const reports: ReconcileReport[] = [];
  try {
    for (const { entity, target } of pairs) reports.push(await new EntityReconciler(ctx, entity, target, options).run());
  } finally {
    await close();
  }
  return reports;
}

/** One entity in one target: scan, look again, repair, report. */
class EntityReconciler {
  private readonly limits: SessionLimits;
  private readonly store: ProgressStore<RunState>;
  private readonly log;

  constructor(
    private readonly ctx: ReconcileContext,
    private readonly entity: ReplicatedEntity,
    private readonly target: string,
    private readonly options: ReconcileRunOptions,
  ) {
    const config = ctx.config.reconcile;
    this.limits = {
      statementTimeout: options.statementTimeout ?? config.statementTimeout,
      lockTimeout: options.lockTimeout ?? config.lockTimeout,
    };
    this.store = new ProgressStore<RunState>(ctx.redis, ctx.config.queuePrefix, 'reconcile');
    this.log = ctx.logger.child({ entity: entity.name, target });
  }

  async run(): Promise<ReconcileReport> {
    const started = Date.now();
    if (this.options.restart) await this.store.clear(this.target, this.entity.name);
    const saved = await this.store.load(this.target, this.entity.name);
    const state: RunState = saved ?? {
      startedAt: new Date(started).toISOString(),
      cursor: null,
      chunkSize: this.options.firstChunk ?? FIRST_CHUNK,
      chunks: 0,
      rowsCompared: 0,
      targetRows: 0,
      suspects: [],
    };
    if (saved) this.log.info({ chunks: saved.chunks, rowsCompared: saved.rowsCompared }, 'reconcile resumes an interrupted run');

    const primaryDs = this.ctx.config.primary;
    const targetDs = this.ctx.config.targets[this.target];
    const targetDialect = dialectFor(targetDs, { target: this.target });
    // SESSIONS per side: each side sums its share of a chunk on each at once, while one more
    // primary session reads the next chunk's bounds (so a target runs at most SESSIONS of our
    // queries at once, the primary SESSIONS + 1).
    const primaryRunners = Array.from({ length: SESSIONS }, () => primaryDs.createQueryRunner('master'));
    const boundsRunner = primaryDs.createQueryRunner('master');
    const targetRunners = Array.from({ length: SESSIONS }, () => targetDs.createQueryRunner('master'));
    const allPrimary = [...primaryRunners, boundsRunner];
    const [primaryRunner] = primaryRunners;
    const [targetRunner] = targetRunners;
    let table: ReconcileTable | undefined;
    try {
      for (const runner of [...allPrimary, ...targetRunners]) await runner.connect();
      table = await describeReconcileTable(
        this.entity,
        this.target,
        { queryRunner: primaryRunner, dataSource: primaryDs, dialect: this.ctx.dialect },
        { queryRunner: targetRunner, dataSource: targetDs, dialect: targetDialect },
      );
      for (const runner of allPrimary) await limitSession(runner, table.primary, this.limits);
      for (const runner of targetRunners) await limitSession(runner, table.targetSide, this.limits);
      await this.scan(table, new RangeDiffer(table, primaryRunners, targetRunners), boundsRunner, state);
      const outcome = await this.confirmAndRepair(table, primaryRunner, targetRunner, state);
      const report = this.report(state, outcome, started, saved !== undefined);
      await saveReconcileReport(this.ctx.redis, this.ctx.config.queuePrefix, report);
      await this.store.clear(this.target, this.entity.name);
      this.log.info(
        { rowsCompared: report.rowsCompared, missing: report.missing, extra: report.extra, changed: report.changed, repaired: report.repaired, hotKeys: report.hotKeys, ms: report.durationMs },
        `reconcile ${report.status}`,
      );
      return report;
    } finally {
      if (table) {
        for (const runner of allPrimary) await resetSession(runner, table.primary).catch(() => undefined);
        for (const runner of targetRunners) await resetSession(runner, table.targetSide).catch(() => undefined);
      }
      for (const runner of [...allPrimary, ...targetRunners]) await runner.release().catch(() => undefined);
    }
  }

  /**
   * Keyset chunks from the primary; each is checksummed on both sides at once
   * (the same parts, so both databases work on the same rows side by side),
   * while a third primary session already reads the next chunk's bounds.
   * Chunk sizes follow the chunk time target; a chunk that times out is
   * retried smaller.
   */
  private async scan(table: ReconcileTable, differ: RangeDiffer, boundsRunner: QueryRunner, state: RunState): Promise<void> {
    const chunkTime = this.options.chunkTime ?? this.ctx.config.reconcile.chunkTime;
    let size = state.chunkSize;
    let cursor = state.cursor ?? undefined;
    let prefetched: Promise<PrimaryChunk> | undefined;
    let failures = 0;
    for (;;) {
      try {
        const chunk = await (prefetched ?? differ.chunkBounds(cursor, size, boundsRunner));
        prefetched = undefined;
        const groups = chunk.groups;
        const nextCursor = chunk.full ? chunk.last : undefined;
        const next = nextCursor ? differ.chunkBounds(nextCursor, size, boundsRunner) : undefined;
        next?.catch(() => undefined); // awaited below; a failure is handled there
        const [primary, target] = await Promise.all([timed(() => differ.primarySums(chunk)), timed(() => differ.targetSums(groups))]);
        const upcoming = next ? await next : undefined;
        // Each session narrows the differing parts of its own group, at once.
        const found = await Promise.all(
          groups.map(async (group, g) => {
            const differing = group.parts
              .map((part, i) => ({ range: part.range, primary: part.sums, target: target.value[g][i] }))
              .filter((d) => d.primary.n !== d.target.n || d.primary.s !== d.target.s);
            const suspects = await differ.diffRanges(differing, g);
            suspects.push(...(await differ.diffNodeColumns(group.range, g)));
            return suspects;
          }),
        );
        const suspects = found.flat();
        state.chunks++;
        state.rowsCompared += chunk.rows;
        state.targetRows += target.value.flat().reduce((n, t) => n + t.n, 0);
        const known = new Set(state.suspects.map((s) => keyString(s.key)));
        const seenAt = Date.now();
        for (const s of suspects) {
          const id = keyString(s.key);
          if (known.has(id)) continue;
          if (state.suspects.length >= MAX_SUSPECTS) {
            state.truncated = true;
            break;
          }
          known.add(id);
          state.suspects.push({ ...s, chunk: state.chunks, seenAt });
        }
        size = adapt(size, Math.max(primary.ms, target.ms), chunkTime);
        state.chunkSize = size;
        state.cursor = nextCursor ?? null;
        failures = 0;
        await this.store.save(this.target, this.entity.name, state);
        this.options.onChunk?.({ entity: this.entity.name, target: this.target, chunks: state.chunks, rowsCompared: state.rowsCompared });
        if (!nextCursor) return;
        cursor = nextCursor;
        prefetched = upcoming && Promise.resolve(upcoming);
      } catch (error) {
        const reason = classifyError(error).reason;
        if (!['statement-timeout', 'lock-timeout'].includes(reason) || ++failures > 4) throw error;
        prefetched = undefined;
        size = Math.max(MIN_CHUNK, Math.floor(size / 4));
        this.log.warn({ reason, chunkSize: size }, 'reconcile chunk gave way to the application; retrying it smaller');
      }
    }
  }

  /**
   * The second looks: a lag window after the first, each suspect is compared
   * row by row; what still differs with nothing in flight is confirmed (and,
   * with repair, re-emitted at once). Keys in flight or moving are looked at
   * again up to `hotRounds` times.
   */
  private async confirmAndRepair(
    table: ReconcileTable,
    primaryRunner: QueryRunner,
    targetRunner: QueryRunner,
    state: RunState,
  ): Promise<{ drift: ConfirmedDrift[]; repaired: number; hot: Array<{ key: string[]; chunk: number }> }> {
    const lagWindow = this.options.lagWindow ?? this.ctx.config.reconcile.lagWindow;
    const rounds = this.options.hotRounds ?? 3;
    const chunkOf = new Map(state.suspects.map((s) => [keyString(s.key), s.chunk]));
    // Latest verdict per key: a later look can confirm a key again or find it fixed meanwhile.
    const drift = new Map<string, ConfirmedDrift>();
    const repaired = new Set<string>();
    let pending = state.suspects.map((s) => s.key);
    let lastLook = Math.max(0, ...state.suspects.map((s) => s.seenAt));
    const queue = this.ctx.queues.get(this.target);
    const flying = () => inFlightKeys(this.ctx.config.primary, this.ctx.dialect, queue, this.entity.name, this.target);
    for (let round = 0; pending.length > 0 && round <= rounds; round++) {
      const wait = lastLook + lagWindow - Date.now();
      if (wait > 0) await sleep(wait);
      const hot: string[][] = [];
      for (let start = 0; start < pending.length; start += 1000) {
        const look = await secondLook(table, primaryRunner, targetRunner, pending.slice(start, start + 1000), flying);
        hot.push(...look.hot);
        for (const key of look.resolved) drift.delete(keyString(key));
        for (const d of look.confirmed) drift.set(keyString(d.key), d);
        if (this.options.repair && look.confirmed.length) {
          const outcome = await repairDrift(table, look.confirmed, this.limits, this.log);
          const busy = new Set(outcome.hot.map((k) => keyString(k)));
          for (const d of look.confirmed) if (!busy.has(keyString(d.key))) repaired.add(keyString(d.key));
          hot.push(...outcome.hot);
          this.ctx.relay.nudge();
        }
      }
      lastLook = Date.now();
      pending = hot;
    }
    return {
      drift: [...drift.values()],
      repaired: [...drift.keys()].filter((k) => repaired.has(k)).length,
      hot: pending.map((key) => ({ key, chunk: chunkOf.get(keyString(key)) ?? 0 })),
    };
  }

  private report(
    state: RunState,
    outcome: { drift: ConfirmedDrift[]; repaired: number; hot: Array<{ key: string[]; chunk: number }> },
    started: number,
    resumed: boolean,
  ): ReconcileReport {
    const count = (kind: DriftKind) => outcome.drift.filter((d) => d.kind === kind).length;
    const sample = (kind: DriftKind) => outcome.drift.filter((d) => d.kind === kind).slice(0, SAMPLES);
    const repair = this.options.repair ?? false;
    const status: ReconcileReport['status'] =
      outcome.hot.length > 0 || state.truncated ? 'incomplete' : outcome.drift.length === 0 ? 'clean' : !repair ? 'drift' : outcome.repaired >= outcome.drift.length ? 'repaired' : 'incomplete';
    const finished = Date.now();
    return {
      entity: this.entity.name,
      target: this.target,
      status,
      repair,
      rowsCompared: state.rowsCompared,
      targetRows: state.targetRows,
      missing: count('missing'),
      extra: count('extra'),
      changed: count('changed'),
      suspects: state.suspects.length,
      repaired: outcome.repaired,
      hotKeys: outcome.hot.length,
      chunksSkippedHot: new Set(outcome.hot.map((h) => h.chunk)).size,
      chunks: state.chunks,
      durationMs: finished - started,
      startedAt: state.startedAt,
      finishedAt: new Date(finished).toISOString(),
      resumed,
      truncated: state.truncated === true,
      samples: {
        missing: sample('missing').map((d) => keyString(d.key)),
        extra: sample('extra').map((d) => keyString(d.key)),
        changed: sample('changed').map((d) => ({ key: keyString(d.key), columns: d.columns })),
      },
    };
  }
}

interface Timed<T> {
  value: T;
  ms: number;
}

async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

/** Next chunk size: toward the chunk time target, at most ×4 or ÷2 per chunk. */
function adapt(size: number, ms: number, targetMs: number): number {
  const factor = Math.min(4, Math.max(0.5, targetMs / Math.max(ms, 1)));
  return Math.round(Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, size * factor)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
