import type IORedis from 'ioredis';

/**
 * What one reconcile run found for one entity in one target. Stored in Redis
 * (see `readReconcileReports`) for `status`, the dashboard and `--json`.
 */
export interface ReconcileReport {
  entity: string;
  target: string;
  /**
   * `clean`: no drift; `drift`: drift confirmed and not repaired (a run
   * without repair); `repaired`: every confirmed difference was re-emitted;
   * `incomplete`: some keys could not be confirmed or repaired (hot) — they
   * are checked again by the next run.
   */
  status: 'clean' | 'drift' | 'repaired' | 'incomplete';
  /** Whether the run repaired what it confirmed. */
  repair: boolean;
  /** Primary rows compared. */
  rowsCompared: number;
  /** Target rows compared. */
  targetRows: number;
  /** Rows the primary has and the target lacks. */
  missing: number;
  /** Rows the target has and the primary does not (deleted on the primary). */
  extra: number;
  /** Rows whose values differ. */
  changed: number;
  /**
   * Keys that differed on the first look (the SQL checksums), before the
   * second look confirmed or cleared them. More suspects than drift means
   * rows that were changing during the run, or values the two engines' SQL
   * does not render alike (see `docs/reconcile.md`).
   */
  suspects: number;
  /** Keys re-emitted through the outbox (they reach the target through the worker). */
  repaired: number;
  /** Keys seen different that stayed in flight or busy through every look: left for the next run. */
  hotKeys: number;
  /** Chunks holding such keys. */
  chunksSkippedHot: number;
  /** Chunks compared. */
  chunks: number;
  /** Wall time of the run, ms. */
  durationMs: number;
  startedAt: string;
  finishedAt: string;
  /** The run continued an interrupted one from its last chunk. */
  resumed: boolean;
  /**
   * More than 100,000 keys differed: only those were looked at and counted
   * (status `incomplete`). A target that lacks most rows wants `dualwrite backfill`.
   */
  truncated: boolean;
  /** Up to 20 keys per kind (key values only, never row values), for a first look. */
  samples: { missing: string[]; extra: string[]; changed: Array<{ key: string; columns: string[] }> };
}

const HISTORY_LENGTH = 200;

/** Redis key of the latest report per `<target>:<entity>` (a hash). `.` cannot appear in a queue (target) name. */
export function reportsKey(prefix: string): string {
  return `${prefix}:reconcile.report`;
}

/** Redis key of the list of recent reports, newest first. */
export function historyKey(prefix: string): string {
  return `${prefix}:reconcile.history`;
}

export async function saveReconcileReport(redis: IORedis, prefix: string, report: ReconcileReport): Promise<void> {
  const json = JSON.stringify(report);
  await redis
    .multi()
    .hset(reportsKey(prefix), `${report.target}:${report.entity}`, json)
    .lpush(historyKey(prefix), json)
    .ltrim(historyKey(prefix), 0, HISTORY_LENGTH - 1)
    .exec();
}

/**
 * The latest reconcile report of every entity × target (or of those given),
 * sorted by target and entity. `prefix` is the config's `queuePrefix`.
 *
 * @example
 * ```ts
 * const reports = await readReconcileReports(dw.redis, dw.config.queuePrefix);
 * ```
 */
export async function readReconcileReports(
  redis: IORedis,
  prefix: string,
  filter: { entity?: string; target?: string } = {},
): Promise<ReconcileReport[]> {
  const all = await redis.hgetall(reportsKey(prefix));
  return Object.values(all)
    .map((json) => JSON.parse(json) as ReconcileReport)
    .filter((r) => (!filter.entity || r.entity === filter.entity) && (!filter.target || r.target === filter.target))
    .sort((a, b) => a.target.localeCompare(b.target) || a.entity.localeCompare(b.entity));
}

/** Recent reports of all entities and targets, newest first (at most 200 are kept). */
export async function readReconcileHistory(redis: IORedis, prefix: string, limit = 50): Promise<ReconcileReport[]> {
  const items = await redis.lrange(historyKey(prefix), 0, Math.max(0, limit - 1));
  return items.map((json) => JSON.parse(json) as ReconcileReport);
}
