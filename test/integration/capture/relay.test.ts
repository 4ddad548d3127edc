import { spawnSync } from 'node:child_process';
import path from 'node:path';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';
import { DualWrite } from '../../../src';
import { applyQueueName } from '../../../src/queue/apply-job';
import { ENGINES, type Engine } from '../../support/databases';
import { primaryFixture, type PrimaryFixture } from '../../support/harness';
import { queuedChanges } from '../../support/queued';
import { REDIS, redisKeys } from '../../support/redis';
import { ENTITIES, Order, SECRET } from './entities';

const ROOT = path.resolve(__dirname, '../../..');

/**
 * Puts a key of the wrong type where BullMQ keeps the queue's metadata, so
 * Redis answers WRONGTYPE to every add; returns what lets adds through again.
 */
async function refuseAdds(redis: IORedis, prefix: string, target: string): Promise<() => Promise<unknown>> {
  const meta = `${prefix}:${applyQueueName(target)}:meta`;
  await redis.del(meta);
  await redis.rpush(meta, 'not a hash');
  return () => redis.del(meta);
}

async function outboxCount(primary: DataSource): Promise<number> {
  const rows = await primary.query('SELECT COUNT(*) AS n FROM dualwrite_outbox');
  return Number(rows[0].n);
}

describe.each(ENGINES)('relay on a %s primary', (engine: Engine) => {
  let fx: PrimaryFixture;

  beforeEach(async () => {
    fx = await primaryFixture(engine, ENTITIES, ['reporting', 'analytics']);
  });

  afterEach(async () => {
    await fx.cleanup();
  });

  it('publishes a change whose process was killed between commit and relay', async () => {
    const child = spawnSync(process.execPath, [path.join(ROOT, 'dist/test/fixtures/crash-after-commit.js'), engine, fx.db.name, fx.prefix], {
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(child.signal).toBe('SIGKILL');
    expect(await outboxCount(fx.primary)).toBe(1);
    expect(await queuedChanges(fx.prefix, 'reporting')).toEqual([]);

    const dw = await DualWrite.start(fx.config()); // start-up relays what the dead process left
    await dw.relay.idle();
    await dw.close();
    const changes = await queuedChanges(fx.prefix, 'reporting');
    expect(changes.map((c) => c.row?.sku)).toEqual(['survivor']);
    expect(await outboxCount(fx.primary)).toBe(0);
  });

  it('loses nothing when two relays race over 10,000 outbox rows', async () => {
    const total = 10_000;
    const insert =
      engine === 'postgres'
        ? `INSERT INTO dualwrite_outbox (entity, op, pk, row_image, targets, captured_at)
           SELECT 'OrderLine', 'upsert', '["' || g || '","1"]', '{"orderId":' || g || '}', 'reporting', 0 FROM generate_series(1, ${total}) g`
        : `INSERT INTO dualwrite_outbox (entity, op, pk, row_image, targets, captured_at)
           SELECT 'OrderLine', 'upsert', CONCAT('["', seq, '","1"]'), CONCAT('{"orderId":', seq, '}'), 'reporting', 0 FROM seq_1_to_${total}`;
    await fx.primary.query(insert);
    const second = new DataSource(fx.db.options(ENTITIES));
    await second.initialize();
    const relayConfig = { relay: { batchSize: 250, jobSize: 100, pollInterval: 1000 } };
    const a = await DualWrite.start(fx.config(relayConfig));
    const b = await DualWrite.start({ ...fx.config(relayConfig), primary: second });
    try {
      const moved = await Promise.all([a.flush(), b.flush(), a.flush(), b.flush()]);
      await Promise.all([a.relay.idle(), b.relay.idle()]);
      expect(moved.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(total);
    } finally {
      await a.close();
      await b.close();
      await second.destroy();
    }
    const versions = (await queuedChanges(fx.prefix, 'reporting')).map((c) => c.version);
    expect(new Set(versions).size).toBe(total);
    expect(versions).toHaveLength(total); // SKIP LOCKED: no row went to two relays
    expect(await outboxCount(fx.primary)).toBe(0);
  });

  it('keeps every claimed row when Redis refuses the jobs, and relays them once it accepts', async () => {
    const dw = await DualWrite.start({ ...fx.config(), relay: { afterCommit: false } });
    await dw.relay.idle(); // the start-up pass is over: only this test's calls claim
    const redis = new IORedis(REDIS);
    try {
      const repo = fx.primary.getRepository(Order);
      const accept = await refuseAdds(redis, fx.prefix, 'reporting');
      await repo.save(repo.create({ customer: 'grace', total: '1.00', cardNumber: SECRET, address: { city: 'Oslo', zip: null } }));
      await expect(dw.relay.relayOnce()).rejects.toThrow(/WRONGTYPE/);
      expect(await outboxCount(fx.primary)).toBe(1); // rolled back: the claim deleted nothing
      await expect(dw.relay.relayOnce()).rejects.toThrow(/WRONGTYPE/); // the connection went back to the pool usable
      expect(await outboxCount(fx.primary)).toBe(1);
      await accept();
      expect((await dw.relay.relayOnce()).rows).toBe(1);
      expect(await outboxCount(fx.primary)).toBe(0);
    } finally {
      redis.disconnect();
      await dw.close();
    }
    expect((await queuedChanges(fx.prefix, 'reporting')).map((c) => c.row?.customer)).toEqual(['grace']);
  });

  it('relays its own commits from memory, and nothing of a transaction whose COMMIT failed', async () => {
    const dw = await DualWrite.start(fx.config());
    await dw.relay.idle(); // the start-up pass is over
    // PostgreSQL and MariaDB 10.5+ return the outbox sequences: no claim is needed.
    const claims = jest.spyOn(dw.relay, 'relayOnce');
    try {
      const repo = fx.primary.getRepository(Order);
      if (engine === 'postgres') {
        // Checked only at COMMIT: the outbox INSERT succeeds, the COMMIT fails and the transaction rolls back.
        await fx.primary.query('ALTER TABLE cap_order ADD CONSTRAINT cap_order_customer_once UNIQUE (customer) DEFERRABLE INITIALLY DEFERRED');
        await expect(
          fx.primary.transaction(async (manager) => {
            await manager.save(Order, manager.create(Order, { customer: 'twice', total: '1.00', cardNumber: SECRET, address: { city: 'Oslo', zip: null } }));
            await manager.save(Order, manager.create(Order, { customer: 'twice', total: '2.00', cardNumber: SECRET, address: { city: 'Oslo', zip: null } }));
          }),
        ).rejects.toThrow(/cap_order_customer_once/);
      }
      await repo.save(repo.create({ customer: 'once', total: '3.00', cardNumber: SECRET, address: { city: 'Bern', zip: null } }));
      await dw.relay.idle();
      expect((await queuedChanges(fx.prefix, 'reporting')).map((c) => c.row?.customer)).toEqual(['once']);
      expect(await outboxCount(fx.primary)).toBe(0);
      expect(dw.dialect.outbox.returnsSeqs).toBe(true);
      expect(claims).not.toHaveBeenCalled();
    } finally {
      await dw.close();
    }
  });

  it('relays its own commits once Redis accepts them again, when it refused them at commit', async () => {
    const dw = await DualWrite.start(fx.config());
    const redis = new IORedis(REDIS);
    try {
      const repo = fx.primary.getRepository(Order);
      const accept = await refuseAdds(redis, fx.prefix, 'reporting');
      await repo.save(repo.create({ customer: 'kept', total: '1.00', cardNumber: SECRET, address: { city: 'Oslo', zip: null } }));
      await new Promise((r) => setTimeout(r, 300)); // the add and the first retries fail
      expect(await outboxCount(fx.primary)).toBe(1);
      expect(await queuedChanges(fx.prefix, 'reporting')).toEqual([]);
      await accept();
      const deadline = Date.now() + 20_000;
      while ((await outboxCount(fx.primary)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await dw.relay.idle();
    } finally {
      redis.disconnect();
      await dw.close();
    }
    expect(await outboxCount(fx.primary)).toBe(0);
    expect((await queuedChanges(fx.prefix, 'reporting')).map((c) => c.row?.customer)).toEqual(['kept']);
  });

  it('claims at most relay.batchSize rows and about 20,000 changes at a time, whatever the outbox rows hold', async () => {
    const dw = await DualWrite.start({ ...fx.config(), relay: { afterCommit: false, batchSize: 60 } });
    await dw.relay.idle();
    try {
      const repo = fx.primary.getRepository(Order);
      const order = (i: number) => repo.create({ customer: `c${i}`, total: '1.00', cardNumber: SECRET, address: { city: 'Oslo', zip: null } });
      // 45 transactions of 1,000 changes, then 60 of one: 45 batch rows, 45,060 changes.
      for (let t = 0; t < 45; t++) await repo.save(Array.from({ length: 1000 }, (_, i) => order(t * 1000 + i)));
      for (let t = 0; t < 60; t++) await repo.save(order(100_000 + t));
      const passes: Array<{ rows: number; changes: number }> = [];
      dw.events.on('relayed', (pass) => passes.push(pass));
      expect(await dw.relay.drain()).toBe(45_060);
      // 20 rows first; then (two claims at a time) 20,000 changes' worth at the density seen, at most 60 rows:
      // never the 60 rows (25 of them batch rows, over 25,000 changes) a claim by rows alone would take.
      expect(passes[0]).toMatchObject({ rows: 20, changes: 20_000 });
      expect(passes.length).toBeGreaterThanOrEqual(3);
      expect(passes.every((p) => p.rows <= 60 && p.changes <= 20_000)).toBe(true);
      expect(passes.reduce((n, p) => n + p.changes, 0)).toBe(45_060);
      expect(await outboxCount(fx.primary)).toBe(0);
      expect(await queuedChanges(fx.prefix, 'reporting')).toHaveLength(45_060);
    } finally {
      await dw.close();
    }
  });

  it('never claims rows the process is relaying from memory, so a claim right after a commit queues nothing twice', async () => {
    const dw = await DualWrite.start(fx.config());
    await dw.relay.idle();
    try {
      const repo = fx.primary.getRepository(Order);
      let claimed = 0;
      for (let i = 0; i < 20; i++) {
        await repo.save(repo.create({ customer: `m${i}`, total: '1.00', cardNumber: SECRET, address: { city: 'Oslo', zip: null } }));
        // A claim while the commit's own publish is on its way (as a loose write's nudge starts one).
        claimed += await dw.relay.drain();
      }
      await dw.relay.idle();
      expect(claimed).toBe(0);
      const changes = await queuedChanges(fx.prefix, 'reporting');
      expect(changes.map((c) => c.row?.customer)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      expect(await outboxCount(fx.primary)).toBe(0);
    } finally {
      await dw.close();
    }
  });

  it("claims only what was already in the outbox at a worker's previous poll", async () => {
    const dw = await DualWrite.start({ ...fx.config(), relay: { afterCommit: false } });
    await dw.relay.idle(); // the start-up pass is over
    try {
      const repo = fx.primary.getRepository(Order);
      const order = (customer: string) => repo.create({ customer, total: '1.00', cardNumber: SECRET, address: { city: 'Oslo', zip: null } });
      await repo.save([order('a'), order('b')]); // one outbox row of two changes
      const seen = await dw.relay.newestSeq();
      expect(seen).toMatch(/^\d+$/);
      await repo.save(order('c'));
      expect(await dw.relay.drain(seen)).toBe(2); // changes
      expect(await outboxCount(fx.primary)).toBe(1);
      expect((await queuedChanges(fx.prefix, 'reporting')).map((c) => c.row?.customer)).toEqual(['a', 'b']);
      expect(await dw.relay.drain()).toBe(1);
      expect(await dw.relay.newestSeq()).toBeUndefined();
    } finally {
      await dw.close();
    }
  });

  it('keeps @NotReplicated values out of the outbox and out of every Redis key', async () => {
    const dw = await DualWrite.start(fx.config());
    try {
      const repo = fx.primary.getRepository(Order);
      const order = await repo.save(repo.create({ customer: 'ada', total: '9.99', cardNumber: SECRET, address: { city: 'Rome', zip: null } }));
      await repo.save({ ...order, cardNumber: `${SECRET}-2`, total: '10.00' });
      await dw.flush();
    } finally {
      await dw.close();
    }
    const redis = new IORedis(REDIS);
    const dump: string[] = [];
    try {
      const keys = await redisKeys(fx.prefix);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === 'string') dump.push(String(await redis.get(key)));
        else if (type === 'hash') dump.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'list') dump.push(JSON.stringify(await redis.lrange(key, 0, -1)));
        else if (type === 'zset') dump.push(JSON.stringify(await redis.zrange(key, 0, -1)));
        else if (type === 'set') dump.push(JSON.stringify(await redis.smembers(key)));
        else if (type === 'stream') dump.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      }
    } finally {
      redis.disconnect();
    }
    const everything = dump.join('\n');
    expect(everything).toContain('Rome'); // the scan did see the payloads
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain('cardNumber');
  });
});
