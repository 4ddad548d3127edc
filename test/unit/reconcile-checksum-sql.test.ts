import { integerThresholds, type ChecksumColumn, type ChecksumTable, type ColumnFacts, type Normalization } from '../../src/dialect/checksum-sql';
import { mysqlChecksumSql } from '../../src/dialect/mysql/mysql-checksum-sql';
import { postgresChecksumSql } from '../../src/dialect/postgres/postgres-checksum-sql';

const facts = (name: string, family: ColumnFacts['family'], extra: Partial<ColumnFacts> = {}): ColumnFacts => ({
  name,
  sqlType: '',
  nullable: false,
  family,
  scale: null,
  fraction: 0,
  instant: false,
  binaryOrder: true,
  ...extra,
});
const column = (f: ColumnFacts, norm: Normalization, nullBit = false): ChecksumColumn => ({ facts: f, norm, nullBit });

// A composite key whose string part is not in a byte-order collation, and a nullable decimal.
const code = column(facts('code', 'string', { binaryOrder: false }), { as: 'string' });
const line = column(facts('line', 'integer'), { as: 'integer' });
const amount = column(facts('amount', 'decimal', { nullable: true, scale: 2 }), { as: 'decimal', scale: 2 }, true);
const lines: ChecksumTable = { table: 'shop.lines', keys: [code, line], columns: [code, line, amount] };

describe('postgresChecksumSql', () => {
  const pg = postgresChecksumSql;
  const hash =
    `('x' || substr(md5(concat_ws(',', concat(("amount" IS NULL)::int), length(("code")::text) || ':' || ("code")::text, ` +
    `("line")::text, ("amount")::text)), 1, 15))::bit(60)::bigint`;

  it('checksums a key range as COUNT and the exact SUM of 60-bit md5 slices, keys compared in byte order', () => {
    expect(pg.checksum(lines, { after: ['a', 1], upTo: ['b', 2] })).toEqual({
      sql:
        `SELECT count(*)::text AS n, COALESCE(sum(${hash}), 0)::text AS s FROM "shop"."lines" ` +
        `WHERE ("code" COLLATE "C", "line") > ($1, $2) AND ("code" COLLATE "C", "line") <= ($3, $4)`,
      params: ['a', 1, 'b', 2],
    });
  });

  it('finds the ends of a chunk\'s parts in one read of the key index', () => {
    expect(pg.keysAt(lines, { after: ['a', 1] }, [500, 1000])).toEqual({
      sql:
        'SELECT k0, k1, rn FROM (SELECT k0, k1, row_number() OVER (ORDER BY k0 COLLATE "C", k1) AS rn FROM ' +
        '(SELECT "code" AS k0, "line" AS k1 FROM "shop"."lines" WHERE ("code" COLLATE "C", "line") > ($1, $2) ' +
        'ORDER BY "code" COLLATE "C", "line" LIMIT $3) t) x WHERE rn IN ($4, $5) ORDER BY rn',
      params: ['a', 1, 1000, 500, 1000],
    });
  });

  it('rounds a decimal only when its column has another scale than the comparison', () => {
    const wider = column(facts('amount', 'decimal', { scale: 4 }), { as: 'decimal', scale: 2 });
    expect(pg.checksum({ table: 't', keys: [line], columns: [line, wider] }, {}).sql).toContain('round(("amount")::numeric, 2)::text');
  });

  it('splits a range into parts with a balanced CASE tree, in one GROUP BY scan', () => {
    const st = pg.checksumParts(lines, {}, [['m', 5], ['t', 1], ['x', 9]]);
    expect(st.sql).toBe(
      'SELECT CASE WHEN ("code" COLLATE "C", "line") <= ($3, $4) THEN CASE WHEN ("code" COLLATE "C", "line") <= ($1, $2) THEN 0 ELSE 1 END ' +
        'ELSE CASE WHEN ("code" COLLATE "C", "line") <= ($5, $6) THEN 2 ELSE 3 END END AS part, ' +
        `count(*)::text AS n, sum(${hash})::text AS s FROM "shop"."lines"  GROUP BY 1`,
    );
    expect(st.params).toEqual(['m', 5, 't', 1, 'x', 9]);
  });

  it('locks a page of rows in key order for backfill', () => {
    expect(pg.page(lines, { after: ['a', 1] }, lines.columns, { limit: 500, lock: true })).toEqual({
      sql:
        'SELECT "code" AS k0, "line" AS k1, "code" AS v0, "line" AS v1, "amount" AS v2 FROM "shop"."lines" ' +
        'WHERE ("code" COLLATE "C", "line") > ($1, $2) ORDER BY "code" COLLATE "C", "line" LIMIT $3 FOR UPDATE',
      params: ['a', 1, 500],
    });
  });

  it('uses a key column as it is when its collation already sorts bytes', () => {
    const binary: ChecksumTable = { table: 't', keys: [column(facts('id', 'string'), { as: 'string' })], columns: [] };
    expect(pg.keyAt(binary, { after: ['x'] }, 9).sql).toBe('SELECT "id" AS k0 FROM "t" WHERE "id" > $1 ORDER BY "id" LIMIT 1 OFFSET $2');
  });

  it('reads collations from the catalog: only byte-order ones keep the index order', () => {
    const row = (collation: unknown, db: unknown) => ({ name: 'c', sql_type: 'character varying(20)', nullable: false, type_name: 'varchar', category: 'S', collation, db });
    expect(pg.readColumn(row({ collname: 'default' }, { datcollate: 'C.UTF-8', datlocprovider: 'c' })).binaryOrder).toBe(true);
    expect(pg.readColumn(row({ collname: 'default' }, { datcollate: 'en_US.UTF-8', datlocprovider: 'c' })).binaryOrder).toBe(false);
    expect(pg.readColumn(row({ collname: 'C', collprovider: 'c', collcollate: 'C' }, {})).binaryOrder).toBe(true);
    expect(pg.readColumn(row({ collname: 'und-x-icu', collprovider: 'i', collcollate: null }, {})).binaryOrder).toBe(false);
    const ts = pg.readColumn({ name: 't', sql_type: 'timestamp(3) with time zone', nullable: true, type_name: 'timestamptz', category: 'D' });
    expect(ts).toMatchObject({ family: 'timestamp', fraction: 3, instant: true, nullable: true });
    expect(pg.readColumn({ name: 'n', sql_type: 'numeric', nullable: false, type_name: 'numeric', category: 'N' })).toMatchObject({ family: 'decimal', scale: null });
  });
});

