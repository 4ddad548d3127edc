/**
 * The worker process of the drain and lag benches, as `dualwrite worker`
 * runs in production: relay loop and apply worker, in a process of its own.
 * It sends the parent (IPC) the key and timestamps of every change it
 * applies (see `lags`), and on `{ stop: true }` its peak RSS.
 * argv: <primary engine> <primary database> <target engine> <target database> <queue prefix> [<config JSON>]
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { DualWrite, type DualWriteConfig } from '../../src';
import { MARIADB, PG, type Engine } from '../support/databases';
import { REDIS } from '../support/redis';
import { benchEntities } from './bench-entities';

function connection(engine: Engine) {
  return engine === 'postgres' ? ({ type: 'postgres', ...PG } as const) : ({ type: 'mariadb', ...MARIADB } as const);
}

async function main(): Promise<void> {
  const [primaryEngine, primaryDb, targetEngine, targetDb, prefix, extra] = process.argv.slice(2) as [Engine, string, Engine, string, string, string?];
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const primary = new DataSource({ ...connection(primaryEngine), database: primaryDb, entities: [benchEntities(primaryEngine).BenchItem] });
  const target = new DataSource({ ...connection(targetEngine), database: targetDb });
  const options = JSON.parse(extra ?? '{}') as Partial<DualWriteConfig>;
  const dw = await DualWrite.start({
    primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' }, reconcile: { every: 0 }, ...options,
  });
  // Per change applied: its key (the bench's ids are numbers) and when it was captured, queued, started and applied.
  // Only for the lag bench (BENCH_LAGS=1): sending them costs the drains time.
  let lags: Array<[number, number, number, number, number]> = [];
  if (process.env.BENCH_LAGS === '1') dw.events.on('applied', (e) => {
    for (const c of e.changes) lags.push([Number(c.key[0]), c.capturedAt, e.queuedAt, e.startedAt, e.finishedAt]);
  });
  const startedAt = Date.now();
  const worker = await dw.startWorker();
  const report = setInterval(() => {
    if (lags.length === 0) return;
    process.send?.({ lags });
    lags = [];
  }, 100);
  process.send?.({ ready: true, startedAt });
  process.on('message', (message: { stop?: boolean }) => {
    if (!message.stop) return;
    clearInterval(report);
    void (async () => {
      await worker.close();
      clearInterval(sampler);
      if (lags.length) process.send?.({ lags });
      const rssMb = Math.max(peak, process.memoryUsage().rss) / 2 ** 20;
      await dw.close(); // closes the primary too: `start` opened it
      if (target.isInitialized) await target.destroy();
      process.send?.({ stopped: true, rssMb }, () => process.exit(0));
    })();
  });
}

main().catch((error) => {
  process.stderr.write(`bench worker failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
