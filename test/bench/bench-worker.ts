/**
 * The worker process of the lag bench, as `dualwrite worker` runs in
 * production: relay loop and apply worker, in a process of its own. It sends
 * the parent the commit → applied lag of every change it applies.
 * argv: <primary database (PostgreSQL)> <target database (MariaDB)> <queue prefix>
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { DualWrite } from '../../src';
import { MARIADB, PG } from '../support/databases';
import { REDIS } from '../support/redis';
import { benchEntities } from './bench-entities';

async function main(): Promise<void> {
  const [primaryDb, targetDb, prefix] = process.argv.slice(2);
  const primary = new DataSource({ type: 'postgres', ...PG, database: primaryDb, entities: [benchEntities('postgres').BenchItem] });
  const target = new DataSource({ type: 'mariadb', ...MARIADB, database: targetDb });
  const dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' }, reconcile: { every: 0 } });
  let lags: number[] = [];
  dw.events.on('applied', (e) => {
    for (const c of e.changes) lags.push(e.finishedAt - c.capturedAt);
  });
  const worker = await dw.startWorker();
  const report = setInterval(() => {
    if (lags.length === 0) return;
    process.send?.({ lags });
    lags = [];
  }, 100);
  process.send?.({ ready: true });
  process.on('message', (message: { stop?: boolean }) => {
    if (!message.stop) return;
    clearInterval(report);
    void (async () => {
      await worker.close();
      if (lags.length) process.send?.({ lags });
      await dw.close(); // closes the primary too: `start` opened it
      if (target.isInitialized) await target.destroy();
      process.send?.({ stopped: true }, () => process.exit(0));
    })();
  });
}

main().catch((error) => {
  process.stderr.write(`lag worker failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
