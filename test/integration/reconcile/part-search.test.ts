import type { DataSource } from 'typeorm';
import type { ChecksumColumn, ChecksumSql, ChecksumTable, ColumnFacts } from '../../../src/dialect/checksum-sql';
import { mysqlChecksumSql } from '../../../src/dialect/mysql/mysql-checksum-sql';
import { postgresChecksumSql } from '../../../src/dialect/postgres/postgres-checksum-sql';
import { createDatabase, dataSource, ENGINES, type Engine, type TestDatabase } from '../../support/databases';

const facts = (family: ColumnFacts['family']): ColumnFacts => ({
  name: 'id', sqlType: '', nullable: false, family, scale: 0, fraction: 0, instant: false, binaryOrder: true,
});
const id = (family: ColumnFacts['family']): ChecksumColumn => ({ facts: facts(family), norm: { as: 'integer' }, nullBit: false });

/**
 * On PostgreSQL, a table keyed by one integer column finds each row's part
 * by binary search (width_bucket), every other key by a CASE tree; MySQL and
 * MariaDB sum each part's key range in a query of its own. All must put every
 * row in the same part: `after < key ≤ split`, so a key equal to a split
 * belongs to the part below it.
 */
describe.each(ENGINES)('parts of a chunk on %s', (engine: Engine) => {
  let db: TestDatabase;
  let ds: DataSource;
  const sql: ChecksumSql = engine === 'postgres' ? postgresChecksumSql : mysqlChecksumSql;

  beforeAll(async () => {
    db = await createDatabase(engine, 'dwparts');
    ds = dataSource(db);
    await ds.initialize();
    await ds.query('CREATE TABLE parts_t (id bigint PRIMARY KEY)');
    const keys = ['-9000000000', '-5', '-1', '0', '1', '2', '9', '10', '11', '99', '100', '101', '5000000000', '9223372036854775806'];
    await ds.query(`INSERT INTO parts_t (id) VALUES ${keys.map((k) => `(${k})`).join(', ')}`);
  });

  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  it('puts every row in the same part whichever way the part is found, keys equal to a split in the part below', async () => {
    const splits = [[-5], [0], [10], [100], [5_000_000_000]].map(([k]) => [engine === 'postgres' ? String(k) : k]);
    const parts = async (table: ChecksumTable) => {
      const st = sql.checksumParts(table, {}, splits);
      const rows = (await ds.query(st.sql, st.params)) as Array<{ part: unknown; n: unknown }>;
      return { sql: st.sql, counts: Object.fromEntries(rows.map((r) => [Number(r.part), Number(r.n)])) };
    };
    const searched = await parts({ table: 'parts_t', keys: [id('integer')], columns: [id('integer')] });
    // The same key described as a decimal: not eligible for the binary search.
    const cased = await parts({ table: 'parts_t', keys: [id('decimal')], columns: [id('integer')] });
    // PostgreSQL groups by the part (binary search or CASE tree); MySQL/MariaDB sums each part's range on its own.
    expect(searched.sql).toMatch(engine === 'postgres' ? /width_bucket/ : /UNION ALL/);
    expect(cased.sql).toMatch(engine === 'postgres' ? /CASE WHEN/ : /UNION ALL/);
    // ≤ -5: -9e9, -5 | ≤ 0: -1, 0 | ≤ 10: 1, 2, 9, 10 | ≤ 100: 11, 99, 100 | ≤ 5e9: 101, 5e9 | above: the largest
    expect(searched.counts).toEqual({ 0: 2, 1: 2, 2: 4, 3: 3, 4: 2, 5: 1 });
    expect(cased.counts).toEqual(searched.counts);
  });
});
