/**
 * The bad-input catalogue, part 1: misconfigurations caught at start-up.
 * Each row is one kind of bad input; each must fail `DualWrite.start` with a
 * `DualWriteError` whose code and context name the culprit (option, entity,
 * target, column) and whose message says how to fix it. Options are checked
 * before anything connects, so these rows need no database; the entity rows
 * (decorator mistakes, unsupported column types) run on both primary engines.
 * (Unknown targets in @Replicate, entities without a key, renames of unknown
 * columns, unreachable Redis and a missing outbox are in
 * test/integration/capture/startup-errors.test.ts.)
 */
import { Column, DataSource, Entity, ManyToOne, PrimaryColumn } from 'typeorm';
import { DualWrite, defineDualWrite, isDualWriteError, type DualWriteConfig } from '../../../src';
import { NotReplicated, Replicate } from '../../../decorators';
import { runMigrations } from '../../../migrations';
import { createDatabase, dataSource, ENGINES, MARIADB, PG, type Engine, type TestDatabase } from '../../support/databases';
import { idleTargets } from '../../support/harness';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';

jest.setTimeout(60_000);

interface Caught {
  code: string;
  message: string;
  entity?: string;
  target?: string;
  column?: string;
  option?: string;
}

async function startError(config: DualWriteConfig): Promise<Caught> {
  let dw: DualWrite | undefined;
  try {
    dw = await DualWrite.start(config);
  } catch (error) {
    if (isDualWriteError(error)) return error;
    throw new Error(`expected a DualWriteError, got ${(error as Error)?.stack ?? String(error)}`);
  }
  await dw.close();
  throw new Error('DualWrite.start succeeded but should have failed');
}

/** A primary that is never connected: option errors must come before any connection. */
const idlePrimary = () => new DataSource({ type: 'postgres', ...PG, database: 'postgres' });

function base(extra: Record<string, unknown> = {}): DualWriteConfig {
  return { primary: idlePrimary(), targets: idleTargets(['reporting']), redis: REDIS, logger: { level: 'silent' }, ...extra } as DualWriteConfig;
}

interface OptionCase {
  kind: string;
  config: () => DualWriteConfig;
  option: string;
  /** What the message must say (the culprit's value, the fix). */
  says: RegExp[];
}

