/**
 * A MySQL/MariaDB target's applier runs its jobs on connections of its own
 * (multiple statements, two round trips a job). Proves: the server closing
 * those connections while idle neither ends the process (an unhandled
 * 'error' event would) nor loses the next job (at most one transient
 * failure, which the job's retry covers).
 */
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { Replicate } from '../../../decorators';
import { runMigrations } from '../../../migrations/run-migrations';
import { ChangeApplier } from '../../../src/apply/change-applier';
import { dialectFor } from '../../../src/dialect/dialect-for';
import { classifyError } from '../../../src/errors/classify-error';
import { resolveReplicatedEntities } from '../../../src/metadata/replicated-entity';
import { createLogger } from '../../../src/observability/logger';
import type { Change } from '../../../src/outbox/change';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';

@Replicate({ to: ['t'] })
@Entity('own_item')
class Item {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'varchar', length: 20 }) name!: string;
}

const up = (id: number, v: number, name: string): Change => ({
  id: `Item#${v}`, entity: 'Item', op: 'upsert', key: [String(id)], version: String(v), row: { id, name }, capturedAt: 0,
});

describe('the applier of a MariaDB target on connections of its own', () => {
  let db: TestDatabase;
  let target: DataSource;
  let applier: ChangeApplier;

  beforeAll(async () => {
    db = await createDatabase('mariadb', 'dwown');
    target = dataSource(db, [Item]);
    await target.initialize();
    await runMigrations({ primary: target, targets: { t: target } });
    applier = new ChangeApplier('t', target, dialectFor(target, { target: 't' }), resolveReplicatedEntities(target, ['t']), createLogger({ level: 'silent' }), 1);
  });

  afterAll(async () => {
    await applier?.close();
    if (target?.isInitialized) await target.destroy();
    await db?.drop();
  });

  /** The idle sessions on the test database other than the one asking: the pools' connections. */
  async function idleSessions(): Promise<string> {
    const rows = (await target.query(
      `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() AND COMMAND = 'Sleep' ORDER BY ID DESC`,
      [db.name],
    )) as Array<{ id: string | number }>;
    return rows.map((r) => String(r.id)).join(',');
  }

  it('survives the server closing its idle connections, and applies the next job', async () => {
    expect(await applier.apply([up(1, 1, 'one'), up(2, 2, 'two')])).toEqual({ applied: 2, skipped: 0 });
    const before = await idleSessions();
    expect(before).not.toBe('');

    // The server ends every idle session of this database but the test's own: the applier's among them.
    for (const id of before.split(',')) await target.query(`KILL ${Number(id)}`).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));

    let outcome;
    try {
      outcome = await applier.apply([up(1, 3, 'one again'), up(3, 4, 'three')]);
    } catch (error) {
      // The pool may hand out the killed connection once; the job's retry covers that.
      expect(classifyError(error)).toMatchObject({ class: 'transient' });
      outcome = await applier.apply([up(1, 3, 'one again'), up(3, 4, 'three')]);
    }
    expect(outcome).toEqual({ applied: 2, skipped: 0 });
    const rows = (await target.query('SELECT id, name FROM own_item ORDER BY id')) as Array<{ id: number; name: string }>;
    expect(rows).toEqual([
      { id: 1, name: 'one again' },
      { id: 2, name: 'two' },
      { id: 3, name: 'three' },
    ]);
  });
});
