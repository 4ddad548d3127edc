/**
 * The bad-input catalogue, part 5: hostile table and column names must WORK,
 * quoted correctly at every step (capture and its read-backs, relay, apply,
 * version ledger, reconcile checksums and repair), on both primary engines
 * and into both target engines. The names hold spaces, single quotes,
 * semicolons, `%`, `?`, `$1`, SQL comment markers, a reserved word, non-ASCII
 * letters, and the other engine's quote character (a backtick on a
 * PostgreSQL primary, a double quote on a MariaDB one: TypeORM cannot create
 * a column holding its own engine's quote character, see DESIGN §5). The key
 * is composite, and one column is binary.
 */
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { DualWrite, reconcile, runMigrations } from '../../../src';
import { Replicate } from '../../../decorators';
import { dialectFor } from '../../../src/dialect/dialect-for';
import { eventually } from '../../support/compare';
import { createDatabase, ENGINES, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { compareTarget, outboxCount } from '../faults/convergence';

jest.setTimeout(120_000);

const TABLE = "Ünï 'tab; le%?";
const OTHER_QUOTE: Record<Engine, string> = { postgres: 'back`tick', mariadb: 'dbl"quote' };

function hostileEntity(engine: Engine) {
  const binary = engine === 'postgres' ? 'bytea' : 'blob';
  @Replicate({ to: ['pg', 'my'] })
  @Entity(TABLE)
  class Hostile {
    @PrimaryColumn({ type: 'int', name: 'my id' }) id!: number;
    @PrimaryColumn({ type: 'varchar', length: 20, name: "kéy'2" }) key2!: string;
    @Column({ type: 'int', name: 'order', nullable: true }) order!: number | null;
    @Column({ type: 'varchar', length: 40, name: 'semi;colon', nullable: true }) semi!: string | null;
    @Column({ type: 'varchar', length: 40, name: "it's", nullable: true }) quote!: string | null;
    @Column({ type: 'varchar', length: 40, name: 'pct%s q?mark $1', nullable: true }) placeholders!: string | null;
    @Column({ type: 'varchar', length: 40, name: 'x -- y /* z', nullable: true }) comment!: string | null;
    @Column({ type: 'varchar', length: 40, name: 'ünïcødé 名前', nullable: true }) unicode!: string | null;
    @Column({ type: 'varchar', length: 40, name: OTHER_QUOTE[engine], nullable: true }) otherQuote!: string | null;
    @Column({ type: binary, name: 'blob data', nullable: true }) data!: Buffer | null;
  }
  return Hostile;
}

/** The table, by explicit DDL through the dialect's own quoting. */
async function createTargetTable(ds: DataSource, engine: Engine, primaryEngine: Engine): Promise<void> {
  const q = (name: string) => dialectFor(ds, { primary: true }).quoteTable(name);
  const binary = engine === 'postgres' ? 'bytea' : 'longblob';
  const columns = [
    `${q('my id')} integer NOT NULL`,
    `${q("kéy'2")} varchar(20) NOT NULL`,
    `${q('order')} integer NULL`,
    ...['semi;colon', "it's", 'pct%s q?mark $1', 'x -- y /* z', 'ünïcødé 名前', OTHER_QUOTE[primaryEngine]].map((c) => `${q(c)} varchar(40) NULL`),
    `${q('blob data')} ${binary} NULL`,
    `PRIMARY KEY (${q('my id')}, ${q("kéy'2")})`,
  ];
  await ds.query(`CREATE TABLE ${q(TABLE)} (${columns.join(', ')})${engine === 'mariadb' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4' : ''}`);
}

const NASTY = ["'; DROP TABLE x; --", 'a?b', '$1 $2', '100%', '`tick`', '"dq"', 'ünï 名前', '/* c */'];

describe.each(ENGINES)('bad input: hostile table and column names (%s primary → postgres and mariadb)', (primaryEngine) => {
  const Hostile = hostileEntity(primaryEngine);
  const prefix = queuePrefix();
  let dbs: TestDatabase[];
  let primary: DataSource;
  let targets: Record<'pg' | 'my', DataSource>;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    const [p, pg, my] = await Promise.all([createDatabase(primaryEngine, 'dwhnp'), createDatabase('postgres', 'dwhnt'), createDatabase('mariadb', 'dwhnt')]);
    dbs = [p, pg, my];
    // TypeORM's synchronize cannot read back a table whose name holds a single quote (it puts names into
    // string literals there), so the primary's table is made by DDL too; TypeORM's writes quote it fine.
    primary = new DataSource({ ...p.options([Hostile]), synchronize: false });
    targets = { pg: new DataSource({ ...pg.options([]), synchronize: false }), my: new DataSource({ ...my.options([]), synchronize: false }) };
    await Promise.all([primary.initialize(), targets.pg.initialize(), targets.my.initialize()]);
    await Promise.all([
      createTargetTable(primary, primaryEngine, primaryEngine),
      createTargetTable(targets.pg, 'postgres', primaryEngine),
      createTargetTable(targets.my, 'mariadb', primaryEngine),
    ]);
    await runMigrations({ primary, targets });
    dw = await DualWrite.start({
      primary,
      targets,
      redis: REDIS,
      queuePrefix: prefix,
      relay: { pollInterval: 200 },
      retry: { attempts: 3, delay: 100, maxDelay: 500, jitter: 0 },
      reconcile: { every: 0, lagWindow: 50 },
      logger: { level: 'silent' },
    });
    worker = await dw.startWorker();
  });

  afterAll(async () => {
    await worker?.close();
    await dw?.close();
    await Promise.all([primary, targets?.pg, targets?.my].map((ds) => (ds?.isInitialized ? ds.destroy() : undefined)));
    await Promise.all((dbs ?? []).map((db) => db.drop()));
    await removeQueues(prefix);
  });

  async function converged(): Promise<{ equal: boolean; differences: string[] }> {
    const differences: string[] = [];
    for (const [name, target] of Object.entries(targets)) differences.push(...(await compareTarget(dw, target, name, ['Hostile'])).differences.map((d) => `${name}: ${d}`));
    return { equal: differences.length === 0, differences };
  }

  it('captures, applies, deletes and reconciles rows of a table whose every name is hostile', async () => {
    const repo = primary.getRepository(Hostile);
    const rows = Array.from({ length: 24 }, (_, i) => ({
      id: i + 1,
      key2: NASTY[i % NASTY.length],
      order: i,
      semi: NASTY[(i + 1) % NASTY.length],
      quote: `it's row ${i}`,
      placeholders: `? ?? $${i} %s`,
      comment: '-- not a comment',
      unicode: `名前 ${i}`,
      otherQuote: NASTY[(i + 4) % NASTY.length],
      data: Buffer.from([0, 39, 34, 96, 59, i]),
    }));
    await primary.transaction((m) => m.save(Hostile, rows));
    // Updates through save (read-back of the loaded entity), upsert (read-back in the transaction) and a remove.
    await repo.save({ ...rows[0], semi: "changed'; --" });
    await repo.upsert([{ ...rows[1], unicode: 'ÜPSERT' }], ['id', 'key2']);
    await repo.remove(await repo.findOneByOrFail({ id: 3, key2: rows[2].key2 }));

    const done = await eventually(async () => (await outboxCount(primary)) === 0 && (await converged()).equal, 30_000, 200);
    expect({ done, ...(await converged()), letters: (await dw.listDeadLetters()).map((l) => l.failure.message) }).toEqual({
      done: true,
      equal: true,
      differences: [],
      letters: [],
    });
    const count = async (ds: DataSource, engine: Engine) => {
      const q = (n: string) => (engine === 'postgres' ? `"${n.replace(/"/g, '""')}"` : `\`${n.replace(/`/g, '``')}\``);
      return Number(((await ds.query(`SELECT COUNT(*) AS n FROM ${q(TABLE)}`)) as Array<{ n: string | number }>)[0].n);
    };
    expect(await count(targets.pg, 'postgres')).toBe(23);
    expect(await count(targets.my, 'mariadb')).toBe(23);

    // The reconciler's checksums and repair quote them too: clean first, then it finds and repairs drift made behind its back.
    const clean = await reconcile(dw, { entity: 'Hostile' });
    expect(clean.map((r) => `${r.target} ${r.status} ${r.rowsCompared}`).sort()).toEqual(['my clean 23', 'pg clean 23']);
    const qpg = (n: string) => `"${n.replace(/"/g, '""')}"`;
    const qmy = (n: string) => `\`${n.replace(/`/g, '``')}\``;
    await targets.pg.query(`UPDATE ${qpg(TABLE)} SET ${qpg('semi;colon')} = 'drifted' WHERE ${qpg('my id')} = 5`);
    await targets.my.query(`DELETE FROM ${qmy(TABLE)} WHERE ${qmy('my id')} = 6`);
    const repaired = await reconcile(dw, { entity: 'Hostile', repair: true });
    expect(repaired.map((r) => `${r.target} ${r.status} missing ${r.missing} changed ${r.changed}`).sort()).toEqual([
      'my repaired missing 1 changed 0',
      'pg repaired missing 0 changed 1',
    ]);
    expect(await eventually(async () => (await outboxCount(primary)) === 0 && (await converged()).equal, 30_000, 200)).toBe(true);
  });
});