const OPTION_CASES: OptionCase[] = [
  { kind: 'unknown top-level option (typo)', config: () => base({ retyr: { attempts: 3 } }), option: 'retyr', says: [/did you mean "retry"\?/, /Known: primary, targets, redis/] },
  { kind: 'unknown nested option (wrong case)', config: () => base({ relay: { jobsize: 100 } }), option: 'relay.jobsize', says: [/did you mean "jobSize"\?/] },
  { kind: 'unknown option without a near name', config: () => base({ worker: { threads: 4 } }), option: 'worker.threads', says: [/unknown option\. Known: concurrency, tombstoneRetention, lockDuration/] },
  { kind: 'wrong type: number given as a string', config: () => base({ worker: { concurrency: '4' } }), option: 'worker.concurrency', says: [/expected a positive whole number, got "4"/] },
  { kind: 'zero concurrency', config: () => base({ worker: { concurrency: 0 } }), option: 'worker.concurrency', says: [/positive whole number, got 0/] },
  { kind: 'negative retry attempts', config: () => base({ retry: { attempts: -1 } }), option: 'retry.attempts', says: [/got -1/] },
  { kind: 'zero job size', config: () => base({ relay: { jobSize: 0 } }), option: 'relay.jobSize', says: [/got 0/] },
  { kind: 'fractional batch size', config: () => base({ relay: { batchSize: 1.5 } }), option: 'relay.batchSize', says: [/whole number, got 1.5/] },
  { kind: 'retry cap below the first delay', config: () => base({ retry: { delay: 5000, maxDelay: 1000 } }), option: 'retry.maxDelay', says: [/1000 is smaller than retry.delay \(5000\)/] },
  { kind: 'jitter outside 0–1', config: () => base({ retry: { jitter: 2 } }), option: 'retry.jitter', says: [/from 0 to 1, got 2/] },
  { kind: 'section given as a number', config: () => base({ relay: 5 }), option: 'relay', says: [/expected an object, got 5/] },
  { kind: 'boolean given as a string', config: () => base({ relay: { afterCommit: 'no' } }), option: 'relay.afterCommit', says: [/true or false, got "no"/] },
  { kind: 'capture option given as a string', config: () => base({ capture: { preparedStatements: 'off' } }), option: 'capture.preparedStatements', says: [/true or false, got "off"/] },
  { kind: 'target name with a dot', config: () => base({ targets: { 'bad.name': idleTargets(['x']).x } }), option: 'targets.bad.name', says: [/starts with a letter and holds only letters, digits/] },
  { kind: 'empty targets', config: () => base({ targets: {} }), option: 'targets', says: [/e\.g\. \{ reporting: reportingDataSource \}/] },
  { kind: 'targets as an array', config: () => base({ targets: [idleTargets(['x']).x] }), option: 'targets', says: [/got an array/] },
  { kind: 'target given as DataSource options', config: () => base({ targets: { reporting: { type: 'postgres', ...PG } } }), option: 'targets.reporting', says: [/got DataSource options, not a DataSource: wrap them/] },
  { kind: 'the primary as a target', config: () => { const c = base(); return { ...c, targets: { reporting: c.primary } }; }, option: 'targets.reporting', says: [/cannot be the primary DataSource itself/] },
  { kind: 'primary missing', config: () => base({ primary: undefined }), option: 'primary', says: [/expected a TypeORM DataSource .* got nothing/] },
  { kind: 'redis missing', config: () => base({ redis: undefined }), option: 'redis', says: [/ioredis connection options .* or a redis:\/\/ URL, got nothing/] },
  { kind: 'redis URL that is not a URL', config: () => base({ redis: 'localhost:6379' }), option: 'redis', says: [/redis:\/\/ or rediss:\/\/, not localhost:\/\//] },
  { kind: 'redis URL of another protocol', config: () => base({ redis: 'http://127.0.0.1:6379' }), option: 'redis', says: [/not http:\/\//] },
  { kind: 'redis port as a string', config: () => base({ redis: { host: '127.0.0.1', port: '6379' } }), option: 'redis.port', says: [/port number from 1 to 65535, got "6379"/] },
  { kind: 'queue prefix with a colon', config: () => base({ queuePrefix: 'my:app' }), option: 'queuePrefix', says: [/letters, digits/] },
  { kind: 'unknown log level', config: () => base({ logger: { level: 'verbose' } }), option: 'logger.level', says: [/one of fatal, error, warn, info, debug, trace, silent, got "verbose"/] },
  { kind: 'unknown logger option', config: () => base({ logger: { levle: 'info' } }), option: 'logger.levle', says: [/did you mean "level"\?/] },
  { kind: 'onDeadLetter not a function', config: () => base({ onDeadLetter: 'notify' }), option: 'onDeadLetter', says: [/expected a function/] },
  { kind: 'metrics port out of range', config: () => base({ observability: { metricsPort: 70000 } }), option: 'observability.metricsPort', says: [/1 to 65535, or 0/] },
];

describe('bad input: options', () => {
  it('an unknown log level in DUALWRITE_LOG_LEVEL', async () => {
    process.env.DUALWRITE_LOG_LEVEL = 'verbose';
    try {
      const error = await startError(base({ logger: undefined }));
      expect(error).toMatchObject({ code: 'CONFIG_INVALID', option: 'DUALWRITE_LOG_LEVEL' });
      expect(error.message).toContain('DUALWRITE_LOG_LEVEL is "verbose"; expected one of fatal, error, warn, info, debug, trace, silent');
    } finally {
      delete process.env.DUALWRITE_LOG_LEVEL;
    }
  });

  it('a primary of a driver other than PostgreSQL or MySQL/MariaDB', async () => {
    const sqlite = { options: { type: 'better-sqlite3', database: ':memory:' }, initialize: async () => undefined } as unknown as DataSource;
    const error = await startError(base({ primary: sqlite }));
    expect(error).toMatchObject({ code: 'PRIMARY_DRIVER_UNSUPPORTED', option: 'primary' });
    expect(error.message).toContain('uses driver "better-sqlite3"');
  });

  it.each(OPTION_CASES.map((c) => [c.kind, c] as const))('%s', async (_kind, c) => {
    const error = await startError(c.config());
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', option: c.option });
    expect(error.message).toContain(`Invalid "${c.option}"`);
    for (const pattern of c.says) expect(error.message).toMatch(pattern);
  });
});

// Entities of the decorator rows: one class per mistake.
@Replicate({ to: ['reporting'], notReplicated: ['pasword'] })
@Entity('bi_typo')
class SecretTypo {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'varchar', length: 40 }) password!: string;
}

@Replicate({ to: ['reporting'], table: { reportng: 'accounts' } })
@Entity('bi_table_target')
class TableForUnknownTarget {
  @PrimaryColumn({ type: 'int' }) id!: number;
}

@Replicate({ to: ['reporting'], columns: { reporting: { firstName: 'name', lastName: 'name' } } })
@Entity('bi_two_into_one')
class TwoIntoOne {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'varchar', length: 40 }) firstName!: string;
  @Column({ type: 'varchar', length: 40 }) lastName!: string;
}

