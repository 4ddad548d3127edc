import { decodeValue } from '../../src/apply/value-decoder';
import type { LedgerEntry, TargetColumn } from '../../src/dialect/dialect';
import { mysqlApplySql } from '../../src/dialect/mysql/mysql-apply-sql';
import { postgresApplySql } from '../../src/dialect/postgres/postgres-apply-sql';

const entries: LedgerEntry[] = [
  { entity: 'Order', key: '1', version: '10', deleted: false },
  { entity: 'Order', key: '2', version: '11', deleted: true },
];

const col = (name: string, sqlType: string, nullable = false): TargetColumn => ({ name, sqlType, nullable });

describe('postgresApplySql', () => {
  const pg = postgresApplySql;

  it('builds one unnest ledger upsert that keeps the caller order and returns the winners', () => {
    expect(pg.ledgerUpsert('dualwrite_version_ledger', entries)).toEqual({
      sql:
        'INSERT INTO "dualwrite_version_ledger" AS l (entity, row_key, version, deleted, updated_at) ' +
        'SELECT e, k, v, d, now() FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[]) ' +
        'WITH ORDINALITY AS u(e, k, v, d, n) ORDER BY n ' +
        'ON CONFLICT (entity, row_key) DO UPDATE SET version = EXCLUDED.version, deleted = EXCLUDED.deleted, ' +
        'updated_at = now() WHERE l.version < EXCLUDED.version RETURNING l.entity, l.row_key AS key',
      params: [['Order', 'Order'], ['1', '2'], ['10', '11'], [false, true]],
    });
  });

  it('upserts composite keys with column-major arrays cast to the unconstrained column types', () => {
    const columns = [
      col('tenant', 'integer'),
      col('code', 'character varying(20)'),
      col('amount', 'numeric(10,2)', true),
      col('at', 'timestamp(3) with time zone', true),
      col('short', 'character(5)', true),
      col('bits', 'bit(3)', true),
      col('mood', '"Mood (type)"', true),
      col('doc', 'jsonb', true),
    ];
    const st = pg.upsertRows('shop.order_lines', columns, ['tenant', 'code'], [
      [1, 'a', '1.50', null, 'x', '101', 'ok', '{}'],
      [2, 'b', null, null, null, null, null, null],
    ]);
    expect(st.sql).toBe(
      'INSERT INTO "shop"."order_lines" ("tenant", "code", "amount", "at", "short", "bits", "mood", "doc") OVERRIDING SYSTEM VALUE ' +
        'SELECT * FROM unnest($1::integer[], $2::character varying[], $3::numeric[], $4::timestamp with time zone[], ' +
        '$5::bpchar[], $6::"bit"[], $7::"Mood (type)"[], $8::jsonb[]) ' +
        'ON CONFLICT ("tenant", "code") DO UPDATE SET "amount" = EXCLUDED."amount", "at" = EXCLUDED."at", ' +
        '"short" = EXCLUDED."short", "bits" = EXCLUDED."bits", "mood" = EXCLUDED."mood", "doc" = EXCLUDED."doc"',
    );
    expect(st.params).toEqual([[1, 2], ['a', 'b'], ['1.50', null], [null, null], ['x', null], ['101', null], ['ok', null], ['{}', null]]);
  });

  it('sends array-typed columns as text literals and casts them per row', () => {
    const st = pg.upsertRows('t', [col('id', 'integer'), col('tags', 'character varying(10)[]')], ['id'], [[1, '{a}']]);
    expect(st.sql).toBe(
      'INSERT INTO "t" ("id", "tags") OVERRIDING SYSTEM VALUE ' +
        'SELECT c1, c2::character varying[] FROM unnest($1::integer[], $2::text[]) AS u(c1, c2) ' +
        'ON CONFLICT ("id") DO UPDATE SET "tags" = EXCLUDED."tags"',
    );
  });

  it('quotes hostile identifiers and does nothing on conflict when every column is a key', () => {
    const st = pg.upsertRows('we"ird %table', [col('order', 'integer'), col('my "col"', 'text')], ['order', 'my "col"'], [[1, 'x']]);
    expect(st.sql).toBe(
      'INSERT INTO "we""ird %table" ("order", "my ""col""") OVERRIDING SYSTEM VALUE ' +
        'SELECT * FROM unnest($1::integer[], $2::text[]) ON CONFLICT ("order", "my ""col""") DO NOTHING',
    );
  });

  it('deletes single and composite keys through unnest', () => {
    expect(pg.deleteRows('group', [col('order', 'bigint')], [['1'], ['2']])).toEqual({
      sql: 'DELETE FROM "group" WHERE "order" IN (SELECT * FROM unnest($1::bigint[]))',
      params: [['1', '2']],
    });
    expect(pg.deleteRows('t', [col('a', 'integer'), col('my col', 'uuid')], [[1, 'u1'], [2, 'u2']])).toEqual({
      sql: 'DELETE FROM "t" WHERE ("a", "my col") IN (SELECT * FROM unnest($1::integer[], $2::uuid[]))',
      params: [[1, 2], ['u1', 'u2']],
    });
  });

  it('describes a table in the current or the named schema', () => {
    expect(pg.describeTable('orders').params).toEqual(['orders', null]);
    expect(pg.describeTable('shop.orders').params).toEqual(['orders', 'shop']);
    expect(pg.readColumn({ name: 'a', sql_type: 'numeric(10,2)', nullable: true })).toEqual(col('a', 'numeric(10,2)', true));
  });

  it('purges old tombstones', () => {
    expect(pg.purgeTombstones('dualwrite_version_ledger', 3600)).toEqual({
      sql: 'DELETE FROM "dualwrite_version_ledger" WHERE deleted AND updated_at < now() - make_interval(secs => $1)',
      params: [3600],
    });
  });

  it('refuses empty batches and unknown key columns', () => {
    expect(() => pg.upsertRows('t', [col('a', 'int')], ['a'], [])).toThrow(RangeError);
    expect(() => pg.upsertRows('t', [col('a', 'int')], ['b'], [[1]])).toThrow(/Key column "b"/);
    expect(() => pg.upsertRows('t', [col('a', 'int')], ['a'], [[1, 2]])).toThrow(/expected 1/);
  });
});

