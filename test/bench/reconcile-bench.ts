/**
 * Reconciler and backfill figures, each a ratio against a baseline measured
 * in the same run on the same databases (PostgreSQL primary, MariaDB
 * target). The table holds 100,000 rows times BENCH_SCALE (BENCH_SCALE=10
 * for the 1,000,000-row figures). Part of `npm run bench` (BENCH_ONLY=reconcile),
 * or on its own:
 *
 *   node dist/test/bench/reconcile-bench.js      (after `npm run build`)
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { backfill, DualWrite, reconcile, runMigrations } from '../../src';
import type { ReconcileContext } from '../../src/reconcile/reconcile-context';
import { decodeValue } from '../../src/apply/value-decoder';
import { dialectFor } from '../../src/dialect/dialect-for';
import { keyString } from '../../src/outbox/change';
import { encodeValue } from '../../src/outbox/value-codec';
import { createDatabase, dataSource, type TestDatabase } from '../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../support/redis';
import { benchEntities } from './bench-entities';
import { median, printResults, repeat, report, SCALE, timed } from './report';

const ROWS = Math.round(100_000 * SCALE);
const DRIFTED = 100;

interface Bench {
  primaryDb: TestDatabase;
  targetDb: TestDatabase;
  primary: DataSource;
  target: DataSource;
  prefix: string;
  dw: DualWrite;
  queue: Queue;
  /** The `dualwrite worker` process applying what reconcile and backfill emit, as in production. */
  worker?: ChildProcess;
}

