import { Writable } from 'node:stream';
import pino from 'pino';
import { DataSource, type EntitySchema } from 'typeorm';
import { DualWrite, runMigrations, type DualWriteConfig } from '../../src';
import { createDatabase, dataSource, type Engine, type TestDatabase, MARIADB, PG } from './databases';
import { queuePrefix, removeQueues, REDIS } from './redis';

/** Log lines a test can inspect. */
export class LogSink {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger = pino(
    { level: 'debug' },
    new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) if (line) this.lines.push(JSON.parse(line));
        done();
      },
    }),
  );

  warnings(): string[] {
    return this.lines.filter((l) => (l.level as number) >= 40).map((l) => String(l.msg));
  }
}

/** Target DataSources that are configured but never connected (capture tests). */
export function idleTargets(names: string[]): Record<string, DataSource> {
  const targets: Record<string, DataSource> = {};
  names.forEach((name, i) => {
    targets[name] =
      i % 2 === 0
        ? new DataSource({ type: 'mariadb', ...MARIADB, database: 'test' })
        : new DataSource({ type: 'postgres', ...PG, database: 'postgres' });
  });
  return targets;
}

/** A primary database with entities, migrated, plus a fresh queue prefix. */
export interface PrimaryFixture {
  db: TestDatabase;
  primary: DataSource;
  prefix: string;
  config(extra?: Partial<DualWriteConfig>): DualWriteConfig;
  cleanup(): Promise<void>;
}

export async function primaryFixture(engine: Engine, entities: Array<Function | EntitySchema>, targets: string[]): Promise<PrimaryFixture> {
  const db = await createDatabase(engine, 'dwcap');
  const primary = dataSource(db, entities);
  await primary.initialize();
  const prefix = queuePrefix();
  const targetSources = idleTargets(targets);
  await runMigrations({ primary, targets: {} });
  const opened: DualWrite[] = [];
  return {
    db,
    primary,
    prefix,
    config: (extra = {}) => ({ primary, targets: targetSources, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' }, ...extra }),
    cleanup: async () => {
      for (const dw of opened) await dw.close();
      if (primary.isInitialized) await primary.destroy();
      await db.drop();
      await removeQueues(prefix);
    },
  };
}

/** A primary and one target `t` of their own, migrated, with a started DualWrite and worker. */
export interface ReplicationFixture {
  primary: DataSource;
  target: DataSource;
  dw: DualWrite;
  prefix: string;
  cleanup(): Promise<void>;
}

export async function replicationFixture(
  primaryEngine: Engine,
  targetEngine: Engine,
  primaryEntities: Array<Function | EntitySchema>,
  targetEntities: Array<Function | EntitySchema>,
): Promise<ReplicationFixture> {
  const primaryDb = await createDatabase(primaryEngine, 'dwp');
  const targetDb = await createDatabase(targetEngine, 'dwt');
  const primary = dataSource(primaryDb, primaryEntities);
  const target = dataSource(targetDb, targetEntities);
  const prefix = queuePrefix();
  await primary.initialize();
  await target.initialize();
  await runMigrations({ primary, targets: { t: target } });
  const dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } });
  const worker = await dw.startWorker();
  return {
    primary,
    target,
    dw,
    prefix,
    cleanup: async () => {
      await worker.close();
      await dw.close();
      await primary.destroy();
      await target.destroy();
      await primaryDb.drop();
      await targetDb.drop();
      await removeQueues(prefix);
    },
  };
}