describe('mysqlApplySql', () => {
  const my = mysqlApplySql;

  it('assigns prior_version FIRST and the ledger version LAST, so every guard sees the old version', () => {
    const st = my.ledgerUpsert('dualwrite_version_ledger', entries);
    expect(st).toEqual({
      sql:
        'INSERT INTO `dualwrite_version_ledger` (entity, row_key, version, deleted, prior_version, updated_at) VALUES ' +
        '(?, ?, ?, ?, 0, CURRENT_TIMESTAMP(3)), (?, ?, ?, ?, 0, CURRENT_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE ' +
        'prior_version = version, deleted = IF(VALUES(version) > version, VALUES(deleted), deleted), ' +
        'updated_at = IF(VALUES(version) > version, VALUES(updated_at), updated_at), ' +
        'version = IF(VALUES(version) > version, VALUES(version), version)',
      params: ['Order', '1', '10', 0, 'Order', '2', '11', 1],
    });
    expect(st.sql.trimEnd().endsWith('version = IF(VALUES(version) > version, VALUES(version), version)')).toBe(true);
  });

  it('reads ledger versions back as exact strings, in a READ COMMITTED apply, without locking the next index record', () => {
    expect(my.isolation).toBe('READ COMMITTED');
    expect(my.ledgerRead?.('dualwrite_version_ledger', 'Order', ['1', '2'])).toEqual({
      sql:
        'SELECT row_key AS `key`, CAST(version AS CHAR) AS version, CAST(prior_version AS CHAR) AS prior ' +
        'FROM `dualwrite_version_ledger` WHERE entity = ? AND row_key IN (?, ?)',
      params: ['Order', '1', '2'],
    });
  });

  it('takes every entry as a winner only when a multi-row ledger upsert met no existing row', () => {
    expect(my.ledgerUpsertWinners?.({ info: 'Records: 2  Duplicates: 0  Warnings: 0' }, entries)).toEqual(['1', '2']);
    expect(my.ledgerUpsertWinners?.({ info: 'Records: 2  Duplicates: 1  Warnings: 0' }, entries)).toBeUndefined();
    expect(my.ledgerUpsertWinners?.({ info: 'Records: 2  Duplicates: 10  Warnings: 0' }, entries)).toBeUndefined();
    expect(my.ledgerUpsertWinners?.({ info: '', affectedRows: 1 }, entries.slice(0, 1))).toBeUndefined();
    expect(my.ledgerUpsertWinners?.(undefined, entries)).toBeUndefined();
  });

  it('upserts composite keys assigning every non-key column', () => {
    const columns = [col('tenant', 'int(11)'), col('code', 'varchar(20)'), col('amount', 'decimal(10,2)'), col('updated', 'datetime(3)')];
    expect(my.upsertRows('shop.order_lines', columns, ['tenant', 'code'], [[1, 'a', '1.50', null], [2, 'b', null, null]])).toEqual({
      sql:
        'INSERT INTO `shop`.`order_lines` (`tenant`, `code`, `amount`, `updated`) VALUES (?, ?, ?, ?), (?, ?, ?, ?) ' +
        'ON DUPLICATE KEY UPDATE `amount` = VALUES(`amount`), `updated` = VALUES(`updated`)',
      params: [1, 'a', '1.50', null, 2, 'b', null, null],
    });
  });

  it('quotes hostile identifiers and keeps an all-key upsert a no-op update', () => {
    const st = my.upsertRows('gr`oup %', [col('order', 'int'), col("my 'col'", 'text')], ['order', "my 'col'"], [[1, 'x']]);
    expect(st.sql).toBe(
      "INSERT INTO `gr``oup %` (`order`, `my 'col'`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `order` = VALUES(`order`)",
    );
  });

  it('deletes single and composite keys', () => {
    expect(my.deleteRows('group', [col('order', 'bigint')], [['1'], ['2']])).toEqual({
      sql: 'DELETE FROM `group` WHERE `order` IN (?, ?)',
      params: ['1', '2'],
    });
    expect(my.deleteRows('t', [col('a', 'int'), col('my col', 'char(36)')], [[1, 'u1'], [2, 'u2']])).toEqual({
      sql: 'DELETE FROM `t` WHERE (`a`, `my col`) IN ((?, ?), (?, ?))',
      params: [1, 'u1', 2, 'u2'],
    });
  });

  it('describes a table in the current or the named database', () => {
    expect(my.describeTable('orders').params).toEqual([null, 'orders']);
    expect(my.describeTable('shop.orders').params).toEqual(['shop', 'orders']);
    expect(my.readColumn({ name: 'a', sql_type: 'decimal(10,2)', nullable: 'YES' })).toEqual({ ...col('a', 'decimal(10,2)', true), foldsCase: false });
  });

  it('tells which collations fold case or accents', () => {
    const folds = (collation: string | null) => my.readColumn({ name: 'k', sql_type: 'varchar(20)', nullable: 'NO', collation_name: collation }).foldsCase;
    expect(['utf8mb4_general_ci', 'utf8mb4_unicode_ci', 'utf8mb4_uca1400_ai_ci', 'latin1_swedish_ci', 'utf8mb4_0900_as_ci'].map(folds)).toEqual([true, true, true, true, true]);
    expect(['utf8mb4_bin', 'binary', 'utf8mb4_0900_as_cs', null].map(folds)).toEqual([false, false, false, false]);
  });

  it('purges old tombstones', () => {
    expect(my.purgeTombstones('dualwrite_version_ledger', 60)).toEqual({
      sql: 'DELETE FROM `dualwrite_version_ledger` WHERE deleted = 1 AND updated_at < CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND',
      params: [60],
    });
  });

  it('refuses empty batches, where MySQL would report a syntax error', () => {
    expect(() => my.deleteRows('t', [col('a', 'int')], [])).toThrow(RangeError);
    expect(() => my.ledgerUpsert('l', [])).toThrow(RangeError);
  });
});

