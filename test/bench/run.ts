/**
 * `npm run bench`: every figure is a ratio against a baseline measured in the
 * same run on the same databases, because the machine is shared and noisy.
 * BENCH_SCALE (default 1) scales the sizes (10 for the 1,000,000-change
 * drain and the 1,000,000-row reconcile); BENCH_ONLY=capture,relay,drain,failures,lag,reconcile
 * picks parts; BENCH_ENGINES=postgres (or mariadb) limits the capture and relay
 * figures to one primary engine.
 */
import 'reflect-metadata';
import { fork } from 'node:child_process';
import path from 'node:path';
import { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import { DualWrite, OUTBOX_TABLE, runMigrations } from '../../src';
import { dialectFor } from '../../src/dialect/dialect-for';
import { decodeValue } from '../../src/apply/value-decoder';
import { encodeValue } from '../../src/outbox/value-codec';
import { OutboxWriter, type CapturedChange } from '../../src/outbox/outbox-writer';
import { checkApplyJob } from '../../src/queue/check-apply-job';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../support/redis';
import { benchEntities, item, wideItem } from './bench-entities';
import { benchReconcile } from './reconcile-bench';
import { median, percentile, printResults, record, report, SCALE, timed } from './report';

interface Setup {
  primaryDb: TestDatabase;
  targetDb: TestDatabase;
  primary: DataSource;
  target: DataSource;
  prefix: string;
  entities: ReturnType<typeof benchEntities>;
  cleanup(): Promise<void>;
}

async function setup(primaryEngine: Engine, targetEngine: Engine): Promise<Setup> {
  const entities = benchEntities(primaryEngine);
  const targetEntities = benchEntities(targetEngine);
  const primaryDb = await createDatabase(primaryEngine, 'dwbench');
  const targetDb = await createDatabase(targetEngine, 'dwbench');
  const primary = dataSource(primaryDb, [entities.BenchItem, entities.BenchPlain, entities.BenchWide, entities.BenchWidePlain]);
  const target = dataSource(targetDb, [targetEntities.BenchItem, targetEntities.BenchWide]);
  await primary.initialize();
  await target.initialize();
  await runMigrations({ primary, targets: { t: target } });
  const prefix = queuePrefix();
  return {
    primaryDb, targetDb, primary, target, prefix, entities,
    cleanup: async () => {
      if (primary.isInitialized) await primary.destroy();
      if (target.isInitialized) await target.destroy();
      await primaryDb.drop();
      await targetDb.drop();
      await removeQueues(prefix);
    },
  };
}

/**
 * save() of single entities and of 100-entity arrays, with capture vs plain
 * TypeORM: the same table shape through a DataSource of the same database
 * without the plugin. `afterCommit` true also runs the relay in this process
 * after every commit (the default); false leaves relaying to a worker. Also
 * measured: a plain entity in the plugin's DataSource (what the plugin costs
 * the entities it does not replicate).
 */
async function benchCapture(engine: Engine, afterCommit: boolean): Promise<void> {
  const s = await setup(engine, engine);
  const dw = await DualWrite.start({
    primary: s.primary, targets: { t: s.target }, redis: REDIS, queuePrefix: s.prefix, logger: { level: 'silent' },
    relay: { afterCommit },
  });
  const without = new DataSource({ ...s.primaryDb.options([s.entities.BenchPlain, s.entities.BenchWidePlain]), synchronize: false });
  await without.initialize();
  const repos = {
    ours: s.primary.getRepository(s.entities.BenchItem),
    base: without.getRepository(s.entities.BenchPlain),
    unreplicated: s.primary.getRepository(s.entities.BenchPlain),
  };
  // The plain entity in the plugin's DataSource once, with the default relay.
  type Kind = keyof typeof repos;
  const kinds: Kind[] = afterCommit ? ['base', 'ours', 'unreplicated'] : ['base', 'ours'];
  // Many short rounds, in alternating order: each round's ratio compares
  // runs a moment apart, so the other load on this shared machine (which
  // changes over seconds) hits them alike; the figure is the median ratio.
  const singles = Math.round(100 * SCALE);
  const arrays = Math.round(10 * SCALE);
  const rounds = 20;
  let next = 1;
  const single: Record<Kind, number[]> = { ours: [], base: [], unreplicated: [] };
  const bulk: Record<Kind, number[]> = { ours: [], base: [], unreplicated: [] };
  const wideRepos = { ours: s.primary.getRepository(s.entities.BenchWide), base: without.getRepository(s.entities.BenchWidePlain) };
  const wide: Record<keyof typeof wideRepos, number[]> = { ours: [], base: [] };
  /** Times `arrays` saves of 100 fresh entities made by `make`, with ids not used before. */
  const timeArrays = async (repo: { save(rows: object[]): Promise<unknown> }, make: (id: number) => object) => {
    const start = next;
    next += arrays * 100;
    return timed(async () => {
      for (let b = 0; b < arrays; b++) await repo.save(Array.from({ length: 100 }, (_, i) => make(start + b * 100 + i)));
    });
  };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? kinds : [...kinds].reverse();
    for (const kind of order) {
      const start = next;
      next += singles;
      single[kind].push(await timed(async () => {
        for (let i = 0; i < singles; i++) await repos[kind].save(item(start + i));
      }));
    }
    for (const kind of order) bulk[kind].push(await timeArrays(repos[kind], item));
    for (const kind of round % 2 === 0 ? (['base', 'ours'] as const) : (['ours', 'base'] as const)) {
      wide[kind].push(await timeArrays(wideRepos[kind], wideItem));
    }
  }
  await dw.relay.idle();
  await dw.close();
  await without.destroy();
  const mode = afterCommit ? 'capture + in-process relay' : 'capture only (relay.afterCommit: false)';
  const pairRatio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]));
  report(
    `[${engine}] save() of one entity, ${mode}, vs plain TypeORM, time per save (median of ${rounds} paired rounds)`,
    median(single.ours) / singles, median(single.base) / singles, 'ms', '≤ 1.25×', pairRatio(single.ours, single.base),
  );
  const rowsPerSec = (ms: number) => (arrays * 100 * 1000) / ms;
  report(
    `[${engine}] save() of 100-entity arrays, ${mode}, vs plain TypeORM, rows/s (median of ${rounds} paired rounds)`,
    rowsPerSec(median(bulk.ours)), rowsPerSec(median(bulk.base)), 'rows/s', '≥ 0.90×', pairRatio(bulk.base, bulk.ours),
  );
  report(
    `[${engine}] save() of 100-entity arrays of a 20-column entity, ${mode}, vs plain TypeORM, rows/s (median of ${rounds} paired rounds)`,
    rowsPerSec(median(wide.ours)), rowsPerSec(median(wide.base)), 'rows/s', '≥ 0.90×', pairRatio(wide.base, wide.ours),
  );
  if (afterCommit) {
    report(
      `[${engine}] save() of 100-entity arrays of an entity that is not replicated, in the plugin's DataSource vs without it, rows/s`,
      rowsPerSec(median(bulk.unreplicated)), rowsPerSec(median(bulk.base)), 'rows/s', '≈ 1×', pairRatio(bulk.base, bulk.unreplicated),
    );
  }
  await s.cleanup();
}