@Replicate({ to: ['reporting'], columns: { reporting: { name: '' } } })
@Entity('bi_empty_rename')
class EmptyRename {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'varchar', length: 40 }) name!: string;
}

@Replicate({ to: [] })
@Entity('bi_no_targets')
class NoTargets {
  @PrimaryColumn({ type: 'int' }) id!: number;
}

@Replicate({ to: ['reporting'] })
@Entity('bi_point')
class Place {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'point', nullable: true }) location!: unknown;
}

@Replicate({ to: ['reporting'] })
@Entity('bi_place_kept')
class PlaceKept {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @NotReplicated() @Column({ type: 'point', nullable: true }) location!: unknown;
  @Column({ type: 'varchar', length: 80, nullable: true }) locationText!: string | null;
}

@Replicate({ to: ['reporting'] })
@Entity('bi_interval')
class Shift {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'interval', nullable: true }) length!: unknown;
}

@Replicate({ to: ['reporting'] })
@Entity('bi_geometry')
class Parcel {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'geometry', nullable: true }) shape!: unknown;
}

@Entity('bi_owner_missing')
class OrphanOwner {
  @PrimaryColumn({ type: 'int' }) id!: number;
}

/** Its relation's entity is not in the DataSource's list: TypeORM refuses to build the metadata. */
@Entity('bi_orphan')
class Orphan {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @ManyToOne(() => OrphanOwner) owner!: OrphanOwner;
}

interface EntityCase {
  kind: string;
  entity: Function;
  engines: Engine[];
  expected: Partial<Caught>;
  says: RegExp[];
}

const ENTITY_CASES: EntityCase[] = [
  {
    kind: 'notReplicated naming a column that does not exist (would leak the real one)',
    entity: SecretTypo,
    engines: ENGINES,
    expected: { code: 'COLUMN_UNKNOWN', entity: 'SecretTypo', column: 'pasword', option: 'notReplicated' },
    says: [/nothing is kept back/, /id, password/],
  },
  {
    kind: 'table name for a target not in "to"',
    entity: TableForUnknownTarget,
    engines: ['postgres'],
    expected: { code: 'TARGET_UNKNOWN', entity: 'TableForUnknownTarget', target: 'reportng', option: 'table' },
    says: [/not in its "to" list \(reporting\)/],
  },
  {
    kind: 'two columns renamed into one target column',
    entity: TwoIntoOne,
    engines: ['postgres'],
    expected: { code: 'CONFIG_INVALID', entity: 'TwoIntoOne', target: 'reporting', column: 'name', option: 'columns' },
    says: [/both "firstName" and "lastName" into column "name"/],
  },
  {
    kind: 'rename to an empty column name',
    entity: EmptyRename,
    engines: ['postgres'],
    expected: { code: 'CONFIG_INVALID', entity: 'EmptyRename', column: 'name', option: 'columns' },
    says: [/non-empty string/],
  },
  {
    kind: '@Replicate with an empty "to"',
    entity: NoTargets,
    engines: ['postgres'],
    expected: { code: 'CONFIG_INVALID', entity: 'NoTargets', option: 'to' },
    says: [/needs a non-empty "to" list/],
  },
  {
    kind: 'PostgreSQL point column (unsupported type)',
    entity: Place,
    engines: ['postgres'],
    expected: { code: 'COLUMN_TYPE_UNSUPPORTED', entity: 'Place', column: 'location' },
    says: [/type "point"/, /@NotReplicated\(\)/],
  },
  {
    kind: 'PostgreSQL interval column (unsupported type)',
    entity: Shift,
    engines: ['postgres'],
    expected: { code: 'COLUMN_TYPE_UNSUPPORTED', entity: 'Shift', column: 'length' },
    says: [/type "interval"/],
  },
  {
    kind: 'MariaDB geometry column (unsupported type)',
    entity: Parcel,
    engines: ['mariadb'],
    expected: { code: 'COLUMN_TYPE_UNSUPPORTED', entity: 'Parcel', column: 'shape' },
    says: [/type "geometry"/, /text or json copy/],
  },
];

