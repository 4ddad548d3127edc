import type { QueryRunner } from 'typeorm';
import { LEDGER_TABLE } from '../../migrations/table-names';
import type { Dialect } from '../dialect/dialect';

const KEYS_PER_STATEMENT = 1000;

/**
 * The target ledger's version of each key (`<version>` or `<version>-deleted`,
 * absent when the ledger has no row): a change of it between two reads means
 * a change of that row was applied in between.
 */
export async function readLedgerVersions(
  queryRunner: QueryRunner,
  dialect: Dialect,
  entity: string,
  ledgerKeys: readonly string[],
): Promise<Map<string, string>> {
  const versions = new Map<string, string>();
  const q = (name: string) => dialect.quoteIdentifier(name);
  for (let start = 0; start < ledgerKeys.length; start += KEYS_PER_STATEMENT) {
    const chunk = ledgerKeys.slice(start, start + KEYS_PER_STATEMENT);
    const params: unknown[] = [entity, ...chunk];
    const slots = chunk.map((_, i) => dialect.placeholder(i + 2)).join(', ');
    const version = dialect.name === 'mysql' ? 'CAST(version AS CHAR)' : 'version::text';
    const sql =
      `SELECT ${q('row_key')} AS k, ${version} AS v, ${q('deleted')} AS d FROM ${dialect.quoteTable(LEDGER_TABLE)} ` +
      `WHERE ${q('entity')} = ${dialect.placeholder(1)} AND ${q('row_key')} IN (${slots})`;
    const rows = (await queryRunner.query(sql, params)) as Array<{ k: string; v: string; d: unknown }>;
    for (const row of rows) versions.set(String(row.k), `${row.v}${row.d === true || Number(row.d) === 1 ? '-deleted' : ''}`);
  }
  return versions;
}