describe('decodeValue', () => {
  it('turns instants into Dates for both drivers', () => {
    const iso = '2024-03-01T12:34:56.789Z';
    expect(decodeValue('timestamp', iso, 'postgres')).toEqual(new Date(iso));
    expect(decodeValue('timestamp', iso, 'mysql')).toEqual(new Date(iso));
    expect(decodeValue('timestamp', 'infinity', 'postgres')).toBe('infinity');
  });

  it('sends booleans, JSON and binary the way each driver needs', () => {
    expect(decodeValue('boolean', true, 'mysql')).toBe(1);
    expect(decodeValue('boolean', false, 'postgres')).toBe(false);
    expect(decodeValue('json', { a: [1, 'x'] }, 'postgres')).toBe('{"a":[1,"x"]}');
    expect(decodeValue('json', 'text', 'mysql')).toBe('"text"');
    expect(decodeValue('binary', Buffer.from([0, 255]).toString('base64'), 'mysql')).toEqual(Buffer.from([0, 255]));
    expect(decodeValue('decimal', '12.3400', 'mysql')).toBe('12.3400');
    expect(decodeValue('string', null, 'postgres')).toBeNull();
  });

  it('never hands a driver a bare object or array', () => {
    expect(decodeValue('other', [1, null, 'a "b"'], 'postgres', 'text[]')).toBe('{"1",NULL,"a \\"b\\""}');
    expect(decodeValue('other', [1, 2], 'mysql')).toBe('[1,2]');
    expect(decodeValue('other', { a: 1 }, 'mysql')).toBe('{"a":1}');
  });
});