describe('mysqlChecksumSql', () => {
  const my = mysqlChecksumSql;
  const hash =
    "CAST(CONV(SUBSTR(MD5(CONCAT_WS(',', CONCAT(`amount` IS NULL), CONCAT(CHAR_LENGTH((`code` COLLATE utf8mb4_bin)), ':', " +
    "(`code` COLLATE utf8mb4_bin)), `line`, `amount`)), 1, 15), 16, 10) AS UNSIGNED)";

  it('spells composite key ranges out so that the primary key serves them, comparing strings as bytes', () => {
    expect(my.checksum(lines, { after: ['a', 1], upTo: ['b', 2] })).toEqual({
      sql:
        `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(SUM(${hash}), 0) AS CHAR) AS s FROM \`shop\`.\`lines\` ` +
        'WHERE (CAST(`code` AS BINARY) > ? OR (CAST(`code` AS BINARY) = ? AND `line` > ?)) ' +
        'AND (CAST(`code` AS BINARY) < ? OR (CAST(`code` AS BINARY) = ? AND `line` <= ?))',
      params: ['a', 'a', 1, 'b', 'b', 2],
    });
  });

  it('finds the ends of a chunk\'s parts in one read of the primary key', () => {
    expect(my.keysAt(lines, { after: ['a', 1] }, [500, 1000])).toEqual({
      sql:
        'SELECT k0, k1, rn FROM (SELECT k0, k1, ROW_NUMBER() OVER (ORDER BY CAST(k0 AS BINARY), k1) AS rn FROM ' +
        '(SELECT `code` AS k0, `line` AS k1 FROM `shop`.`lines` WHERE (CAST(`code` AS BINARY) > ? OR (CAST(`code` AS BINARY) = ? AND `line` > ?)) ' +
        'ORDER BY CAST(`code` AS BINARY), `line` LIMIT ?) t) x WHERE rn IN (?, ?) ORDER BY rn',
      params: ['a', 'a', 1, 1000, 500, 1000],
    });
  });

  it('converts only strings that are not UTF-8 already, and puts every string in one collation', () => {
    const latin = column(facts('name', 'string', { utf8: false }), { as: 'string' });
    const sql = my.checksum({ table: 't', keys: [line], columns: [line, latin, { ...code, lastString: true }] }, {}).sql;
    expect(sql).toContain("CONCAT(CHAR_LENGTH((CONVERT(`name` USING utf8mb4) COLLATE utf8mb4_bin)), ':', (CONVERT(`name` USING utf8mb4) COLLATE utf8mb4_bin))");
    // The last string needs no length prefix: nothing follows it.
    expect(sql).toContain(", (`code` COLLATE utf8mb4_bin))");
  });

  it('reads its column types: tinyint(1) is a boolean, TIMESTAMP an instant, _bin collations sort bytes', () => {
    const row = (data_type: string, sql_type: string, extra: Record<string, unknown> = {}) => ({ name: 'c', sql_type, data_type, nullable: 'YES', ...extra });
    expect(my.readColumn(row('tinyint', 'tinyint(1)'))).toMatchObject({ family: 'boolean', nullable: true });
    expect(my.readColumn(row('timestamp', 'timestamp(3)', { fraction: 3 }))).toMatchObject({ family: 'timestamp', instant: true, fraction: 3 });
    expect(my.readColumn(row('datetime', 'datetime', { fraction: 0 }))).toMatchObject({ family: 'timestamp', instant: false, fraction: 0 });
    expect(my.readColumn(row('varchar', 'varchar(20)', { collation_name: 'utf8mb4_general_ci' })).binaryOrder).toBe(false);
    expect(my.readColumn(row('varchar', 'varchar(20)', { collation_name: 'utf8mb4_bin' })).binaryOrder).toBe(true);
    expect(my.readColumn(row('decimal', 'decimal(14,4)', { scale: 4 }))).toMatchObject({ family: 'decimal', scale: 4 });
  });

  it('restores the session limits it set', () => {
    expect(postgresChecksumSql.limitSession({ statementTimeout: 30_000, lockTimeout: 1500 })).toContain('SET max_parallel_workers_per_gather = 0');
    expect(my.limitSession({ statementTimeout: 30_000, lockTimeout: 1500 })).toEqual([
      'SET SESSION innodb_lock_wait_timeout = 2',
      'SET SESSION lock_wait_timeout = 2',
      'SET SESSION max_statement_time = 30.000',
    ]);
    expect(my.resetSession()).toHaveLength(3);
  });
});