function changesFor(entity: DualWrite['entities'] extends ReadonlyMap<string, infer E> ? E : never, from: number, count: number, round: number): CapturedChange[] {
  const changes: CapturedChange[] = [];
  for (let i = 0; i < count; i++) {
    const value = item(from + i, round) as Record<string, unknown>;
    const row: Record<string, never> = {};
    for (const c of entity.columns) (row as Record<string, unknown>)[c.databaseName] = encodeValue(c.kind, value[c.propertyPath]);
    changes.push({ entity: entity.name, op: 'upsert', key: [String(from + i)], row, targets: 't', capturedAt: Date.now() });
  }
  return changes;
}

/**
 * Writes `total` upserts of ids `first`… straight into the outbox, 2,000 per
 * statement: as transactions of 2,000 changes write them (batch rows of
 * 1,000), or with `singleRows` one row per change, as 2,000 one-change
 * transactions would.
 */
async function fillOutbox(dw: DualWrite, primary: DataSource, total: number, round: number, first = 1, singleRows = false): Promise<void> {
  const writer = new OutboxWriter(dw.dialect);
  const entity = dw.entity('BenchItem');
  const qr = primary.createQueryRunner();
  try {
    for (let start = first; start < first + total; start += 2000) {
      const changes = changesFor(entity, start, Math.min(2000, first + total - start), round);
      if (!singleRows) {
        await writer.write(qr, changes);
        continue;
      }
      const rows = changes.map((c) => [c.entity, c.op, JSON.stringify(c.key), JSON.stringify(c.row), c.targets, c.capturedAt, null]);
      const params = dw.dialect.outbox.columnar ? rows[0].map((_, column) => rows.map((row) => row[column])) : rows.flat();
      await qr.query(dw.dialect.outbox.insert(OUTBOX_TABLE, rows.length, false), params);
    }
  } finally {
    await qr.release();
  }
}

