import { register as globalRegister } from 'prom-client';
import type { DataSource } from 'typeorm';
import { DualWrite, runMigrations, type AppliedEvent, type Change } from '../../../src';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { eventually } from '../../support/compare';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { freePort, obsEntities, parseMetrics } from './obs-entities';

/** PostgreSQL primary → MariaDB target, worker in process with `observability.metricsPort` set. */
describe('worker /metrics', () => {
  const source = obsEntities(true);
  const replica = obsEntities(false);
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void>; metricsPort?: number };
  let port: number;
  const events: AppliedEvent[] = [];

  beforeAll(async () => {
    primaryDb = await createDatabase('postgres', 'dwobsp');
    targetDb = await createDatabase('mariadb', 'dwobst');
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all);
    await primary.initialize();
    await target.initialize();
    await runMigrations({ primary, targets: { t: target } });
    port = await freePort();
    dw = await DualWrite.start({
      primary,
      targets: { t: target },
      redis: REDIS,
      queuePrefix: prefix,
      retry: { attempts: 3, delay: 50, maxDelay: 200 },
      observability: { metricsPort: port },
      logger: { level: 'silent' },
    });
    dw.events.on('applied', (e) => events.push(e));
    worker = await dw.startWorker();
  });

  afterAll(async () => {
    await worker?.close();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  async function scrape(): Promise<Map<string, number>> {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    return parseMetrics(await response.text());
  }

  const processed = () => events.reduce((n, e) => n + e.changes.length, 0);
  async function settle(count: number): Promise<void> {
    expect(await eventually(async () => processed() >= count, 20_000, 50)).toBe(true);
    expect(processed()).toBe(count);
  }

  it('serves on the configured port and 404s elsewhere', async () => {
    expect(worker.metricsPort).toBe(port);
    const other = await fetch(`http://127.0.0.1:${port}/`);
    expect(other.status).toBe(404);
    await other.text();
  });

  it('counts applied, skipped and dead-lettered changes per entity × target, latency, relay and the sampled gauges', async () => {
    const items = primary.getRepository(source.ObsItem);
    const notes = primary.getRepository(source.ObsNote);

    // 1. 5 item inserts and 2 updates; then 3 note inserts (each step applied before the next).
    const saved = await items.save([1, 2, 3, 4, 5].map((i) => ({ name: `item ${i}` })));
    await settle(5);
    await items.save([{ ...saved[0], name: 'renamed 1' }, { ...saved[1], name: 'renamed 2' }]);
    await settle(7);
    await notes.save([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
    await settle(10);

    // 2. The same item changes again, as a duplicate job: the version gate skips all 5.
    const firstInserts: Change[] = events[0].changes.filter((c) => c.entity === 'ObsItem');
    expect(firstInserts).toHaveLength(5);
    await dw.queues.get('t').add('apply', { target: 't', changes: firstInserts }, { jobId: 'dup-obs-1', removeOnComplete: true });
    await settle(15);

    // 3. A note too long for the target's varchar(5): a permanent failure, one dead letter.
    await notes.save({ body: 'far too long for the target' });
    await settle(16);
    expect(await eventually(async () => (await dw.listDeadLetters({ target: 't' })).length === 1)).toBe(true);

    const m = await scrape();
    expect(m.get('dualwrite_changes_applied_total{target="t",entity="ObsItem"}')).toBe(7);
    expect(m.get('dualwrite_changes_applied_total{target="t",entity="ObsNote"}')).toBe(3);
    expect(m.get('dualwrite_changes_skipped_total{target="t",entity="ObsItem"}')).toBe(5);
    expect(m.get('dualwrite_changes_skipped_total{target="t",entity="ObsNote"}')).toBeUndefined();
    expect(m.get('dualwrite_changes_dead_lettered_total{target="t",entity="ObsNote"}')).toBe(1);
    expect([...m.keys()].some((k) => k.includes('(mixed)'))).toBe(false);
    expect(m.get('dualwrite_apply_jobs_total{target="t"}')).toBe(events.length);
    expect(m.get('dualwrite_apply_latency_seconds_count{target="t"}')).toBe(16);
    expect(m.get('dualwrite_apply_latency_seconds_bucket{le="+Inf",target="t"}')).toBe(16);
    expect(m.get('dualwrite_apply_latency_seconds_sum{target="t"}')).toBeGreaterThan(0);
    // 11 captured changes went through the outbox (the duplicate job did not).
    expect(m.get('dualwrite_changes_relayed_total')).toBe(11);
    expect(m.get('dualwrite_relay_jobs_total')).toBeGreaterThanOrEqual(4);
    const newestApplied = Math.max(...events.filter((e) => e.applied > 0).flatMap((e) => e.changes.map((c) => c.capturedAt)));
    expect(m.get('dualwrite_last_applied_capture_timestamp_seconds{target="t"}')).toBe(newestApplied / 1000);
    // Sampled gauges: nothing left anywhere but the dead letter.
    expect(m.get('dualwrite_sample_success')).toBe(1);
    expect(m.get('dualwrite_outbox_backlog_rows')).toBe(0);
    expect(m.get('dualwrite_outbox_oldest_age_seconds')).toBe(0);
    expect(m.get('dualwrite_replication_lag_seconds{target="t"}')).toBe(0);
    expect(m.get('dualwrite_queue_jobs{target="t",state="waiting"}')).toBe(0);
    expect(m.get('dualwrite_queue_jobs{target="t",state="delayed"}')).toBe(0);
    expect(m.get('dualwrite_queue_jobs{target="t",state="active"}')).toBe(0);
    expect(m.get('dualwrite_dead_letters{target="t"}')).toBe(1);
    expect(m.has('process_cpu_user_seconds_total')).toBe(true);

    // The application's global registry is left alone.
    expect((await globalRegister.getMetricsAsJSON()).filter((x) => x.name.startsWith('dualwrite_'))).toEqual([]);
  });

  it('stops serving when the worker closes', async () => {
    await worker.close();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
