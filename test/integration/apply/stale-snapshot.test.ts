import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { Replicate } from '../../../decorators';
import { runMigrations } from '../../../migrations/run-migrations';
import { ChangeApplier } from '../../../src/apply/change-applier';
import { dialectFor } from '../../../src/dialect/dialect-for';
import { resolveReplicatedEntities } from '../../../src/metadata/replicated-entity';
import { createLogger } from '../../../src/observability/logger';
import type { Change } from '../../../src/outbox/change';
import { createDatabase, dataSource, ENGINES, type TestDatabase } from '../../support/databases';

@Replicate({ to: ['t'] })
@Entity('snap_alpha')
class Alpha {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'varchar', length: 20 }) name!: string;
}

@Replicate({ to: ['t'] })
@Entity('snap_beta')
class Beta {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'varchar', length: 20 }) name!: string;
}

const up = (entity: string, id: number, v: number, name: string): Change => ({
  id: `${entity}#${v}`, entity, op: 'upsert', key: [String(id)], version: String(v), row: { id, name }, capturedAt: 0,
});

/**
 * Regression: on MariaDB a plain (non-locking) read of the ledger saw the
 * transaction's older snapshot, so a stale copy in a batch that first waited
 * on another entity's lock overwrote a newer row committed meanwhile.
 */
describe.each(ENGINES)('a stale change in a multi-entity batch on %s', (engine) => {
  let db: TestDatabase;
  const sources: DataSource[] = [];

  const appliers: ChangeApplier[] = [];

  afterAll(async () => {
    for (const a of appliers) await a.close();
    for (const s of sources) if (s.isInitialized) await s.destroy();
    await db?.drop();
  });

  it('never overwrites a newer version committed while the batch waited on a lock', async () => {
    db = await createDatabase(engine, 'dwsnap');
    const admin = dataSource(db, [Alpha, Beta]);
    await admin.initialize();
    sources.push(admin);
    await runMigrations({ primary: admin, targets: { t: admin } });
    const entities = resolveReplicatedEntities(admin, ['t']);
    const applier = async () => {
      const s = dataSource(db, [Alpha, Beta]);
      await s.initialize();
      sources.push(s);
      const made = new ChangeApplier('t', s, dialectFor(s, { target: 't' }), entities, createLogger({ level: 'silent' }));
      appliers.push(made);
      return made;
    };
    const [a0, a1, a2] = [await applier(), await applier(), await applier()];
    await a0.apply([up('Beta', 1, 5, 'v5'), up('Alpha', 2, 1, 'warm')]);

    const blocker = admin.createQueryRunner();
    await blocker.connect();
    await blocker.startTransaction();
    const q = engine === 'postgres' ? '$1' : '?';
    await blocker.query(`INSERT INTO snap_alpha (id, name) VALUES (1, ${q})`, ['x']);
    const stale = a1.apply([up('Alpha', 1, 10, 'a10'), up('Beta', 1, 5, 'v5')]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await a2.apply([up('Beta', 1, 7, 'v7')])).toEqual({ applied: 1, skipped: 0 });
    await blocker.rollbackTransaction();
    await blocker.release();

    expect(await stale).toEqual({ applied: 1, skipped: 1 });
    const beta = await admin.query('SELECT name FROM snap_beta WHERE id = 1');
    expect(beta[0].name).toBe('v7');
  });
});
