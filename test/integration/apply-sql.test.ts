import type { DataSource, QueryRunner } from 'typeorm';
import { CreateDualWriteLedger1764400000001 } from '../../migrations/1764400000001-CreateDualWriteLedger';
import { LEDGER_TABLE } from '../../migrations/table-names';
import { decodeValue } from '../../src/apply/value-decoder';
import type { Dialect, LedgerEntry, TargetColumn } from '../../src/dialect/dialect';
import { mysqlDialect } from '../../src/dialect/mysql/mysql-dialect';
import { postgresDialect } from '../../src/dialect/postgres/postgres-dialect';
import type { ValueKind } from '../../src/metadata/value-kind';
import type { WireValue } from '../../src/outbox/change';
import { encodeValue } from '../../src/outbox/value-codec';
import { createDatabase, dataSource, ENGINES, type Engine, type TestDatabase } from '../support/databases';

/**
 * One column of the type matrix: its DDL per engine (null: not on that
 * engine) and the values of four row images as an entity would hold them.
 * Rows 0-2 are inserted; row 3 is a later version of row 0's key.
 * Floats are values whose shortest decimal text is exact (1.5, 0.1, …):
 * MariaDB's text protocol can change the last digit of a full-precision
 * double (DESIGN §5), which is the reconciler's tolerance to handle.
 */
interface ColumnSpec {
  name: string;
  kind: ValueKind;
  postgres: string | null;
  mariadb: string | null;
  values: unknown[];
}

const T1 = new Date('2024-03-01T12:34:56.789Z');
const T2 = new Date('1999-12-31T23:59:59.001Z');
const T3 = new Date('2020-01-01T00:00:00.000Z');