function startWorker(b: Bench): void {
  const root = path.resolve(__dirname, '../../..');
  b.worker = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'worker', '--config', path.join(root, 'dist/test/bench/reconcile-bench-config.js')], {
    cwd: root,
    env: { ...process.env, DW_BENCH_PRIMARY_DB: b.primaryDb.name, DW_BENCH_TARGET_DB: b.targetDb.name, DW_BENCH_PREFIX: b.prefix },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

async function stopWorker(b: Bench): Promise<void> {
  const worker = b.worker;
  if (!worker || worker.exitCode !== null) return;
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  worker.kill('SIGTERM');
  await exited;
}

/** The same 1M rows written server-side on both engines (what a replicated table holds). */
async function load(b: Bench, into: 'both' | 'primary'): Promise<void> {
  await b.primary.query(
    `INSERT INTO bench_item (id, name, price, qty, "at") SELECT i, 'item-' || i || '-0', ((i % 1000) || '.25')::numeric, i % 97, ` +
      `to_timestamp(1700000000 + i) FROM generate_series(1, ${ROWS}) AS i`,
  );
  await b.primary.query('VACUUM ANALYZE bench_item');
  if (into === 'primary') return;
  await b.target.query('SET SESSION max_recursive_iterations = 100000000');
  for (let from = 1; from <= ROWS; from += 200_000) {
    const to = Math.min(ROWS, from + 199_999);
    await b.target.query(
      `INSERT INTO bench_item (id, name, price, qty, \`at\`) WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to}) ` +
        `SELECT i, CONCAT('item-', i, '-0'), CONCAT(i % 1000, '.25'), i % 97, FROM_UNIXTIME(1700000000 + i) FROM s`,
    );
  }
  await b.target.query('ANALYZE TABLE bench_item');
}

async function drained(b: Bench): Promise<void> {
  for (;;) {
    await b.dw.flush();
    const counts = await b.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    const [{ n }] = (await b.primary.query('SELECT COUNT(*) AS n FROM dualwrite_outbox')) as Array<{ n: string }>;
    if (Number(n) === 0 && counts.waiting + counts.active + counts.delayed + counts.prioritized === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Baseline of the detection figures: one raw full-table checksum query on the
 * primary, as a user would write it to compare with another engine: md5 of
 * each row's text with every column normalized as the reconciler normalizes
 * it (decimals at their scale, the timestamp as UTC text at its precision),
 * 60 bits of it summed. A plain query: PostgreSQL may use its parallel workers.
 */
async function rawChecksum(b: Bench): Promise<number> {
  const text = `concat_ws(',', id::text, price::text, qty::text, to_char("at" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), name::text)`;
  return median(
    await repeat(3, () => timed(() => b.primary.query(`SELECT count(*), sum(('x' || substr(md5(${text}), 1, 15))::bit(60)::bigint) FROM bench_item`))),
  );
}

/**
 * Not a goal's baseline: what any verification that reads both tables costs
 * at least on this machine. The same raw checksum as `rawChecksum`, over both
 * tables at once, each split in halves on two sessions (four queries on the
 * machine's cores, as the reconciler runs them); MariaDB's text and hash are
 * its spelling of the same normalization.
 */
async function bothTablesChecksum(b: Bench): Promise<number> {
  const pgText = `concat_ws(',', id::text, price::text, qty::text, to_char("at" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), name::text)`;
  const myText = "concat_ws(',', id, price, qty, DATE_FORMAT(`at`, '%Y-%m-%d %H:%i:%s.%f'), name)";
  const half = Math.floor(ROWS / 2);
  const ranges = [[0, half], [half, ROWS * 2]];
  return median(
    await repeat(3, () =>
      timed(() =>
        Promise.all([
          ...ranges.map(([after, upTo]) =>
            b.primary.query(`SELECT count(*), sum(('x' || substr(md5(${pgText}), 1, 15))::bit(60)::bigint) FROM bench_item WHERE id > $1 AND id <= $2`, [after, upTo]),
          ),
          ...ranges.map(([after, upTo]) =>
            b.target.query(`SELECT COUNT(*), SUM(CAST(CONV(SUBSTR(MD5(${myText}), 1, 15), 16, 10) AS UNSIGNED)) FROM bench_item WHERE id > ? AND id <= ?`, [after, upTo]),
          ),
        ]),
      ),
    ),
  );
}

/** Baseline of the speed-up: both tables streamed into Node in key order (pages of 10,000) and compared row by row. */
async function streamAndCompare(b: Bench): Promise<number> {
  const entity = b.dw.entity('BenchItem');
  const pd = dialectFor(b.primary, { primary: true });
  const td = dialectFor(b.target, { target: 't' });
  const page = async (ds: DataSource, d: typeof pd, after: number) => {
    const rows = (await ds.query(`SELECT * FROM bench_item WHERE id > ${d.placeholder(1)} ORDER BY id LIMIT 10000`, [after])) as Record<string, unknown>[];
    return rows.map((raw) => {
      const image: Record<string, unknown> = {};
      for (const c of entity.columns) image[c.databaseName] = encodeValue(c.kind, raw[c.databaseName], d.name === 'mysql');
      return image;
    });
  };
  let differences = 0;
  const ms = await timed(async () => {
    let after = 0;
    for (;;) {
      const [p, t] = await Promise.all([page(b.primary, pd, after), page(b.target, td, after)]);
      const byKey = new Map(t.map((row) => [keyString([String(row.id)]), JSON.stringify(row)]));
      for (const row of p) if (byKey.get(keyString([String(row.id)])) !== JSON.stringify(row)) differences++;
      if (p.length < 10_000) break;
      after = Number(p[p.length - 1].id);
    }
  });
  if (differences !== 0) throw new Error(`streaming baseline saw ${differences} differences in a clean table`);
  return ms;
}

/** Baseline of backfill: the same rows upserted straight into the target, 1,000 per statement. */
async function rawUpserts(b: Bench): Promise<number> {
  const entity = b.dw.entity('BenchItem');
  const td = dialectFor(b.target, { target: 't' });
  const described = (await b.target.query(td.apply.describeTable('bench_item').sql, td.apply.describeTable('bench_item').params)) as Record<string, unknown>[];
  const columns = described.map((r) => td.apply.readColumn(r));
  const byName = new Map(entity.columns.map((c) => [c.databaseName, c]));
  return timed(async () => {
    for (let from = 1; from <= ROWS; from += 1000) {
      const rows = (await b.primary.query('SELECT * FROM bench_item WHERE id >= $1 AND id < $2 ORDER BY id', [from, from + 1000])) as Record<string, unknown>[];
      const values = rows.map((raw) =>
        columns.map((col) => {
          const kind = byName.get(col.name)!.kind;
          return decodeValue(kind, encodeValue(kind, raw[col.name]), td.name, col.sqlType);
        }),
      );
      const st = td.apply.upsertRows('bench_item', columns, ['id'], values);
      await b.target.query(st.sql, st.params);
    }
  });
}

async function setup(): Promise<Bench> {
  const source = benchEntities('postgres');
  const replica = benchEntities('mariadb');
  const primaryDb = await createDatabase('postgres', 'dwrbench');
  const targetDb = await createDatabase('mariadb', 'dwrbench');
  const primary = dataSource(primaryDb, [source.BenchItem]);
  const target = dataSource(targetDb, [replica.BenchItem]);
  await primary.initialize();
  await target.initialize();
  await runMigrations({ primary, targets: { t: target } });
  const prefix = queuePrefix();
  const dw = await DualWrite.start({
    primary,
    targets: { t: target },
    redis: REDIS,
    queuePrefix: prefix,
    relay: { jobSize: 1000 },
    reconcile: { every: 0 },
    logger: { level: 'silent' },
  });
  return { primaryDb, targetDb, primary, target, prefix, dw, queue: dw.queues.get('t') };
}

async function cleanup(b: Bench): Promise<void> {
  await b.dw.close();
  await b.primary.destroy();
  await b.target.destroy();
  await b.primaryDb.drop();
  await b.targetDb.drop();
  await removeQueues(b.prefix);
}

/** The clean check, find-and-repair and streaming figures (the target holds the same rows as the primary). */
async function benchDetection(b: Bench): Promise<void> {
  const raw = await rawChecksum(b);
  const clean = median(
    await repeat(3, () =>
      timed(async () => {
        const [report] = await reconcile(b.dw, { entity: 'BenchItem' });
        if (report.status !== 'clean' || report.suspects !== 0) throw new Error(`clean table reported ${JSON.stringify(report)}`);
      }),
    ),
  );
  report(`[postgres → mariadb] clean reconcile of ${ROWS} rows, ms`, clean, raw, 'ms', '≤ 2× one raw full-table checksum');
  const floor = await bothTablesChecksum(b);
  console.log(
    `  (the same raw checksum over BOTH tables at once, halves on two sessions each: ${floor.toFixed(1)} ms = ${(floor / raw).toFixed(3)}× the primary's alone; ` +
      `the clean reconcile took ${(clean / floor).toFixed(3)}× that)`,
  );

  // 100 drifted rows scattered over the table: changed, deleted, and rows only the target has.
  const ids = Array.from({ length: DRIFTED }, (_, i) => Math.floor(((i + 0.5) * ROWS) / DRIFTED));
  await b.target.query(`UPDATE bench_item SET name = 'drifted' WHERE id IN (${ids.slice(0, 60).join(', ')})`);
  await b.target.query(`DELETE FROM bench_item WHERE id IN (${ids.slice(60, 90).join(', ')})`);
  await b.target.query(
    `INSERT INTO bench_item (id, name, price, qty, \`at\`) VALUES ${ids
      .slice(90)
      .map((id) => `(${ROWS + id}, 'ghost', 1, 1, NOW())`)
      .join(', ')}`,
  );
  let found = 0;
  const repair = await timed(async () => {
    const [report] = await reconcile(b.dw, { entity: 'BenchItem', repair: true });
    found = report.missing + report.extra + report.changed;
    if (found !== DRIFTED || report.repaired !== DRIFTED) throw new Error(`drift run reported ${JSON.stringify(report)}`);
    await drained(b);
  });
  const [after] = await reconcile(b.dw, { entity: 'BenchItem' });
  if (after.status !== 'clean') throw new Error(`after repair: ${JSON.stringify(after)}`);
  report(`[postgres → mariadb] find and repair ${DRIFTED} scattered drifted rows of ${ROWS}, ms`, repair, raw, 'ms', '≤ 3× one raw full-table checksum');

  const streamed = await streamAndCompare(b);
  report(`[postgres → mariadb] clean verification vs streaming both tables into Node, ms`, clean, streamed, 'ms', '≥ 10× faster', streamed / clean);
}

/**
 * PostgreSQL primary, MariaDB target, ROWS rows:
 * - a clean verification vs one raw full-table checksum query on the primary (goal ≤ 2×);
 * - finding and repairing 100 scattered drifted rows, until applied, vs the same (goal ≤ 3×);
 * - the clean verification vs streaming both tables into Node and comparing (goal ≥ 10× faster);
 * - backfill of every row until applied, vs raw 1,000-row upserts of the same rows (goal ≥ 0.5× the throughput).
 * Repairs and backfill are applied by a `dualwrite worker` process (relay.jobSize 1000), as in production;
 * the bench process itself relays after each repair and backfill page.
 */
export async function benchReconcile(): Promise<void> {
  const b = await setup();
  try {
    const backfillOnly = process.env.BENCH_BACKFILL_ONLY === '1';
    await load(b, backfillOnly ? 'primary' : 'both');
    startWorker(b);
    try {
      if (!backfillOnly) await benchDetection(b);
      // Backfill: the target starts empty, as when the plugin is adopted on a table with data.
      await b.target.query('TRUNCATE TABLE bench_item');
      const baseline = await rawUpserts(b);
      const rate = (ms: number) => (ROWS * 1000) / ms;
      let emitted = 0;
      let waits = 0;
      const runBackfill = async (ctx: ReconcileContext) => {
        await b.target.query('TRUNCATE TABLE bench_item');
        await b.target.query('TRUNCATE TABLE dualwrite_version_ledger');
        waits = 0;
        const ms = await timed(async () => {
          const result = await backfill(ctx, {
            entity: 'BenchItem',
            target: 't',
            restart: true,
            onProgress: (p) => {
              if (p.waiting) waits++;
            },
          });
          if (result.rows !== ROWS) throw new Error(`backfill copied ${result.rows} rows`);
          emitted = result.durationMs;
          await drained(b);
        });
        const [{ n }] = (await b.target.query('SELECT COUNT(*) AS n FROM bench_item')) as Array<{ n: string }>;
        if (Number(n) !== ROWS) throw new Error(`backfill left ${n}/${ROWS} rows in the target`);
        return ms;
      };
      if (process.env.BENCH_BACKFILL_OUTBOX === '1') {
        // The path a MySQL/MariaDB primary takes (every row through the outbox and the relay), for comparison.
        const { config, dialect, entities, redis, queues, logger } = b.dw;
        const viaOutbox = await runBackfill({ config, dialect, entities, redis, queues, logger, relay: { nudge: () => b.dw.relay.nudge() } });
        report(`[postgres → mariadb] backfill of ${ROWS} rows through the outbox and relay, rows/s`, rate(viaOutbox), rate(baseline), 'rows/s', '(comparison)');
      }
      const ours = await runBackfill(b.dw);
      report(`[postgres → mariadb] backfill of ${ROWS} rows until applied, rows/s`, rate(ours), rate(baseline), 'rows/s', '≥ 0.50×');
      process.stdout.write(`  (the backfill itself had emitted every row after ${(emitted / 1000).toFixed(1)} s, pausing ${waits} × 50 ms for the worker to catch up; the rest is apply)\n`);
    } finally {
      await stopWorker(b);
    }
  } finally {
    await cleanup(b);
  }
}

if (require.main === module) {
  benchReconcile().then(printResults).catch((error) => {
    process.stderr.write(`reconcile bench failed: ${(error as Error).stack}\n`);
    process.exitCode = 1;
  });
}
