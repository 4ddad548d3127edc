import { mariadbOutboxSql, mysqlOutboxSql } from '../../src/dialect/mysql/mysql-outbox-sql';
import { postgresOutboxSql } from '../../src/dialect/postgres/postgres-outbox-sql';

describe('mysqlOutboxSql', () => {
  it('claims in the numeric order of the table column, not of the CAST alias', () => {
    expect(mysqlOutboxSql.claim('dualwrite_outbox', 2000)).toEqual({
      sql:
        'SELECT CAST(o.seq AS CHAR) AS seq, entity, op, pk, row_image, targets, captured_at, trace ' +
        'FROM `dualwrite_outbox` AS o ORDER BY o.seq LIMIT ? FOR UPDATE SKIP LOCKED',
      params: [2000],
    });
    // A worker's poll claims only what was already there at its previous poll.
    expect(mysqlOutboxSql.claim('dualwrite_outbox', 2000, '41')).toEqual({
      sql:
        'SELECT CAST(o.seq AS CHAR) AS seq, entity, op, pk, row_image, targets, captured_at, trace ' +
        'FROM `dualwrite_outbox` AS o WHERE o.seq <= ? ORDER BY o.seq LIMIT ? FOR UPDATE SKIP LOCKED',
      params: ['41', 2000],
    });
    // Never the rows the process is relaying from memory.
    expect(mysqlOutboxSql.claim('dualwrite_outbox', 2000, '41', ['7', '9'])).toEqual({
      sql:
        'SELECT CAST(o.seq AS CHAR) AS seq, entity, op, pk, row_image, targets, captured_at, trace ' +
        'FROM `dualwrite_outbox` AS o WHERE o.seq <= ? AND o.seq NOT IN (?, ?) ORDER BY o.seq LIMIT ? FOR UPDATE SKIP LOCKED',
      params: ['41', '7', '9', 2000],
    });
    expect(mysqlOutboxSql.claimIsolation).toBe('READ COMMITTED');
  });

  it('deletes the claimed rows by key lookups driven from a JSON list, exact past 2^53', () => {
    expect(mysqlOutboxSql.delete('dualwrite_outbox', ['8', '9', '12', '9007199254740993'])).toEqual({
      sql:
        "DELETE o FROM JSON_TABLE(?, '$[*]' COLUMNS (seq BIGINT PATH '$')) AS j " +
        'STRAIGHT_JOIN `dualwrite_outbox` AS o ON o.seq = j.seq',
      params: ['[8,9,12,9007199254740993]'],
    });
  });

  it('returns the inserted sequences on MariaDB 10.5+ only when asked, and never on MySQL', () => {
    const insert = 'INSERT INTO `dualwrite_outbox` (entity, op, pk, row_image, targets, captured_at, trace) VALUES (?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?)';
    expect(mariadbOutboxSql.insert('dualwrite_outbox', 2, false, true)).toBe(`${insert} RETURNING CAST(seq AS CHAR) AS seq`);
    expect(mariadbOutboxSql.insert('dualwrite_outbox', 2, false)).toBe(insert);
    expect(mysqlOutboxSql.returnsSeqs).toBeUndefined();
    expect(mysqlOutboxSql.insert('dualwrite_outbox', 2, false, true)).toBe(insert);
  });

  it('refuses a sequence that is not a decimal integer', () => {
    expect(() => mysqlOutboxSql.delete('o', ['1', '2) OR (1'])).toThrow(/not a decimal integer/);
  });
});

describe('postgresOutboxSql', () => {
  it('inserts with one array parameter per column, notifying the relay loops unless told not to', () => {
    const insert =
      'INSERT INTO "dualwrite_outbox" (entity, op, pk, row_image, targets, captured_at, trace) ' +
      'SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])';
    expect(postgresOutboxSql.insert('dualwrite_outbox', 3)).toBe(`WITH captured AS (${insert}) SELECT pg_notify('dualwrite_outbox', '')`);
    expect(postgresOutboxSql.insert('dualwrite_outbox', 3, false)).toBe(insert);
    // A process that relays its own commits gets the sequences back.
    expect(postgresOutboxSql.insert('dualwrite_outbox', 3, false, true)).toBe(`${insert} RETURNING seq::text AS seq`);
  });

  it('claims and deletes in one script, bounded to a sequence for a worker\'s poll', () => {
    const claim = (bound: string) =>
      'DELETE FROM "dualwrite_outbox" WHERE seq = ANY(ARRAY(' +
      `SELECT seq FROM "dualwrite_outbox"${bound} ORDER BY seq LIMIT 500 FOR UPDATE SKIP LOCKED)) ` +
      'RETURNING seq::text AS seq, entity, op, pk, row_image, targets, captured_at, trace';
    expect(postgresOutboxSql.claimScript!('dualwrite_outbox', 500)).toBe(`BEGIN; SET LOCAL synchronous_commit TO OFF; ${claim('')}`);
    expect(postgresOutboxSql.claimScript!('dualwrite_outbox', 500, '77')).toBe(`BEGIN; SET LOCAL synchronous_commit TO OFF; ${claim(' WHERE seq <= 77')}`);
    expect(postgresOutboxSql.claimScript!('dualwrite_outbox', 500, undefined, ['7', '9'])).toBe(
      `BEGIN; SET LOCAL synchronous_commit TO OFF; ${claim(" WHERE seq <> ALL('{7,9}'::bigint[])")}`,
    );
    expect(() => postgresOutboxSql.claimScript!('dualwrite_outbox', 500, '1; DROP TABLE x')).toThrow(/not a decimal integer/);
    expect(() => postgresOutboxSql.claimScript!('dualwrite_outbox', 500, undefined, ["1}'::bigint[]); DROP TABLE x; --"])).toThrow(/not a decimal integer/);
  });

  it('deletes by one array parameter', () => {
    expect(postgresOutboxSql.delete('dualwrite_outbox', ['1', '5'])).toEqual({
      sql: 'DELETE FROM "dualwrite_outbox" WHERE seq = ANY($1::bigint[])',
      params: [['1', '5']],
    });
  });
});