describe.each(ENGINES)('bad input: entities (%s primary)', (engine) => {
  let db: TestDatabase;
  const prefix = queuePrefix();
  const cases = ENTITY_CASES.filter((c) => c.engines.includes(engine));

  beforeAll(async () => {
    db = await createDatabase(engine, 'dwbi');
  });

  afterAll(async () => {
    await db.drop();
    await removeQueues(prefix);
  });

  async function primaryWith(entities: Function[]): Promise<DataSource> {
    const primary = dataSource(db, entities);
    await primary.initialize();
    await runMigrations({ primary, targets: {} });
    return primary;
  }

  const config = (primary: DataSource): DualWriteConfig =>
    defineDualWrite({ primary, targets: idleTargets(['reporting']), redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } });

  it.each(cases.map((c) => [c.kind, c] as const))('%s', async (_kind, c) => {
    const primary = await primaryWith([c.entity]);
    try {
      const error = await startError(config(primary));
      expect(error).toMatchObject(c.expected);
      for (const pattern of c.says) expect(error.message).toMatch(pattern);
    } finally {
      await primary.destroy();
    }
  });

  if (engine === 'postgres') {
    it('an unsupported column kept back with @NotReplicated is fine', async () => {
      const primary = await primaryWith([PlaceKept]);
      try {
        const dw = await DualWrite.start(config(primary));
        expect(dw.entity('PlaceKept').columns.map((c) => c.propertyPath)).toEqual(['id', 'locationText']);
        await dw.close();
      } finally {
        await primary.destroy();
      }
    });
  }
});

describe('bad input: unreachable databases', () => {
  it('an unreachable primary names "primary" and keeps the password out of the message', async () => {
    const primary = new DataSource({ type: 'postgres', host: '127.0.0.1', port: 1, username: 'postgres', password: 'hunter2', database: 'x', connectTimeoutMS: 2000 });
    const error = await startError(base({ primary }));
    expect(error).toMatchObject({ code: 'PRIMARY_UNREACHABLE', option: 'primary' });
    expect(error.message).toMatch(/ECONNREFUSED|connect/);
    expect(error.message).toContain('"primary"');
    expect(error.message).not.toContain('hunter2');
  });

  it('a MariaDB primary whose database does not exist names "primary"', async () => {
    const primary = new DataSource({ type: 'mariadb', ...MARIADB, database: 'dw_no_such_database_here' });
    const error = await startError(base({ primary }));
    expect(error).toMatchObject({ code: 'PRIMARY_UNREACHABLE', option: 'primary' });
    expect(error.message).toContain('dw_no_such_database_here');
    expect(error.message).toContain('Check its connection options in "primary".');
  });

  it('a primary whose entities TypeORM refuses says so, not "connection"', async () => {
    const primary = new DataSource({ type: 'postgres', ...PG, database: 'postgres', entities: [Orphan] });
    const error = await startError(base({ primary }));
    expect(error).toMatchObject({ code: 'PRIMARY_UNREACHABLE', option: 'primary' });
    expect(error.message).toMatch(/Entity metadata for Orphan#owner was not found/);
    expect(error.message).toContain('Check its entities and options in "primary" (TypeORM itself refused them).');
  });
});