describe('both engines', () => {
  it('hash the same normalized text: NULLs as a bitmap, never a placeholder string', () => {
    const t: ChecksumTable = { table: 't', keys: [line], columns: [line, amount] };
    expect(postgresChecksumSql.checksum(t, {}).sql).toContain(`concat(("amount" IS NULL)::int)`);
    expect(mysqlChecksumSql.checksum(t, {}).sql).toContain('CONCAT(`amount` IS NULL)');
    for (const sql of [postgresChecksumSql.checksum(t, {}).sql, mysqlChecksumSql.checksum(t, {}).sql]) {
      expect(sql).not.toMatch(/COALESCE\([^)]*'(NULL|\\N)'/i);
      expect(sql).not.toMatch(/BIT_XOR|CRC32/i);
    }
  });

  it('find the part of a one-integer-key row by binary search over split + 1 on PostgreSQL, and sum each part on its own on MySQL', () => {
    const t: ChecksumTable = { table: 't', keys: [line], columns: [line] };
    expect(integerThresholds(t, [['-5'], [10], ['9223372036854775806']])).toEqual(['-4', '11', '9223372036854775807']);
    expect(integerThresholds(t, [['9223372036854775807']])).toBeUndefined(); // split + 1 leaves bigint
    expect(integerThresholds(t, [['1.5']])).toBeUndefined();
    expect(integerThresholds(lines, [['m', 5]])).toBeUndefined(); // composite key
    expect(postgresChecksumSql.checksumParts(t, {}, [[10]]).sql).toContain(`width_bucket("line"::bigint, '{11}'::bigint[])`);
    // MySQL/MariaDB: one aggregate per part's key range (no GROUP BY), empty parts summed as 0.
    const my = mysqlChecksumSql.checksumParts(t, { after: [0] }, [[10]]);
    expect(my.sql).toMatch(/^\(SELECT 0 AS part, .* WHERE `line` > \? AND `line` <= \?\) UNION ALL \(SELECT 1 AS part, .*COALESCE\(SUM\(.* WHERE `line` > \?\)$/);
    expect(my.params).toEqual([0, 10, 10]);
  });
});
