/**
 * Regression test for a bug the chaos soak found: two transactions save()
 * different columns of the same row at the same time. TypeORM loads the row
 * (its "database entity") before the UPDATE, without a lock; the second
 * transaction's UPDATE waits for the first one's row lock and then sets only
 * the column it changed, so the primary row holds BOTH changes. The captured
 * image must be that row: it used to fill the unchanged columns from the
 * stale loaded copy, and the targets ended with a row the primary never held
 * (stale for good, the newer version having won).
 */
import { DualWrite, OUTBOX_TABLE } from '../../../src';
import { dialectFor } from '../../../src/dialect/dialect-for';
import { chaosEntities } from '../../chaos/chaos-entities';
import { ENGINES } from '../../support/databases';
import { primaryFixture, type PrimaryFixture } from '../../support/harness';

jest.setTimeout(60_000);

describe.each(ENGINES)('save() of one row by two concurrent transactions (%s primary)', (engine) => {
  const entities = chaosEntities(true);
  let fixture: PrimaryFixture;
  let dw: DualWrite;

  beforeAll(async () => {
    fixture = await primaryFixture(engine, entities.all, ['pg', 'maria']);
    // No relaying: the outbox keeps every captured change for the assertions.
    dw = await DualWrite.start(fixture.config({ relay: { afterCommit: false } }));
    await dw.relay.idle(); // the start-up pass (leftovers of earlier processes) is over before anything is written
  });

  afterAll(async () => {
    await dw?.close();
    await fixture?.cleanup();
  });

  /** The second transaction is waiting for a row lock on this database (MariaDB: its UPDATE is still running). */
  async function lockWaiters(): Promise<number> {
    const sql =
      engine === 'postgres'
        ? `SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`
        : `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND = 'Query' AND INFO LIKE 'UPDATE%chaos_counter%'`;
    const rows = (await fixture.primary.query(sql, [fixture.db.name])) as Array<{ n: string | number }>;
    return Number(rows[0].n);
  }

  it('captures the row as committed, with the other transaction’s column', async () => {
    const { primary } = fixture;
    const { ChaosCounter } = entities;
    await primary.getRepository(ChaosCounter).save({ name: 'hot', value: '1', writer: 'a' });

    // T1 changes `writer` and holds the row lock.
    const t1 = primary.createQueryRunner();
    await t1.connect();
    await t1.startTransaction();
    await t1.manager.save(ChaosCounter, { name: 'hot', value: '1', writer: 'b' });

    // T2 loads the row (T1 not committed: writer 'a'), changes `value`, and waits for T1's lock in its UPDATE.
    const t2 = primary.transaction((m) => m.save(ChaosCounter, { name: 'hot', value: '3', writer: 'a' }));
    const deadline = Date.now() + 20_000;
    while ((await lockWaiters()) === 0) {
      if (Date.now() > deadline) throw new Error('the second transaction never waited for the row lock');
      await new Promise((r) => setTimeout(r, 20));
    }
    await t1.commitTransaction();
    await t1.release();
    await t2;

    const [row] = (await primary.query(`SELECT value, writer FROM chaos_counter WHERE name = 'hot'`)) as Array<{ value: string; writer: string }>;
    expect({ value: String(row.value), writer: row.writer }).toEqual({ value: '3', writer: 'b' });

    const d = dialectFor(primary, { primary: true });
    const outbox = (await primary.query(`SELECT seq, op, row_image FROM ${d.quoteTable(OUTBOX_TABLE)} WHERE entity = 'ChaosCounter' ORDER BY seq`)) as Array<{
      seq: string;
      op: string;
      row_image: string;
    }>;
    expect(outbox).toHaveLength(3);
    const last = outbox[outbox.length - 1];
    expect(last.op).toBe('upsert');
    expect(JSON.parse(last.row_image)).toEqual({ name: 'hot', value: '3', writer: 'b' });
  });
});