const MATRIX: ColumnSpec[] = [
  { name: 'id', kind: 'integer', postgres: 'integer NOT NULL', mariadb: 'int NOT NULL', values: [1, 1, 2, 1] },
  { name: 'my col', kind: 'string', postgres: 'varchar(20) NOT NULL', mariadb: 'varchar(20) NOT NULL', values: ['a', 'A', 'a', 'a'] },
  { name: 'big', kind: 'bigint', postgres: 'bigint', mariadb: 'bigint', values: ['9007199254740993', '-42', null, '0'] },
  { name: 'amount', kind: 'decimal', postgres: 'numeric(12,4)', mariadb: 'decimal(12,4)', values: ['12345678.1234', '0.1000', null, '-1.0000'] },
  { name: 'ratio', kind: 'float', postgres: 'double precision', mariadb: 'double', values: [1.5, 0.1, null, -2.25] },
  { name: 'small float', kind: 'float', postgres: 'real', mariadb: 'float', values: [0.5, 0.1, null, 3] },
  { name: 'label', kind: 'string', postgres: 'varchar(40)', mariadb: 'varchar(40)', values: [`it's "q" \\ {a,b}`, '', null, 'NULL'] },
  { name: 'body', kind: 'string', postgres: 'text', mariadb: 'text', values: ['línea\nnext ✓ 😀\t', ' x ', null, 'changed'] },
  { name: 'flag', kind: 'boolean', postgres: 'boolean', mariadb: 'boolean', values: [true, false, null, false] },
  { name: 'day', kind: 'date', postgres: 'date', mariadb: 'date', values: ['2024-02-29', '1969-07-20', null, '2000-01-01'] },
  { name: 'at time', kind: 'time', postgres: 'time', mariadb: 'time', values: ['12:34:56', '00:00:00', null, '23:59:59'] },
  { name: 'stamp', kind: 'timestamp', postgres: 'timestamp(3)', mariadb: 'datetime(3)', values: [T1, T2, null, T2] },
  { name: 'stamptz', kind: 'timestamp', postgres: 'timestamptz', mariadb: 'timestamp(3) NULL DEFAULT NULL', values: [T1, T2, null, T3] },
  // Unchanged between row 0 and row 3: MariaDB's ON UPDATE would overwrite it unless assigned explicitly.
  {
    name: 'updated',
    kind: 'timestamp',
    postgres: 'timestamp(3)',
    mariadb: 'datetime(3) NULL DEFAULT NULL ON UPDATE CURRENT_TIMESTAMP(3)',
    values: [T3, T3, null, T3],
  },
  { name: 'doc', kind: 'json', postgres: 'json', mariadb: 'json', values: [{ a: [1, 'x', null], b: { c: true } }, [1, 2.5, 'three'], null, { a: 0.1 }] },
  { name: 'docb', kind: 'json', postgres: 'jsonb', mariadb: 'longtext', values: [{ z: 1, a: [] }, {}, null, { k: "it's \"q\"" }] },
  {
    name: 'uid',
    kind: 'uuid',
    postgres: 'uuid',
    mariadb: 'uuid',
    values: ['6f1c2a4e-9b7d-4c3a-8e2f-1a2b3c4d5e6f', '00000000-0000-0000-0000-000000000000', null, 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
  },
  { name: 'mood', kind: 'string', postgres: '"Mood kind"', mariadb: "enum('happy','so-so','it''s ok')", values: ['happy', "it's ok", null, 'so-so'] },
  { name: 'order', kind: 'integer', postgres: 'integer', mariadb: 'int', values: [7, -1, null, 8] },
  { name: 'group', kind: 'string', postgres: 'text', mariadb: 'text', values: ['g', 'h', null, 'i'] },
  { name: '50% off', kind: 'decimal', postgres: 'numeric(5,2)', mariadb: 'decimal(5,2)', values: ['50.00', '0.05', null, '99.99'] },
  { name: 'bin', kind: 'binary', postgres: 'bytea', mariadb: 'blob', values: [Buffer.from([0, 1, 2, 255, 92, 34, 39]), Buffer.alloc(0), null, Buffer.from('x')] },
  // Full width: PostgreSQL pads char(n) on read, MariaDB strips; neither is the apply's business.
  { name: 'fixed', kind: 'string', postgres: 'char(5)', mariadb: 'char(5)', values: ['abcde', 'vwxyz', null, 'fghij'] },
  { name: 'tags', kind: 'other', postgres: 'text[]', mariadb: null, values: [['a', 'b,c', '{x}', null, '"q"'], [], null, ['z']] },
  { name: 'nums', kind: 'other', postgres: 'integer[]', mariadb: null, values: [[1, 2, 3], [], null, [4]] },
];

const KEYS = ['id', 'my col'];
const TABLE = `group's "items" %`;

describe.each(ENGINES)('apply SQL on %s', (engine: Engine) => {
  const dialect: Dialect = engine === 'postgres' ? postgresDialect : mysqlDialect;
  const target = dialect.name;
  const specs = MATRIX.filter((c) => c[engine] !== null);
  const q = (name: string) => dialect.quoteIdentifier(name);
  let db: TestDatabase;
  let ds: DataSource;
  let qr: QueryRunner;

  beforeAll(async () => {
    db = await createDatabase(engine, 'dw_apply');
    ds = dataSource(db);
    await ds.initialize();
    qr = ds.createQueryRunner();
    if (engine === 'postgres') await qr.query(`CREATE TYPE "Mood kind" AS ENUM ('happy', 'so-so', 'it''s ok')`);
    const columns = specs.map((c) => `${q(c.name)} ${c[engine]}`).join(', ');
    const suffix = engine === 'mariadb' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin' : '';
    await qr.query(`CREATE TABLE ${dialect.quoteTable(TABLE)} (${columns}, PRIMARY KEY (${KEYS.map(q).join(', ')}))${suffix}`);
    await qr.query(`CREATE TABLE ${q('group')} (${q('order')} bigint NOT NULL PRIMARY KEY, note varchar(10) NULL)`);
    await qr.query(`CREATE TABLE ${q('pairs')} (a int NOT NULL, b varchar(10) NOT NULL, PRIMARY KEY (a, b))`);
    await new CreateDualWriteLedger1764400000001().up(qr);
  });

  afterAll(async () => {
    await qr?.release();
    await ds?.destroy();
    await db?.drop();
  });

  async function run(st: { sql: string; params: unknown[] }, runner = qr): Promise<any> {
    return runner.query(st.sql, st.params);
  }

  async function describeColumns(table: string): Promise<TargetColumn[]> {
    const rows: Record<string, unknown>[] = await run(dialect.apply.describeTable(table));
    return rows.map((r) => dialect.apply.readColumn(r));
  }

  function wireRow(i: number): WireValue[] {
    return specs.map((c) => encodeValue(c.kind, c.values[i]));
  }

  function decodeRow(wire: WireValue[], columns: TargetColumn[]): unknown[] {
    return wire.map((w, j) => decodeValue(specs[j].kind, w, target, columns[j].sqlType));
  }

  /** The table's rows, read raw and encoded again, by key. */
  async function readBack(): Promise<Map<string, WireValue[]>> {
    const rows: Record<string, unknown>[] = await qr.query(`SELECT * FROM ${dialect.quoteTable(TABLE)}`);
    return new Map(rows.map((r) => [`${r['id']}|${r['my col']}`, specs.map((c) => encodeValue(c.kind, r[c.name], engine === 'mariadb'))]));
  }

  it('describes the table in position order with exact types, and nothing for a missing table', async () => {
    const columns = await describeColumns(TABLE);
    expect(columns.map((c) => c.name)).toEqual(specs.map((c) => c.name));
    const byName = new Map(columns.map((c) => [c.name, c]));
    expect(byName.get('id')?.nullable).toBe(false);
    expect(byName.get('big')?.nullable).toBe(true);
    expect(byName.get('amount')?.sqlType).toBe(engine === 'postgres' ? 'numeric(12,4)' : 'decimal(12,4)');
    expect(byName.get('stamptz')?.sqlType).toBe(engine === 'postgres' ? 'timestamp with time zone' : 'timestamp(3)');
    if (engine === 'postgres') expect(byName.get('mood')?.sqlType).toBe('"Mood kind"');
    const qualified = engine === 'postgres' ? `public.${TABLE}` : `${db.name}.${TABLE}`;
    expect(await describeColumns(qualified)).toEqual(columns);
    expect(await describeColumns('no_such_table')).toEqual([]);
  });

  // Wall-clock columns (timestamp, DATETIME) store the process's local time,
  // like TypeORM. Jest cannot change the zone in-process (its process.env is
  // a copy), so run this file under another zone too, e.g.
  // TZ=Asia/Kolkata npx jest test/integration/apply-sql.test.ts
  it(`round-trips every type exactly (TZ=${Intl.DateTimeFormat().resolvedOptions().timeZone})`, async () => {
    const columns = await describeColumns(TABLE);
    const wire = [0, 1, 2, 3].map(wireRow);
    await run(dialect.apply.upsertRows(TABLE, columns, KEYS, wire.slice(0, 3).map((w) => decodeRow(w, columns))));
    expect(await readBack()).toEqual(
      new Map([
        ['1|a', wire[0]],
        ['1|A', wire[1]],
        ['2|a', wire[2]],
      ]),
    );

    // A later version of row 0, delivered twice: updates in place, idempotent.
    for (let i = 0; i < 2; i++) await run(dialect.apply.upsertRows(TABLE, columns, KEYS, [decodeRow(wire[3], columns)]));
    const after = await readBack();
    expect(after.get('1|a')).toEqual(wire[3]);
    expect(after.get('1|A')).toEqual(wire[1]);
    expect(after.size).toBe(3);

    const keyColumns = columns.filter((c) => KEYS.includes(c.name));
    await run(dialect.apply.deleteRows(TABLE, keyColumns, [[1, 'A'], [2, 'a'], [9, 'missing']]));
    expect([...(await readBack()).keys()]).toEqual(['1|a']);
  });

  it('deletes by a single reserved-word key and upserts a table made only of key columns', async () => {
    const group = await describeColumns('group');
    await run(dialect.apply.upsertRows('group', group, ['order'], [['1', 'x'], ['2', null], ['3', 'z']]));
    await run(dialect.apply.deleteRows('group', group.slice(0, 1), [['1'], ['3']]));
    const left: Record<string, unknown>[] = await qr.query(`SELECT ${q('order')} AS k, note FROM ${q('group')}`);
    expect(left.map((r) => [String(r.k), r.note])).toEqual([['2', null]]);

    const pairs = await describeColumns('pairs');
    const rows = [[1, 'x'], [1, 'y']];
    await run(dialect.apply.upsertRows('pairs', pairs, ['a', 'b'], rows));
    await run(dialect.apply.upsertRows('pairs', pairs, ['a', 'b'], rows));
    const count: Record<string, unknown>[] = await qr.query('SELECT COUNT(*) AS n FROM pairs');
    expect(Number(count[0].n)).toBe(2);
  });

  it('rejects a value its column cannot hold rather than storing a truncated one', async () => {
    const columns = await describeColumns(TABLE);
    const row = decodeRow(wireRow(2), columns);
    row[1] = 'x'.repeat(21); // `my col` is varchar(20)
    await expect(run(dialect.apply.upsertRows(TABLE, columns, KEYS, [row]))).rejects.toThrow();
    expect((await readBack()).has(`2|${'x'.repeat(20)}`)).toBe(false);
  });

  describe('version ledger', () => {
    const ledger = q(LEDGER_TABLE);
    const versionText = engine === 'postgres' ? 'version::text' : 'CAST(version AS CHAR)';

    /** Applies entries; returns `entity/key` of each row now at the given version. */
    async function apply(entries: LedgerEntry[], runner = qr): Promise<string[]> {
      const result = await run(dialect.apply.ledgerUpsert(LEDGER_TABLE, entries), runner);
      if (engine === 'postgres') return (result as { entity: string; key: string }[]).map((r) => `${r.entity}/${r.key}`);
      // MySQL cannot tell a duplicate of the current version from a win: both read back equal.
      const won: string[] = [];
      for (const entity of [...new Set(entries.map((e) => e.entity))]) {
        const mine = entries.filter((e) => e.entity === entity);
        const read = dialect.apply.ledgerRead?.(LEDGER_TABLE, entity, mine.map((e) => e.key));
        if (!read) throw new Error('the MySQL dialect must implement ledgerRead');
        const rows: { key: string; version: string }[] = await run(read, runner);
        for (const e of mine) if (rows.some((r) => r.key === e.key && r.version === e.version)) won.push(`${entity}/${e.key}`);
      }
      return won;
    }

    async function state(): Promise<string[]> {
      const rows: Record<string, unknown>[] = await qr.query(
        `SELECT entity, row_key, ${versionText} AS v, deleted FROM ${ledger} ORDER BY entity, row_key`,
      );
      return rows.map((r) => `${r.entity}/${r.row_key}@${r.v}${r.deleted === true || Number(r.deleted) === 1 ? ' deleted' : ''}`);
    }

    it('a newer version wins; an older or equal one changes nothing', async () => {
      expect(
        await apply([
          { entity: 'A', key: '1', version: '5', deleted: false },
          { entity: 'A', key: '2', version: '7', deleted: true },
          { entity: 'B', key: '1', version: '9007199254740993', deleted: false },
        ]),
      ).toEqual(['A/1', 'A/2', 'B/1']);

      const won = await apply([
        { entity: 'A', key: '1', version: '5', deleted: true },
        { entity: 'A', key: '2', version: '6', deleted: false },
        { entity: 'B', key: '1', version: '9007199254740994', deleted: true },
      ]);
      if (engine === 'postgres') expect(won).toEqual(['B/1']);
      else expect(won).toEqual(['A/1', 'B/1']);
      // The losers' `deleted` stayed: on MySQL this is what assigning version last buys.
      expect(await state()).toEqual(['A/1@5', 'A/2@7 deleted', 'B/1@9007199254740994 deleted']);
    });

    it('holds a key locked until commit, then gates the waiting writer', async () => {
      const first = ds.createQueryRunner();
      const second = ds.createQueryRunner();
      try {
        await first.startTransaction();
        await second.startTransaction();
        expect(await apply([{ entity: 'C', key: 'k', version: '9', deleted: false }], first)).toEqual(['C/k']);
        let settled = false;
        const waiting = apply([{ entity: 'C', key: 'k', version: '8', deleted: true }], second).finally(() => (settled = true));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(settled).toBe(false);
        await first.commitTransaction();
        expect(await waiting).toEqual([]);
        await second.commitTransaction();
        expect((await state()).filter((s) => s.startsWith('C/'))).toEqual(['C/k@9']);
      } finally {
        for (const r of [first, second]) {
          if (r.isTransactionActive) await r.rollbackTransaction();
          await r.release();
        }
      }
    });

    it('purges only tombstones older than the retention', async () => {
      await qr.query(`DELETE FROM ${ledger}`);
      await apply([
        { entity: 'P', key: 'live-old', version: '1', deleted: false },
        { entity: 'P', key: 'tomb-new', version: '1', deleted: true },
        { entity: 'P', key: 'tomb-old', version: '1', deleted: true },
      ]);
      const twoHoursAgo = engine === 'postgres' ? "now() - interval '2 hours'" : 'CURRENT_TIMESTAMP(3) - INTERVAL 2 HOUR';
      await qr.query(`UPDATE ${ledger} SET updated_at = ${twoHoursAgo} WHERE row_key IN ('live-old', 'tomb-old')`);
      await run(dialect.apply.purgeTombstones(LEDGER_TABLE, 3600));
      expect(await state()).toEqual(['P/live-old@1', 'P/tomb-new@1 deleted']);
    });
  });
});