/**
 * Relay throughput vs raw addBulk of the same job payloads (the jobs the
 * relay made, read back, under other ids), five rounds each, alternating;
 * the medians are compared. Both queues are emptied after every round. Two
 * outboxes: as transactions of 2,000 changes leave it (batch rows of 1,000
 * changes), and one row per change (one-change transactions).
 */
async function benchRelay(engine: Engine): Promise<void> {
  const s = await setup(engine, engine);
  const dw = await DualWrite.start({ primary: s.primary, targets: { t: s.target }, redis: REDIS, queuePrefix: s.prefix, logger: { level: 'silent' } });
  const total = Math.round(50_000 * SCALE);
  await dw.relay.idle();
  const queue = new Queue('t', { connection: { ...REDIS, maxRetriesPerRequest: null }, prefix: s.prefix });
  const rawQueue = new Queue('raw', { connection: { ...REDIS, maxRetriesPerRequest: null }, prefix: s.prefix });
  for (const singleRows of [false, true]) {
    const ours: number[] = [];
    const base: number[] = [];
    const claims: number[] = [];
    for (let round = 0; round < 5; round++) {
      await fillOutbox(dw, s.primary, total, round, 1, singleRows);
      // Two at once, as a relay's drain behind a backlog runs them.
      claims.push(await timed(() => Promise.all([rawClaims(dw, s.primary), rawClaims(dw, s.primary)])));
      await fillOutbox(dw, s.primary, total, round, 1, singleRows);
      ours.push(await timed(() => dw.flush()));
      const jobs = await queue.getJobs(['waiting'], 0, -1, true);
      const changes = jobs.reduce((n, j) => n + checkApplyJob(j.data, j.id).changes.length, 0);
      if (changes !== total) throw new Error(`relay bench: ${changes} changes in the queue, expected ${total}`);
      const payloads = jobs.map((j) => ({ name: j.name, data: j.data, opts: { jobId: `raw-${j.id}`, attempts: 10, removeOnComplete: true } }));
      base.push(await timed(() => rawQueue.addBulk(payloads)));
      await queue.obliterate({ force: true });
      await rawQueue.obliterate({ force: true });
    }
    const rows = singleRows ? `${total} outbox rows of one change` : `${total} changes in outbox rows of 1,000`;
    report(`[${engine}] relay, changes/s (${rows}, median of 5)`, (total * 1000) / median(ours), (total * 1000) / median(base), 'changes/s', '≥ 0.70×');
    // The relay's own statements alone, without Redis: a relay that claims and adds at once can go no
    // faster than the slower of the two, so this ratio is the most the line above can reach here.
    report(`[${engine}] relay floor: its claims alone, no Redis (${rows}), changes/s (median of 5)`, (total * 1000) / median(claims), (total * 1000) / median(base), 'changes/s', 'ceiling of the line above');
  }
  await queue.close();
  await rawQueue.close();
  await dw.close();
  await s.cleanup();
}

/**
 * Empties the outbox (with others like it) by the relay's own claim and
 * delete statements, one transaction of `batchSize` rows at a time, on one
 * connection; no Redis.
 */
