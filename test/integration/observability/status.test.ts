import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { DualWrite, runMigrations, type DualWriteConfig } from '../../../src';
import { evaluateStatus, statusCommand } from '../../../src/cli/status-command';
import { DeadLetterQueue } from '../../../src/dead-letter/dead-letter-queue';
import { createDatabase, dataSource, ENGINES, type Engine, type TestDatabase } from '../../support/databases';
import { eventually } from '../../support/compare';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { obsEntities } from './obs-entities';

const MINUTE = 60_000;

describe.each(ENGINES)('dualwrite status (%s primary and target)', (engine: Engine) => {
  const source = obsEntities(true);
  const replica = obsEntities(false);
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let config: DualWriteConfig;

  beforeAll(async () => {
    primaryDb = await createDatabase(engine, 'dwstp');
    targetDb = await createDatabase(engine, 'dwstt');
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all);
    await primary.initialize();
    await target.initialize();
    await runMigrations({ primary, targets: { t: target } });
    config = { primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } };
  });

  afterAll(async () => {
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  async function status(values: Record<string, string | boolean | undefined>, override: Partial<DualWriteConfig> = {}) {
    let out = '';
    const code = await statusCommand(values, { config: { ...config, ...override }, write: (t) => (out += t) });
    return { code, out, json: values.json ? JSON.parse(out) : undefined };
  }

  it('exits 0 after a workload has fully replicated, and prints no connection details', async () => {
    const dw = await DualWrite.start(config);
    const worker = await dw.startWorker();
    try {
      await primary.getRepository(source.ObsItem).save([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
      expect(await eventually(async () => (await target.getRepository(replica.ObsItem).count()) === 3)).toBe(true);
      expect(await eventually(async () => (await dw.overview()).targets[0].queue.active === 0)).toBe(true);
    } finally {
      await worker.close();
      await dw.close();
    }
    const text = await status({});
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^Outbox \(primary\): 0 row\(s\) not relayed$/m);
    expect(text.out).toMatch(/^t\s+yes\s+0 ms\s+0\s+0\s+0\s+0\s+0\s+0$/m);
    expect(text.out).toContain('OK: everything is within the thresholds (lag ≤ 60000 ms, dead letters ≤ 0, outbox age ≤ 60000 ms).');
    const json = await status({ json: true });
    expect(json.code).toBe(0);
    expect(json.json).toMatchObject({
      ok: true,
      outbox: { count: 0, oldestCapturedAt: null, oldestAgeMs: 0 },
      targets: [{ target: 't', reachable: true, lagMs: 0, oldestPendingCapturedAt: null, deadLetters: 0, queue: { waiting: 0, delayed: 0, active: 0, failed: 0 } }],
      thresholds: { lagMs: MINUTE, deadLetters: 0, outboxAgeMs: MINUTE },
      breaches: [],
    });
    for (const secret of ['127.0.0.1', '5432', '3306', '6379', 'postgres', 'root', 'password', primaryDb.name]) {
      expect(text.out).not.toContain(secret);
      expect(json.out).not.toContain(secret);
    }
  });

  it('exits 1 on an old outbox row (outboxAgeMs) until --max-outbox-age-ms allows it', async () => {
    const table = engine === 'postgres' ? '"dualwrite_outbox"' : '`dualwrite_outbox`';
    const p = engine === 'postgres' ? ['$1', '$2', '$3', '$4', '$5'] : ['?', '?', '?', '?', '?'];
    const capturedAt = Date.now() - 5 * MINUTE;
    await primary.query(
      `INSERT INTO ${table} (entity, op, pk, row_image, targets, captured_at) VALUES (${p.join(', ')}, ${engine === 'postgres' ? '$6' : '?'})`,
      ['ObsItem', 'upsert', '["999"]', '{"id":999,"name":"x"}', 't', capturedAt],
    );
    try {
      const failing = await status({ json: true });
      expect(failing.code).toBe(1);
      expect(failing.json.outbox.count).toBe(1);
      expect(failing.json.outbox.oldestCapturedAt).toBe(capturedAt);
      expect(failing.json.outbox.oldestAgeMs).toBeGreaterThanOrEqual(5 * MINUTE);
      expect(failing.json.breaches).toEqual([expect.objectContaining({ threshold: 'outboxAgeMs', flag: '--max-outbox-age-ms', max: MINUTE })]);
      const text = await status({});
      expect(text.code).toBe(1);
      expect(text.out).toMatch(/^FAIL: age of the oldest outbox row \(ms\) is \d+ > 60000 \(threshold outboxAgeMs: observability\.thresholds\.outboxAgeMs or --max-outbox-age-ms\)$/m);
      expect((await status({ 'max-outbox-age-ms': String(60 * MINUTE) })).code).toBe(0);
      expect((await status({}, { observability: { thresholds: { outboxAgeMs: 60 * MINUTE } } })).code).toBe(0);
      // The flag overrides the config, both ways.
      expect((await status({ 'max-outbox-age-ms': '1000' }, { observability: { thresholds: { outboxAgeMs: 60 * MINUTE } } })).code).toBe(1);
      // status measured without relaying: the row is still there.
      expect((await status({ json: true, 'max-outbox-age-ms': String(60 * MINUTE) })).json.outbox.count).toBe(1);
    } finally {
      await primary.query(`DELETE FROM ${table}`);
    }
  });

  it('exits 1 on replication lag (lagMs): the oldest change of a waiting job', async () => {
    const connection = new IORedis({ ...REDIS, maxRetriesPerRequest: null });
    const queue = new Queue('t', { connection, prefix });
    const capturedAt = Date.now() - 3 * MINUTE;
    const change = (v: number, at: number) => ({ id: `ObsItem#${v}`, entity: 'ObsItem', op: 'upsert' as const, key: [String(v)], version: String(v), row: { id: v, name: 'x' }, capturedAt: at });
    try {
      await queue.add('apply', { target: 't', changes: [change(900, capturedAt + 1000), change(901, capturedAt)] }, { jobId: 'lag-1' });
      await queue.add('apply', { target: 't', changes: [change(902, Date.now())] }, { jobId: 'lag-2', delay: 60_000 });
      const failing = await status({ json: true });
      expect(failing.code).toBe(1);
      expect(failing.json.targets[0]).toMatchObject({ target: 't', oldestPendingCapturedAt: capturedAt, queue: { waiting: 1, delayed: 1 } });
      expect(failing.json.targets[0].lagMs).toBeGreaterThanOrEqual(3 * MINUTE);
      expect(failing.json.breaches).toEqual([expect.objectContaining({ threshold: 'lagMs', target: 't', flag: '--max-lag-ms' })]);
      const text = await status({});
      expect(text.out).toMatch(/^FAIL: replication lag of target "t" \(ms\) is \d+ > 60000 \(threshold lagMs: observability\.thresholds\.lagMs or --max-lag-ms\)$/m);
      expect((await status({ 'max-lag-ms': String(60 * MINUTE) })).code).toBe(0);
      expect((await status({}, { observability: { thresholds: { lagMs: 60 * MINUTE } } })).code).toBe(0);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
    expect((await status({})).code).toBe(0);
  });

  it('exits 1 on dead letters (deadLetters, default 0) until the threshold allows them', async () => {
    const connection = new IORedis({ ...REDIS, maxRetriesPerRequest: null });
    const letters = new DeadLetterQueue(connection, prefix, 3);
    try {
      const now = Date.now();
      for (const v of [700, 701]) {
        await letters.add({
          target: 't',
          change: { id: `ObsNote#${v}`, entity: 'ObsNote', op: 'upsert', key: [String(v)], version: String(v), row: { id: v, body: 'too long' }, capturedAt: now },
          failure: { class: 'permanent', reason: 'data', message: 'Data too long for column body' },
          attempts: 1,
          firstFailedAt: now,
          lastFailedAt: now,
        });
      }
      const failing = await status({ json: true });
      expect(failing.code).toBe(1);
      expect(failing.json.targets[0].deadLetters).toBe(2);
      expect(failing.json.breaches).toEqual([expect.objectContaining({ threshold: 'deadLetters', target: 't', value: 2, max: 0, flag: '--max-dead-letters' })]);
      expect((await status({})).out).toContain('FAIL: dead letters of target "t" is 2 > 0 (threshold deadLetters: observability.thresholds.deadLetters or --max-dead-letters)');
      expect((await status({ 'max-dead-letters': '1' })).code).toBe(1);
      expect((await status({ 'max-dead-letters': '2' })).code).toBe(0);
      expect((await status({}, { observability: { thresholds: { deadLetters: 5 } } })).code).toBe(0);
    } finally {
      await letters.queue('t').obliterate({ force: true });
      await letters.close();
      connection.disconnect();
    }
  });

  it('exits 1 when a target does not answer, naming it and why, and still reports the others', async () => {
    // Nothing listens on port 1: the connection is refused at once.
    const down = new DataSource({ ...targetDb.options(replica.all), port: 1, synchronize: false } as DataSourceOptions);
    const text = await status({}, { targets: { t: target, down } });
    expect(text.code).toBe(1);
    expect(text.out).toMatch(/^t\s+yes\s+0 ms/m);
    expect(text.out).toMatch(/^down\s+NO\s+0 ms/m);
    expect(text.out).toMatch(/^FAIL: target "down" does not answer from here \(ECONNREFUSED\); its changes wait in its queue\./m);
    const json = await status({ json: true }, { targets: { t: target, down } });
    expect(json.json.ok).toBe(false);
    expect(json.json.targets).toEqual([
      expect.objectContaining({ target: 't', reachable: true }),
      expect.objectContaining({ target: 'down', reachable: false, unreachableReason: 'ECONNREFUSED' }),
    ]);
    // The driver's code, not its message: no host, port or user in the report.
    for (const secret of ['127.0.0.1', ':1', 'postgres', 'root']) expect(json.out).not.toContain(secret);
    expect(json.json.breaches).toEqual([expect.objectContaining({ threshold: 'reachable', target: 'down' })]);
    expect(down.isInitialized).toBe(false);
    expect(target.isInitialized).toBe(true); // a DataSource the caller opened stays open
  });

  it('rejects a bad flag before connecting, and bad thresholds in the config', async () => {
    await expect(status({ 'max-lag-ms': 'soon' })).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringContaining('--max-lag-ms expects a whole number') });
    await expect(status({ 'max-dead-letters': '-1' })).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(status({}, { observability: { thresholds: { lagMs: -5 } } })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('observability.thresholds.lagMs'),
    });
    await expect(status({}, { observability: { metricsPort: 70000 } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('evaluateStatus', () => {
  it('names every exceeded threshold, per target, and treats a value equal to its threshold as within it', () => {
    const queue = { waiting: 0, prioritized: 0, delayed: 0, active: 0, failed: 0 };
    const overview = {
      at: 0,
      outbox: { count: 3, oldestCapturedAt: 0, oldestAgeMs: 5000 },
      targets: [
        { target: 'a', lagMs: 2000, oldestPendingCapturedAt: 0, queue, deadLetters: 0 },
        { target: 'b', lagMs: 1000, oldestPendingCapturedAt: 0, queue, deadLetters: 4 },
      ],
    };
    const breaches = evaluateStatus(overview, { lagMs: 1000, deadLetters: 3, outboxAgeMs: 4999 });
    expect(breaches.map((b) => [b.threshold, b.target, b.value, b.max])).toEqual([
      ['lagMs', 'a', 2000, 1000],
      ['deadLetters', 'b', 4, 3],
      ['outboxAgeMs', undefined, 5000, 4999],
    ]);
    expect(evaluateStatus(overview, { lagMs: 2000, deadLetters: 4, outboxAgeMs: 5000 })).toEqual([]);
  });
});
