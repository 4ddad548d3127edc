import { DataSource } from 'typeorm';
import { CreateDualWriteOutboxCommit1764400000002, DualWrite, captureSubscriberCount } from '../../../src';
import { CaptureSubscriber } from '../../../src/capture/capture-subscriber';
import { ENGINES, type Engine } from '../../support/databases';
import { LogSink, primaryFixture, type PrimaryFixture } from '../../support/harness';
import { queuedChanges } from '../../support/queued';
import { typeormBefore } from '../../support/typeorm-version';
import { Customer, ENTITIES, Note, Order, OrderLine } from './entities';

async function outboxCount(primary: DataSource): Promise<number> {
  const rows = await primary.query('SELECT COUNT(*) AS n FROM dualwrite_outbox');
  return Number(rows[0].n);
}

/** The SQL of every statement TypeORM's logger sees while `work` runs. */
async function statementsOf(primary: DataSource, work: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const logger = primary.logger;
  const logQuery = logger.logQuery.bind(logger);
  logger.logQuery = (sql, parameters, queryRunner) => {
    statements.push(sql);
    return logQuery(sql, parameters, queryRunner);
  };
  try {
    await work();
  } finally {
    logger.logQuery = logQuery;
  }
  return statements;
}

describe.each(ENGINES)('capture on a %s primary', (engine: Engine) => {
  let fx: PrimaryFixture;
  let dw: DualWrite;
  let logs: LogSink;

  beforeEach(async () => {
    fx = await primaryFixture(engine, ENTITIES, ['reporting', 'analytics']);
    logs = new LogSink();
    dw = await DualWrite.start(fx.config({ logger: logs.logger }));
  });

  afterEach(async () => {
    await dw.close();
    await fx.cleanup();
  });

  async function published(target: string) {
    await dw.flush();
    return queuedChanges(fx.prefix, target);
  }

  it('turns save() of a new entity into one upsert per target with the full row image', async () => {
    const repo = fx.primary.getRepository(Order);
    const order = await repo.save(repo.create({ customer: 'ada', total: '12.50', cardNumber: 'x', address: { city: 'Paris', zip: null } }));
    for (const target of ['reporting', 'analytics']) {
      const changes = await published(target);
      expect(changes).toHaveLength(1);
      const [change] = changes;
      expect(change).toMatchObject({ entity: 'Order', op: 'upsert', key: [String(order.id)] });
      expect(change.id).toBe(`Order#${change.version}`);
      expect(Object.keys(change.row!).sort()).toEqual(['addressCity', 'addressZip', 'customer', 'deletedAt', 'id', 'total', 'updatedAt']);
      expect(change.row).toMatchObject({ id: order.id, customer: 'ada', total: '12.50', addressCity: 'Paris', addressZip: null, deletedAt: null });
      expect(change.row!.updatedAt).toBe(order.updatedAt.toISOString());
      expect(typeof change.capturedAt).toBe('number');
    }
  });

  it('captures an update from a partial object as the full row, with a later version', async () => {
    const repo = fx.primary.getRepository(Order);
    const order = await repo.save(repo.create({ customer: 'ada', total: '1.00', address: { city: 'Oslo', zip: '0150' } }));
    await repo.save({ id: order.id, total: '2.00' });
    const changes = await published('reporting');
    expect(changes.map((c) => c.row!.total)).toEqual(['1.00', '2.00']);
    expect(changes[1].row).toMatchObject({ customer: 'ada', addressCity: 'Oslo', addressZip: '0150' });
    expect(BigInt(changes[1].version)).toBeGreaterThan(BigInt(changes[0].version));
  });

  it('captures insert(), remove(), softRemove() and recover()', async () => {
    const repo = fx.primary.getRepository(Order);
    await repo.insert({ customer: 'bob', total: '3.00', address: { city: null, zip: null } });
    const [inserted] = await published('reporting');
    expect(inserted).toMatchObject({ op: 'upsert', row: { customer: 'bob', total: '3.00' } });
    const id = Number(inserted.key[0]);

    const order = await repo.findOneByOrFail({ id });
    await repo.softRemove(order);
    await repo.recover(order);
    const again = await repo.findOneByOrFail({ id });
    await repo.remove(again);
    const changes = (await published('reporting')).slice(1);
    expect(changes.map((c) => c.op)).toEqual(['upsert', 'upsert', 'delete']);
    expect(changes[0].row!.deletedAt).not.toBeNull();
    expect(changes[1].row!.deletedAt).toBeNull();
    expect(changes[2]).toMatchObject({ key: [String(id)], row: null });
  });

  it('captures composite keys and inherited columns, and nothing for entities that are not replicated', async () => {
    await fx.primary.getRepository(OrderLine).save({ orderId: 7, lineNo: 2, sku: 'AB-1' });
    await fx.primary.getRepository(Customer).save({ code: 'C-1', name: 'Ada' });
    await fx.primary.getRepository(Note).save({ text: 'private' });
    const lines = await published('reporting');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ entity: 'OrderLine', key: ['7', '2'], row: { orderId: 7, lineNo: 2, sku: 'AB-1', quantity: 1 } });
    const customers = await published('analytics');
    expect(customers).toHaveLength(1);
    expect(customers[0]).toMatchObject({ entity: 'Customer', key: ['C-1'], row: { code: 'C-1', name: 'Ada', createdBy: 'system' } });
    expect(typeof customers[0].row!.createdAt).toBe('string');
  });

  it('captures upsert() with the row as stored, not the partial values given', async () => {
    const lines = fx.primary.getRepository(OrderLine);
    await lines.save({ orderId: 1, lineNo: 1, sku: 'A', quantity: 5 });
    await lines.upsert({ orderId: 1, lineNo: 1, sku: 'B' }, ['orderId', 'lineNo']);
    const changes = await published('reporting');
    expect(changes.map((c) => c.row)).toEqual([
      { orderId: 1, lineNo: 1, sku: 'A', quantity: 5 },
      { orderId: 1, lineNo: 1, sku: 'B', quantity: 5 },
    ]);
  });

  it('yields nothing for a rolled-back transaction or a rolled-back savepoint', async () => {
    await expect(
      fx.primary.transaction(async (m) => {
        await m.save(OrderLine, { orderId: 1, lineNo: 1, sku: 'gone' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');

    await fx.primary.transaction(async (m) => {
      await m.save(OrderLine, { orderId: 2, lineNo: 1, sku: 'kept' });
      const qr = m.queryRunner!;
      await qr.startTransaction(); // savepoint
      await m.save(OrderLine, { orderId: 3, lineNo: 1, sku: 'rolled back' });
      await qr.rollbackTransaction();
      await qr.startTransaction(); // savepoint, released
      await m.save(OrderLine, { orderId: 4, lineNo: 1, sku: 'released' });
      await qr.commitTransaction();
    });
    const changes = await published('reporting');
    expect(changes.map((c) => c.row!.sku)).toEqual(['kept', 'released']);
    expect(await outboxCount(fx.primary)).toBe(0);
  });

  it('publishes a write inside manager.transaction only after the outer commit', async () => {
    let duringTransaction = -1;
    let queuedDuring = -1;
    await fx.primary.transaction(async (m) => {
      await m.save(OrderLine, { orderId: 9, lineNo: 1, sku: 'x' });
      const inner = m.queryRunner!;
      await inner.startTransaction();
      await m.save(OrderLine, { orderId: 9, lineNo: 2, sku: 'y' });
      await inner.commitTransaction(); // RELEASE SAVEPOINT: must not publish
      await new Promise((r) => setTimeout(r, 50));
      duringTransaction = await outboxCount(fx.primary); // another connection: sees nothing uncommitted
      queuedDuring = (await queuedChanges(fx.prefix, 'reporting')).length;
    });
    expect(duringTransaction).toBe(0);
    expect(queuedDuring).toBe(0);
    await dw.relay.idle();
    expect((await published('reporting')).map((c) => c.key)).toEqual([['9', '1'], ['9', '2']]);
  });

  it('writes all changes of a transaction in one outbox statement', async () => {
    // Every statement is logged, also the outbox INSERT a PostgreSQL primary runs as a prepared statement.
    const statements = await statementsOf(fx.primary, () =>
      fx.primary.transaction(async (m) => {
        await m.save(OrderLine, Array.from({ length: 100 }, (_, i) => ({ orderId: 50, lineNo: i, sku: `s${i}` })));
      }),
    );
    expect(statements.filter((s) => /INSERT INTO [`"]cap_line[`"]/.test(s))).toHaveLength(1);
    // One batch row for the 100 changes of one entity: with the COMMIT (PostgreSQL's literal script, MariaDB's procedure).
    expect(statements.filter((s) => /dualwrite_outbox/.test(s))).toEqual([
      engine === 'postgres' ? expect.stringMatching(/^INSERT INTO "dualwrite_outbox" .* VALUES \('OrderLine', 'batch', .*; COMMIT$/s) : expect.stringMatching(/^CALL `dualwrite_outbox_commit`\(/),
    ]);
    const changes = await published('reporting');
    expect(changes.map((c) => c.key)).toEqual(Array.from({ length: 100 }, (_, i) => ['50', String(i)]));
    // Versions: the row's sequence × 1000 + the change's place in it.
    const base = BigInt(changes[0].version);
    expect(base % 1000n).toBe(0n);
    expect(changes.map((c) => c.version)).toEqual(changes.map((_, i) => String(base + BigInt(i))));
    expect(changes.map((c) => c.id)).toEqual(changes.map((c) => `OrderLine#${c.version}`));
  });

  it('writes each entity\'s changes of a transaction to a row of its own, in capture order', async () => {
    await fx.primary.transaction(async (m) => {
      await m.save(OrderLine, { orderId: 51, lineNo: 1, sku: 'a' });
      await m.save(Order, m.create(Order, { customer: 'x', total: '1.00', cardNumber: '4111111111111111', address: { city: 'Oslo', zip: null } }));
      await m.save(OrderLine, { orderId: 51, lineNo: 2, sku: 'b' });
      await m.save(OrderLine, { orderId: 51, lineNo: 3, sku: 'c' });
    });
    const changes = await published('reporting');
    const lines = changes.filter((c) => c.entity === 'OrderLine');
    const order = changes.find((c) => c.entity === 'Order')!;
    expect(lines.map((c) => c.row?.sku)).toEqual(['a', 'b', 'c']);
    // One row for the lines (versions base, base + 1, base + 2), the next for the order.
    const base = BigInt(lines[0].version);
    expect(lines.map((c) => BigInt(c.version) - base)).toEqual([0n, 1n, 2n]);
    expect(BigInt(order.version)).toBe(base + 1000n);
  });

  it('splits a large transaction\'s rows before their keys overflow the outbox pk column, and publishes every change', async () => {
    await dw.close();
    dw = await DualWrite.start(fx.config({ logger: logs.logger, relay: { afterCommit: false } })); // the rows stay until the flush
    const codes = Array.from({ length: 1000 }, (_, i) => `c${String(i).padStart(19, '0')}`); // 20 characters, the column's width
    await fx.primary.getRepository(Customer).save(codes.map((code) => ({ code, name: `n-${code}` })));
    const rows = (await fx.primary.query("SELECT op, pk FROM dualwrite_outbox WHERE entity = 'Customer' ORDER BY seq")) as Array<{ op: string; pk: string }>;
    expect(rows.length).toBeGreaterThan(1);
    for (const row of rows) expect(row.pk.length).toBeLessThanOrEqual(16_000);
    expect(rows.flatMap((r) => (r.op === 'batch' ? (JSON.parse(r.pk) as string[][]) : [JSON.parse(r.pk) as string[]])).map((k) => k[0])).toEqual(codes);
    const changes = await published('analytics');
    expect(changes.map((c) => c.key[0])).toEqual(codes);
    expect(changes.map((c) => c.row?.name)).toEqual(codes.map((code) => `n-${code}`));
  });

  (engine === 'postgres' ? it : it.skip)('prepares the outbox INSERT unless capture.preparedStatements is false (poolers without prepared statements)', async () => {
    await dw.close();
    // A primary with ONE fresh pooled connection: a session sees only the statements it prepared itself.
    const preparedOutboxStatements = async (capture: { preparedStatements?: boolean }, orderId: number) => {
      const primary = new DataSource({ ...fx.db.options(ENTITIES), extra: { max: 1 } } as ConstructorParameters<typeof DataSource>[0]);
      await primary.initialize();
      const own = await DualWrite.start(fx.config({ primary, capture }));
      try {
        // 1,001 changes: more than ride in the COMMIT's round trip (that is a literal script, never prepared).
        await primary.getRepository(OrderLine).save(Array.from({ length: 1001 }, (_, i) => ({ orderId, lineNo: i + 1, sku: 'p' })));
        const rows: Array<{ name: string }> = await primary.query('SELECT name FROM pg_prepared_statements');
        return rows.map((r) => r.name).filter((n) => n.startsWith('dualwrite_outbox_'));
      } finally {
        await own.close();
        await primary.destroy();
      }
    };
    expect(await preparedOutboxStatements({}, 60)).toHaveLength(1);
    expect(await preparedOutboxStatements({ preparedStatements: false }, 61)).toEqual([]);
    dw = await DualWrite.start(fx.config({ logger: logs.logger }));
    const keys = (await published('reporting')).map((c) => c.key);
    expect(keys).toEqual(expect.arrayContaining([['60', '1'], ['60', '1001'], ['61', '1'], ['61', '1001']]));
  });

  it('sends a small transaction\'s outbox rows in its COMMIT\'s round trip, with any text intact', async () => {
    // Quotes, backslashes (the escape-string form of a PostgreSQL literal), non-ASCII, a newline.
    const sku = 'it\'s "q" \\ \\\\n zürich ✓ 名\nend';
    const statements = await statementsOf(fx.primary, () => fx.primary.getRepository(OrderLine).save({ orderId: 70, lineNo: 1, sku }));
    const outbox = statements.filter((s) => /dualwrite_outbox/.test(s));
    expect(outbox).toHaveLength(1);
    expect(outbox[0]).toMatch(
      engine === 'postgres' ? /^INSERT INTO "dualwrite_outbox" .* VALUES \(.*; COMMIT$/s : /^CALL `dualwrite_outbox_commit`\(\?, \?, \?, \?, \?, \?, \?\)$/,
    );
    expect(statements).not.toContain('COMMIT');
    const [change] = await published('reporting');
    expect(change.row!.sku).toBe(sku);
  });

  (engine === 'mariadb' ? it : it.skip)('on MariaDB, sends the INSERT on its own for more than one outbox row, or without the commit procedure', async () => {
    const twoEntities = () =>
      statementsOf(fx.primary, () =>
        fx.primary.transaction(async (m) => {
          await m.save(OrderLine, [{ orderId: 72, lineNo: 1, sku: 'a' }, { orderId: 72, lineNo: 2, sku: 'b' }]);
          await m.save(Order, m.create(Order, { customer: 'y', total: '1.00', cardNumber: '4111111111111111', address: { city: 'Oslo', zip: null } }));
        }),
      );
    const two = await twoEntities();
    expect(two.filter((s) => /dualwrite_outbox/.test(s))).toEqual([expect.stringMatching(/^INSERT INTO `dualwrite_outbox`/)]);
    expect(two).toContain('COMMIT');
    // A primary migrated before the procedure existed (or without the CREATE ROUTINE privilege).
    await dw.close();
    await fx.primary.query('DROP PROCEDURE dualwrite_outbox_commit');
    dw = await DualWrite.start(fx.config({ logger: logs.logger }));
    const one = await statementsOf(fx.primary, () => fx.primary.getRepository(OrderLine).save({ orderId: 73, lineNo: 1, sku: 'c' }));
    expect(one.filter((s) => /dualwrite_outbox/.test(s))).toEqual([expect.stringMatching(/^INSERT INTO `dualwrite_outbox`/)]);
    expect(one).toContain('COMMIT');
    expect((await published('reporting')).filter((c) => c.entity === 'OrderLine').map((c) => c.key)).toEqual([['72', '1'], ['72', '2'], ['73', '1']]);
  });

  (engine === 'mariadb' ? it : it.skip)('on MariaDB, commits and captures when the procedure is dropped under a running process, or its user may not see it', async () => {
    await fx.primary.query('DROP PROCEDURE dualwrite_outbox_commit'); // after start-up found it
    const dropped = await statementsOf(fx.primary, () => fx.primary.getRepository(OrderLine).save({ orderId: 74, lineNo: 1, sku: 'd' }));
    expect(dropped.filter((s) => /dualwrite_outbox/.test(s))).toEqual([
      expect.stringMatching(/^CALL `dualwrite_outbox_commit`/),
      expect.stringMatching(/^INSERT INTO `dualwrite_outbox`/),
    ]);
    expect(logs.warnings().filter((w) => /outbox commit procedure cannot be used/.test(w))).toHaveLength(1);
    const later = await statementsOf(fx.primary, () => fx.primary.getRepository(OrderLine).save({ orderId: 74, lineNo: 2, sku: 'e' }));
    expect(later.filter((s) => /dualwrite_outbox/.test(s))).toEqual([expect.stringMatching(/^INSERT INTO `dualwrite_outbox`/)]);

    // An application user with data privileges only (no EXECUTE): it does not see the procedure.
    const migrating = fx.primary.createQueryRunner();
    await new CreateDualWriteOutboxCommit1764400000002().up(migrating).finally(() => migrating.release());
    const user = `dwapp_${fx.db.name.slice(-8)}`;
    await fx.primary.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    try {
      await fx.primary.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${fx.db.name}\`.* TO '${user}'@'%'`);
      const app = new DataSource({ ...fx.db.options(ENTITIES), username: user, password: 'pw', synchronize: false } as ConstructorParameters<typeof DataSource>[0]);
      await app.initialize();
      const own = await DualWrite.start(fx.config({ primary: app, logger: logs.logger }));
      try {
        const restricted = await statementsOf(app, () => app.getRepository(OrderLine).save({ orderId: 75, lineNo: 1, sku: 'f' }));
        expect(restricted.filter((s) => /dualwrite_outbox/.test(s))).toEqual([expect.stringMatching(/^INSERT INTO `dualwrite_outbox`/)]);
      } finally {
        await own.close();
        await app.destroy();
      }
    } finally {
      await fx.primary.query(`DROP USER '${user}'@'%'`);
    }
    // Two processes relay here (the restricted one and the fixture's): a change may be queued twice, which the apply's version gate makes harmless.
    const keys = new Set((await published('reporting')).map((c) => c.key.join('/')));
    expect([...keys].sort()).toEqual(['74/1', '74/2', '75/1']);
  });

  it('still writes the changes, and says so, when a transaction commits without the outbox write it was to carry', async () => {
    const runner = fx.primary.createQueryRunner();
    try {
      await runner.startTransaction();
      await runner.manager.save(OrderLine, { orderId: 71, lineNo: 1, sku: 'late' });
      // A TypeORM whose commitTransaction() sent something other than a plain "COMMIT".
      const internals = runner as unknown as { broadcaster: { broadcast(event: string): Promise<void> }; transactionDepth: number; isTransactionActive: boolean };
      await internals.broadcaster.broadcast('BeforeTransactionCommit');
      await runner.query('COMMIT WORK');
      internals.isTransactionActive = false;
      internals.transactionDepth = 0;
      await internals.broadcaster.broadcast('AfterTransactionCommit');
    } finally {
      await runner.release();
    }
    const changes = await published('reporting');
    expect(changes.map((c) => c.key)).toEqual([['71', '1']]);
    expect(logs.lines.some((l) => (l.level as number) >= 50 && /committed without the outbox write/.test(String(l.msg)))).toBe(true);
  });

  it('gets no entity event of an entity that is not replicated, and every one of those that are', async () => {
    const subscriber = fx.primary.subscribers.find((s) => s instanceof CaptureSubscriber) as CaptureSubscriber;
    const calls: string[] = [];
    for (const hook of ['beforeInsert', 'afterInsert', 'beforeUpdate', 'afterUpdate', 'beforeRemove', 'afterRemove'] as const) {
      const original = subscriber[hook].bind(subscriber) as (event: { metadata: { name: string } }) => unknown;
      (subscriber as unknown as Record<string, unknown>)[hook] = (event: { metadata: { name: string } }) => {
        calls.push(`${hook} ${event.metadata.name}`);
        return original(event);
      };
    }
    const note = await fx.primary.getRepository(Note).save({ text: 'private' });
    await fx.primary.getRepository(Note).save({ ...note, text: 'changed' });
    await fx.primary.getRepository(Note).remove(note);
    expect(calls).toEqual([]);
    await fx.primary.getRepository(Customer).save({ code: 'C-9', name: 'Ada' });
    expect(calls).toEqual(['beforeInsert Customer', 'afterInsert Customer']);
    expect(await published('analytics')).toHaveLength(1);
  });

  it('listens to every entity where TypeORM does not decide with listenTo().isPrototypeOf', () => {
    const subscriber = new CaptureSubscriber({
      entities: dw.entities, dialect: dw.dialect, outbox: undefined as never, logger: logs.logger, strict: false, onCommitted: () => undefined,
    });
    expect(subscriber.narrowEntityEvents(() => true)).toBe(false);
    expect(subscriber.listenTo).toBeUndefined();
    expect(subscriber.narrowEntityEvents((s, target) => (s.listenTo!() as unknown as { isPrototypeOf(t: unknown): boolean }).isPrototypeOf(target))).toBe(true);
    expect(subscriber.listenTo).toBeDefined();
  });

  it('registers exactly one capture subscriber, also when start() is called twice', async () => {
    const second = await DualWrite.start(fx.config());
    expect(captureSubscriberCount(fx.primary)).toBe(1);
    await fx.primary.getRepository(OrderLine).save({ orderId: 1, lineNo: 1, sku: 'once' });
    expect(await published('reporting')).toHaveLength(1);
    await second.close();
    expect(captureSubscriberCount(fx.primary)).toBe(1);
  });

  it('warns once per entity and call site for update()/delete() whose keys it cannot see', async () => {
    const repo = fx.primary.getRepository(OrderLine);
    await repo.save({ orderId: 1, lineNo: 1, sku: 'a' });
    for (let i = 0; i < 3; i++) await repo.update({ orderId: 1 }, { sku: `b${i}` });
    await repo.delete({ orderId: 1 });
    await fx.primary.query(engine === 'postgres' ? `UPDATE "cap_line" SET sku = 'raw'` : 'UPDATE `cap_line` SET sku = \'raw\'');
    const warnings = logs.warnings().filter((w) => w.includes('was not captured'));
    expect(warnings.filter((w) => w.includes('UPDATE'))).toHaveLength(1);
    expect(warnings.filter((w) => w.includes('DELETE'))).toHaveLength(1);
    expect(warnings[0]).toContain('"OrderLine"');
    if (engine === 'mariadb' && typeormBefore('0.3.23')) {
      // TypeORM 0.3.18–0.3.22's MySQL driver announces a statement behind a
      // `new Promise(async …)`, which async stack traces cannot see through.
      expect(warnings[0]).toContain('at an unknown call site');
    } else {
      expect(warnings[0]).toMatch(/capture\.test\.ts:\d+/);
    }
  });

  it('refuses such writes under strict: true', async () => {
    await dw.close();
    dw = await DualWrite.start(fx.config({ strict: true }));
    const repo = fx.primary.getRepository(OrderLine);
    await repo.save({ orderId: 1, lineNo: 1, sku: 'a' });
    await expect(
      fx.primary.transaction((m) => m.getRepository(OrderLine).update({ orderId: 1 }, { sku: 'b' })),
    ).rejects.toMatchObject({ code: 'UNCAPTURED_WRITE', entity: 'OrderLine' });
    expect((await repo.findOneByOrFail({ orderId: 1, lineNo: 1 })).sku).toBe('a');
    // Swallowing the statement's error does not get the write committed: the COMMIT is refused too.
    await expect(
      fx.primary.transaction(async (m) => {
        await m.getRepository(OrderLine).update({ orderId: 1 }, { sku: 'c' }).catch(() => undefined);
      }),
    ).rejects.toMatchObject({ code: 'UNCAPTURED_WRITE', entity: 'OrderLine' });
    expect((await repo.findOneByOrFail({ orderId: 1, lineNo: 1 })).sku).toBe('a');
  });

  it('captures QueryBuilder writes that return their keys', async () => {
    const repo = fx.primary.getRepository(OrderLine);
    await repo.save([{ orderId: 1, lineNo: 1, sku: 'a' }, { orderId: 1, lineNo: 2, sku: 'b' }]);
    await published('reporting');
    if (engine === 'postgres') {
      await repo.createQueryBuilder().update().set({ sku: 'z' }).where('"orderId" = 1').returning(['orderId', 'lineNo']).execute();
    }
    await repo.createQueryBuilder().delete().where('"lineNo" = 2'.replace(/"/g, engine === 'postgres' ? '"' : '`')).returning(['orderId', 'lineNo']).execute();
    const changes = (await published('reporting')).slice(2);
    const expected = engine === 'postgres' ? [['upsert', 'z'], ['upsert', 'z'], ['delete', null]] : [['delete', null]];
    expect(changes.map((c) => [c.op, c.row?.sku ?? null])).toEqual(expected);
    expect(logs.warnings().filter((w) => w.includes('was not captured'))).toEqual([]);
  });
});