async function rawClaims(dw: DualWrite, primary: DataSource): Promise<void> {
  const outbox = dw.dialect.outbox;
  const qr = primary.createQueryRunner();
  try {
    for (;;) {
      await qr.startTransaction();
      const claim = outbox.claim(OUTBOX_TABLE, dw.config.relay.batchSize);
      const rows = ((await qr.query(claim.sql, claim.params, true)) as { records: Array<{ seq: string }> }).records;
      if (rows.length > 0 && !outbox.claimDeletes) {
        const deletion = outbox.delete(OUTBOX_TABLE, rows.map((r) => String(r.seq)));
        await qr.query(deletion.sql, deletion.params);
      }
      await qr.commitTransaction();
      if (rows.length === 0) return;
    }
  } finally {
    if (qr.isTransactionActive) await qr.rollbackTransaction();
    await qr.release();
  }
}

/** A `bench-worker` process (relay loop and apply, as `dualwrite worker` runs them). */
interface BenchWorker {
  /** When the child started its worker (ms since the epoch). */
  startedAt: number;
  /** Every change applied so far: [id, capturedAt, queuedAt, startedAt, finishedAt] (see bench-worker). */
  lags: Array<[number, number, number, number, number]>;
  /** Stops the worker; resolves with its peak RSS in MB. */
  stop(): Promise<number>;
}

async function startBenchWorker(s: Setup, options: object = {}, reportLags = false): Promise<BenchWorker> {
  const args = [s.primaryDb.engine, s.primaryDb.name, s.targetDb.engine, s.targetDb.name, s.prefix, JSON.stringify(options)];
  const child = fork(path.join(__dirname, 'bench-worker.js'), args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_LAGS: reportLags ? '1' : '0' },
  });
  const lags: BenchWorker['lags'] = [];
  let rssMb = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const startedAt = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: { ready?: boolean; startedAt?: number; lags?: BenchWorker['lags']; rssMb?: number }) => {
      if (message.ready) resolve(message.startedAt ?? Date.now());
      if (message.lags) lags.push(...message.lags);
      if (message.rssMb !== undefined) rssMb = message.rssMb;
    });
    child.once('exit', (code) => reject(new Error(`bench worker exited with ${code}`)));
  });
  return {
    startedAt,
    lags,
    stop: async () => {
      child.send({ stop: true });
      await exited;
      return rssMb;
    },
  };
}

