import { isDeepStrictEqual } from 'node:util';
import type { DataSource, QueryRunner } from 'typeorm';
import type { Dialect } from '../../../src/dialect/dialect';
import { DualWrite, runMigrations, type DualWriteConfig } from '../../../src';
import { dialectFor } from '../../../src/dialect/dialect-for';
import { eventually, snapshot } from '../../support/compare';
import { outboxCount } from '../faults/convergence';
import { decodeValue } from '../../../src/apply/value-decoder';
import type { RowImage } from '../../../src/outbox/change';
import { OutboxWriter } from '../../../src/outbox/outbox-writer';
import { encodeValue } from '../../../src/outbox/value-codec';
import { createDatabase, dataSource, ENGINES, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';

export const PAIRS: Array<[Engine, Engine]> = ENGINES.flatMap((p) => ENGINES.map((t) => [p, t] as [Engine, Engine]));

/** A primary and a target database with their tables, a running DualWrite and (optionally) a worker. */
export interface PairFixture {
  primaryDb: TestDatabase;
  targetDb: TestDatabase;
  primary: DataSource;
  target: DataSource;
  prefix: string;
  dw: DualWrite;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  /**
   * Writes rows into the primary as one bulk statement per 2,000 rows (with
   * the apply's own SQL: TypeORM's insert() costs ~0.4 ms a row here); ids
   * are 1, 2, …. `outbox` also writes their changes to the outbox, as capture
   * would; `direct` writes the same wire values into the target with the
   * apply's decoding and upsert SQL, without the queue and the ledger;
   * `primary` writes nothing else (rows that predate the plugin).
   */
  bulkLoad(entityName: string, values: ReadonlyArray<Record<string, unknown>>, mode?: 'outbox' | 'direct' | 'primary'): Promise<void>;
  /** Waits until the outbox is empty and the target's queue has nothing left to apply; fails on failed jobs. */
  drained(timeoutMs?: number): Promise<void>;
  /** Waits until the target's rows equal the primary's for these entities (through the worker). */
  converged(entityNames: string[], timeoutMs?: number): Promise<{ ok: boolean; differences: string[] }>;
  cleanup(): Promise<void>;
}

export async function pairFixture(
  primaryEngine: Engine,
  targetEngine: Engine,
  primaryEntities: Function[],
  targetEntities: Function[],
  extra: Partial<DualWriteConfig> = {},
): Promise<PairFixture> {
  const primaryDb = await createDatabase(primaryEngine, 'dwrp');
  const targetDb = await createDatabase(targetEngine, 'dwrt');
  const primary = dataSource(primaryDb, primaryEntities);
  const target = dataSource(targetDb, targetEntities);
  await primary.initialize();
  await target.initialize();
  await runMigrations({ primary, targets: { t: target } });
  const prefix = queuePrefix();
  const dw = await DualWrite.start({
    primary,
    targets: { t: target },
    redis: REDIS,
    queuePrefix: prefix,
    logger: { level: 'silent' },
    ...extra,
  });
  let worker: { close(): Promise<void> } | undefined;
  const fixture: PairFixture = {
    primaryDb,
    targetDb,
    primary,
    target,
    prefix,
    dw,
    startWorker: async () => {
      worker ??= await dw.startWorker();
    },
    stopWorker: async () => {
      await worker?.close();
      worker = undefined;
    },
    bulkLoad: async (entityName, values, mode = 'outbox') => {
      const entity = dw.entity(entityName);
      const pd = dialectFor(primary, { primary: true });
      const td = dialectFor(target, { target: 't' });
      const describe = async (ds: DataSource, d: Dialect) => {
        const st = d.apply.describeTable(entity.metadata.tableName);
        const described = ((await ds.query(st.sql, st.params)) as Record<string, unknown>[]).map((r) => d.apply.readColumn(r));
        return entity.columns.map((c) => ({ source: c, target: described.find((x) => x.name === c.databaseName)! }));
      };
      const primaryColumns = await describe(primary, pd);
      const targetColumns = mode === 'direct' ? await describe(target, td) : [];
      const keyNames = entity.primaryColumns.map((c) => c.databaseName);
      const upsert = async (ds: DataSource | QueryRunner, d: Dialect, columns: typeof primaryColumns, images: RowImage[]) => {
        const rows = images.map((image) => columns.map(({ source, target: t }) => decodeValue(source.kind, image[source.databaseName], d.name, t.sqlType)));
        const statement = d.apply.upsertRows(entity.metadata.tableName, columns.map((c) => c.target), keyNames, rows);
        await ds.query(statement.sql, statement.params);
      };
      const writer = new OutboxWriter(pd);
      const queryRunner = primary.createQueryRunner();
      try {
        for (let start = 0; start < values.length; start += 2000) {
          const images = values.slice(start, start + 2000).map((value, i) => {
            const image: RowImage = {};
            const withId: Record<string, unknown> = { id: start + i + 1, ...value };
            for (const c of entity.columns) image[c.databaseName] = encodeValue(c.kind, withId[c.propertyPath] ?? null);
            return image;
          });
          await queryRunner.startTransaction();
          await upsert(queryRunner, pd, primaryColumns, images);
          if (mode === 'outbox') {
            await writer.write(
              queryRunner,
              images.map((row) => ({
                entity: entity.name,
                op: 'upsert' as const,
                key: entity.primaryColumns.map((c) => String(row[c.databaseName])),
                row,
                targets: 't',
                capturedAt: Date.now(),
              })),
            );
          }
          await queryRunner.commitTransaction();
          if (mode === 'direct') await upsert(target, td, targetColumns, images);
        }
      } finally {
        await queryRunner.release();
      }
      dw.relay.nudge();
    },
    drained: async (timeoutMs = 180_000) => {
      const queue = dw.queues.get('t');
      const ok = await eventually(async () => {
        await dw.flush();
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
        if (counts.failed > 0) throw new Error(`${counts.failed} apply jobs failed`);
        return (await outboxCount(primary)) === 0 && counts.waiting + counts.active + counts.delayed + counts.prioritized === 0;
      }, timeoutMs, 100);
      if (!ok) throw new Error(`the target's queue did not drain within ${timeoutMs} ms`);
    },
    converged: async (entityNames, timeoutMs = 30_000) => {
      let differences: string[] = [];
      const ok = await eventually(async () => {
        await dw.flush();
        differences = await differencesOf(dw, primary, target, entityNames);
        return differences.length === 0;
      }, timeoutMs, 200);
      return { ok, differences: differences.slice(0, 10) };
    },
    cleanup: async () => {
      await worker?.close();
      await dw.close();
      if (primary.isInitialized) await primary.destroy();
      if (target.isInitialized) await target.destroy();
      await primaryDb.drop();
      await targetDb.drop();
      await removeQueues(prefix);
    },
  };
  return fixture;
}

async function differencesOf(dw: DualWrite, primary: DataSource, target: DataSource, entityNames: string[]): Promise<string[]> {
  const pd = dialectFor(primary, { primary: true });
  const td = dialectFor(target, { target: 't' });
  const out: string[] = [];
  for (const name of entityNames) {
    const entity = dw.entity(name);
    const [p, t] = await Promise.all([snapshot(primary, pd, entity), snapshot(target, td, entity)]);
    for (const [key, row] of p) {
      if (!t.has(key)) out.push(`${name} ${key}: missing`);
      else if (!isDeepStrictEqual(row, t.get(key))) out.push(`${name} ${key}: ${JSON.stringify(t.get(key))} ≠ ${JSON.stringify(row)}`);
    }
    for (const key of t.keys()) if (!p.has(key)) out.push(`${name} ${key}: extra`);
  }
  return out;
}
