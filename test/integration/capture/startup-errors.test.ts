import { ChildEntity, Column, DataSource, Entity, PrimaryColumn, TableInheritance, ViewColumn, ViewEntity } from 'typeorm';
import { Broadcaster } from 'typeorm/subscriber/Broadcaster';
import { DualWrite, captureSubscriberCount, defineDualWrite, isDualWriteError, type DualWriteConfig } from '../../../src';
import { Replicate } from '../../../decorators';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { idleTargets } from '../../support/harness';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { runMigrations } from '../../../migrations';
import { connectRedis } from '../../../src/queue/redis-connection';

@Replicate({ to: ['reporting', 'warehouse'] })
@Entity('bad_unknown_target')
class UnknownTarget {
  @PrimaryColumn({ type: 'int' }) id!: number;
}

@Replicate({ to: ['reporting'] })
@ViewEntity({ name: 'bad_no_key', expression: 'SELECT 1 AS n' })
class NoKey {
  @ViewColumn() n!: number;
}

@Replicate({ to: ['reporting'], columns: { reporting: { nope: 'x' } } })
@Entity('bad_rename')
class BadRename {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'int' }) n!: number;
}

@Entity('bad_shared')
@TableInheritance({ column: { type: 'varchar', length: 16, name: 'kind' } })
class SharedRoot {
  @PrimaryColumn({ type: 'int' }) id!: number;
}

@Replicate({ to: ['reporting'] })
@ChildEntity('child')
class SharedChild extends SharedRoot {
  @Column({ type: 'int', nullable: true }) n!: number | null;
}

@Replicate({ to: ['reporting'] })
@Entity('good_entity')
class Good {
  @PrimaryColumn({ type: 'int' }) id!: number;
}

async function startError(config: DualWriteConfig): Promise<{ code: string; message: string; entity?: string; target?: string; option?: string }> {
  try {
    const dw = await DualWrite.start(config);
    await dw.close();
  } catch (error) {
    if (isDualWriteError(error)) return error;
    throw error;
  }
  throw new Error('DualWrite.start succeeded but should have failed');
}

describe('start-up validation', () => {
  let db: TestDatabase;
  const prefix = queuePrefix();

  beforeAll(async () => {
    db = await createDatabase('postgres', 'dwbad');
  });

  afterAll(async () => {
    await db.drop();
    await removeQueues(prefix);
  });

  async function primaryWith(entities: Function[], migrate = true): Promise<DataSource> {
    const primary = dataSource(db, entities);
    await primary.initialize();
    if (migrate) await runMigrations({ primary, targets: {} });
    return primary;
  }

  function config(primary: DataSource, extra: Partial<DualWriteConfig> = {}): DualWriteConfig {
    return defineDualWrite({ primary, targets: idleTargets(['reporting']), redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' }, ...extra });
  }

  it('names an unknown target and the entity that uses it', async () => {
    const primary = await primaryWith([UnknownTarget]);
    const error = await startError(config(primary));
    expect(error).toMatchObject({ code: 'TARGET_UNKNOWN', entity: 'UnknownTarget', target: 'warehouse' });
    expect(error.message).toContain('Known targets: "reporting"');
    await primary.destroy();
  });

  it('rejects a replicated entity without a primary key', async () => {
    const primary = await primaryWith([NoKey]);
    const error = await startError(config(primary));
    expect(error).toMatchObject({ code: 'ENTITY_NO_PRIMARY_KEY', entity: 'NoKey' });
    expect(error.message).toContain('@PrimaryColumn');
    await primary.destroy();
  });

  it('rejects a column rename of a column the entity does not have', async () => {
    const primary = await primaryWith([BadRename]);
    const error = await startError(config(primary));
    expect(error).toMatchObject({ code: 'COLUMN_UNKNOWN', entity: 'BadRename', target: 'reporting', column: 'nope' });
    await primary.destroy();
  });

  it('asks for @Replicate on the root of a single-table hierarchy, not on a child', async () => {
    const primary = await primaryWith([SharedRoot, SharedChild]);
    const error = await startError(config(primary));
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', entity: 'SharedChild' });
    expect(error.message).toContain('Put @Replicate on the root entity "SharedRoot"');
    await primary.destroy();
  });

  it('rejects a target whose driver is neither PostgreSQL nor MySQL/MariaDB', async () => {
    const primary = await primaryWith([Good]);
    const sqlite = { options: { type: 'better-sqlite3', database: ':memory:' }, initialize: async () => undefined } as unknown as DataSource;
    const error = await startError(config(primary, { targets: { reporting: sqlite } }));
    expect(error).toMatchObject({ code: 'TARGET_DRIVER_UNSUPPORTED', target: 'reporting' });
    expect(error.message).toContain('better-sqlite3');
    await primary.destroy();
  });

  it('refuses a TypeORM that does not tell subscribers about statements (0.3.17 and older)', async () => {
    const primary = await primaryWith([Good]);
    // TypeORM 0.3.17's broadcaster: no beforeQuery/afterQuery events.
    const prototype = Broadcaster.prototype as unknown as Record<string, unknown>;
    const afterQuery = prototype.broadcastAfterQueryEvent;
    delete prototype.broadcastAfterQueryEvent;
    try {
      const error = await startError(config(primary));
      expect(error).toMatchObject({ code: 'TYPEORM_UNSUPPORTED', option: 'primary' });
      expect(error.message).toContain('0.3.18');
      expect(captureSubscriberCount(primary)).toBe(0);
    } finally {
      prototype.broadcastAfterQueryEvent = afterQuery;
      await primary.destroy();
    }
  });

  it('says Redis is unreachable, with its address and no password', async () => {
    const primary = await primaryWith([Good]);
    const error = await startError(config(primary, { redis: { host: '127.0.0.1', port: 1, password: 'hunter2' } }));
    expect(error).toMatchObject({ code: 'REDIS_UNREACHABLE', option: 'redis' });
    expect(error.message).toContain('127.0.0.1:1');
    expect(error.message).not.toContain('hunter2');
    await primary.destroy();
  });

  it('leaves nothing of a refused Redis connection running (no timer keeps the process alive)', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = timers();
    await expect(connectRedis({ host: '127.0.0.1', port: 1 })).rejects.toMatchObject({ code: 'REDIS_UNREACHABLE' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(timers()).toBe(before);
  });

  it('says to run `dualwrite migrate` when the outbox table is missing', async () => {
    const other = await createDatabase('mariadb', 'dwbad');
    const primary = dataSource(other, [Good]);
    await primary.initialize();
    try {
      const error = await startError(config(primary));
      expect(error.code).toBe('OUTBOX_MISSING');
      expect(error.message).toContain('dualwrite migrate');
    } finally {
      await primary.destroy();
      await other.drop();
    }
  });

  it('names unknown and malformed options', async () => {
    const primary = await primaryWith([Good]);
    expect(await startError({ ...config(primary), relay: { batchSize: 0 } })).toMatchObject({ code: 'CONFIG_INVALID', option: 'relay.batchSize' });
    expect(await startError({ ...config(primary), retyr: {} } as unknown as DualWriteConfig)).toMatchObject({ code: 'CONFIG_INVALID', option: 'retyr' });
    expect(await startError({ ...config(primary), targets: { 'bad.name': primary } })).toMatchObject({ code: 'CONFIG_INVALID', option: 'targets.bad.name' });
    expect(await startError({ ...config(primary), primary: {} as DataSource })).toMatchObject({ code: 'CONFIG_INVALID', option: 'primary' });
    await primary.destroy();
  });
});