/** Waits until the target queue has no job left to run. */
async function queueEmpty(queue: Queue): Promise<void> {
  for (;;) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (counts.waiting + counts.active + counts.delayed + counts.prioritized === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts a worker process and warms it up on a small backlog of its own (ids
 * past `total`, removed from the target afterwards): a production worker is
 * long-running, so its JIT and connection pools are warm when a backlog comes.
 */
async function warmWorker(s: Setup, dw: DualWrite, total: number, options: object): Promise<BenchWorker> {
  const worker = await startBenchWorker(s, options);
  const queue = new Queue('t', { connection: { ...REDIS, maxRetriesPerRequest: null }, prefix: s.prefix });
  await fillOutbox(dw, dw.config.primary, Math.min(10_000, Math.ceil(total / 10)), 0, total + 1);
  await dw.flush();
  await queueEmpty(queue);
  await queue.close();
  await s.target.query(`DELETE FROM bench_item WHERE id > ${total}`);
  return worker;
}

/**
 * Drains a backlog of `total` changes (ids 1…total) with a running worker:
 * the queue is paused while the backlog is written and relayed, and the time
 * runs from its resume until no job is left.
 */
async function drainOnce(s: Setup, dw: DualWrite, total: number, round: number): Promise<number> {
  const queue = new Queue('t', { connection: { ...REDIS, maxRetriesPerRequest: null }, prefix: s.prefix });
  await queue.pause();
  await fillOutbox(dw, dw.config.primary, total, round);
  await dw.flush();
  const started = Date.now();
  await queue.resume();
  await queueEmpty(queue);
  const ms = Date.now() - started;
  const failed = await queue.getJobCountByTypes('failed');
  await queue.close();
  const rows = (await s.target.query('SELECT COUNT(*) AS n FROM bench_item')) as Array<{ n: string }>;
  if (Number(rows[0].n) !== total || failed !== 0) throw new Error(`drain incomplete: ${rows[0].n}/${total} rows, ${failed} failed jobs`);
  return ms;
}

/** Apply throughput with 1% of apply statements failing transiently (PostgreSQL target) vs none, same run. */
async function benchTransientFailures(): Promise<void> {
  const s = await setup('mariadb', 'postgres');
  const dw = await DualWrite.start({ primary: s.primary, targets: { t: s.target }, redis: REDIS, queuePrefix: s.prefix, logger: { level: 'silent' } });
  const total = Math.round(50_000 * SCALE);
  const worker = await warmWorker(s, dw, total, { retry: { attempts: 20, delay: 50, maxDelay: 1000, jitter: 0.2 } });
  const clean = await drainOnce(s, dw, total, 1);
  await s.target.query(`CREATE FUNCTION bench_flaky() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF random() < 0.01 THEN RAISE EXCEPTION 'injected transient failure' USING ERRCODE = '40001'; END IF; RETURN NULL; END $$`);
  await s.target.query('CREATE TRIGGER bench_flaky BEFORE INSERT ON bench_item FOR EACH STATEMENT EXECUTE FUNCTION bench_flaky()');
  await s.target.query('TRUNCATE bench_item');
  await s.target.query('TRUNCATE dualwrite_version_ledger');
  const flaky = await drainOnce(s, dw, total, 2);
  await worker.stop();
  await dw.close();
  report(`[mariadb → postgres] drain with 1% of applies failing transiently, rows/s`, (total * 1000) / flaky, (total * 1000) / clean, 'rows/s', '≥ 0.90×');
  await s.cleanup();
}

/**
 * Commit → applied lag at a steady 1,000 writes/s: this process writes (open
 * loop: every 10 ms it starts 10 saves, whether or not earlier ones have
 * finished) with capture and the in-process relay; a worker process of its
 * own (relay loop and apply, as `dualwrite worker`) applies. The lag of a
 * change runs from the moment its save() resolved (COMMIT acknowledged) to
 * the commit of its apply in the target; also shown from its capture
 * (before the outbox INSERT and COMMIT), and in legs.
 */
async function benchLag(): Promise<void> {
  const s = await setup('postgres', 'mariadb');
  const dw = await DualWrite.start({ primary: s.primary, targets: { t: s.target }, redis: REDIS, queuePrefix: s.prefix, logger: { level: 'silent' } });
  const worker = await startBenchWorker(s, {}, true);
  const applied = worker.lags;
  const repo = s.primary.getRepository(s.entities.BenchItem);
  const rate = 1000;
  const seconds = Math.max(3, Math.round(10 * SCALE));
  const perTick = rate / 100;
  const committedAt = new Map<number, number>();
  let id = 1;
  const saves: Array<Promise<unknown>> = [];
  const started = Date.now();
  for (let tick = 0; tick < seconds * 100; tick++) {
    const wait = started + tick * 10 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (let i = 0; i < perTick; i++) {
      const key = id++;
      saves.push(repo.save(item(key)).then(() => committedAt.set(key, Date.now())));
    }
  }
  await Promise.all(saves);
  const written = committedAt.size;
  const elapsed = (Date.now() - started) / 1000;
  const deadline = Date.now() + 30_000;
  while (applied.length < written && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await worker.stop();
  await dw.close();
  const sorted = (values: number[]) => values.sort((a, b) => a - b);
  const lags = sorted(applied.map(([key, , , , finishedAt]) => finishedAt - committedAt.get(key)!));
  const fromCapture = sorted(applied.map(([, capturedAt, , , finishedAt]) => finishedAt - capturedAt));
  const legs = [
    ['capture → queued', sorted(applied.map(([, capturedAt, queuedAt]) => queuedAt - capturedAt))],
    ['queued → started', sorted(applied.map(([, , queuedAt, startedAt]) => startedAt - queuedAt))],
    ['started → applied', sorted(applied.map(([, , , startedAt, finishedAt]) => finishedAt - startedAt))],
  ] as const;
  const pct = (p: number) => percentile(lags, p);
  process.stdout.write(
    `  (from capture, before COMMIT: p50 ${percentile(fromCapture, 0.5)} ms, p99 ${percentile(fromCapture, 0.99)} ms; legs: ` +
      `${legs.map(([name, values]) => `${name} p50 ${percentile(values, 0.5)} / p99 ${percentile(values, 0.99)}`).join('; ')})\n`,
  );
  record(
    { name: 'lag', ours: `p50 ${pct(0.5)} ms / p99 ${pct(0.99)} ms`, baseline: `${(written / elapsed).toFixed(0)} writes/s`, ratio: pct(0.99), goal: 'p50 ≤ 10 ms, p99 ≤ 50 ms' },
    `[postgres → mariadb] commit → applied lag at ${(written / elapsed).toFixed(0)} writes/s over ${elapsed.toFixed(1)} s: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${lags[lags.length - 1]} ms (${applied.length}/${written} changes; goal p50 ≤ 10 ms, p99 ≤ 50 ms)`,
  );
  await s.cleanup();
}

/** Drain of a backlog by the apply worker vs raw 1,000-row upserts of the same rows into the same target. */
async function benchDrain(primaryEngine: Engine, targetEngine: Engine): Promise<void> {
  const s = await setup(primaryEngine, targetEngine);
  const dw = await DualWrite.start({ primary: s.primary, targets: { t: s.target }, redis: REDIS, queuePrefix: s.prefix, logger: { level: 'silent' } });
  const total = Math.round(100_000 * SCALE);
  await dw.relay.idle();
  const worker = await warmWorker(s, dw, total, { worker: { concurrency: 2 } });
  const ours = await drainOnce(s, dw, total, 1);
  const rssMb = await worker.stop();

  // Baseline: the same rows, decoded, upserted 1,000 at a time straight into the target table.
  const dialect = dialectFor(s.target, { target: 't' });
  const entity = dw.entity('BenchItem');
  const described = (await s.target.query(dialect.apply.describeTable('bench_item').sql, dialect.apply.describeTable('bench_item').params)) as Record<string, unknown>[];
  const columns = described.map((r) => dialect.apply.readColumn(r));
  const byName = new Map(entity.columns.map((c) => [c.databaseName, c]));
  const baseline = await timed(async () => {
    for (let start = 1; start <= total; start += 1000) {
      const rowsChunk = changesFor(entity, start, Math.min(1000, total - start + 1), 2).map((c) =>
        columns.map((col) => decodeValue(byName.get(col.name)!.kind, c.row![col.name], dialect.name, col.sqlType)),
      );
      const st = dialect.apply.upsertRows('bench_item', columns, ['id'], rowsChunk);
      await s.target.query(st.sql, st.params);
    }
  });
  await dw.close();
  report(`[${primaryEngine} → ${targetEngine}] drain of ${total} changes, rows/s`, (total * 1000) / ours, (total * 1000) / baseline, 'rows/s', '≥ 0.50×');
  process.stdout.write(`[${primaryEngine} → ${targetEngine}] peak RSS of the worker process (warm-up and drain of ${total} changes): ${rssMb.toFixed(0)} MB (goal ≤ 256 MB for 1,000,000)\n`);
  await s.cleanup();
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  const run = (name: string) => !only || only.split(',').includes(name);
  const engines = (process.env.BENCH_ENGINES ?? 'postgres,mariadb').split(',') as Engine[];
  for (const engine of engines) {
    if (run('capture')) {
      await benchCapture(engine, true);
      await benchCapture(engine, false);
    }
    if (run('relay')) await benchRelay(engine);
  }
  if (run('drain')) {
    await benchDrain('postgres', 'mariadb');
    await benchDrain('mariadb', 'postgres');
  }
  if (run('failures')) await benchTransientFailures();
  if (run('lag')) await benchLag();
  if (run('reconcile')) await benchReconcile();
  printResults();
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack}\n`);
  process.exitCode = 1;
});
