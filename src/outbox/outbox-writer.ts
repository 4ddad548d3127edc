import type { QueryRunner } from 'typeorm';
import type { Dialect } from '../dialect/dialect';
import { OUTBOX_TABLE } from '../../migrations/table-names';
import type { ChangeOperation, RowImage } from './change';

/** A change as capture produces it; the outbox assigns its version (`seq`). */
export interface CapturedChange {
  entity: string;
  op: ChangeOperation;
  key: string[];
  row: RowImage | null;
  /** Target names, comma-separated. */
  targets: string;
  capturedAt: number;
  trace?: string;
}

/** PostgreSQL allows 65,535 parameters a statement; 7 per row. */
const ROWS_PER_STATEMENT = 5000;

/**
 * Writes captured changes to the outbox through the caller's query runner,
 * so they commit or roll back with the entity writes: one multi-row INSERT
 * for all the changes of a transaction.
 */
export class OutboxWriter {
  /**
   * `notify: false` leaves out the PostgreSQL NOTIFY that wakes the workers'
   * relay loops: for a process that relays its own commits (`relay.afterCommit`),
   * where a worker's pass per commit would only race it for the same rows.
   * The workers' polling still picks up what such a process leaves behind.
   */
  constructor(
    private readonly dialect: Dialect,
    private readonly table: string = OUTBOX_TABLE,
    private readonly options: { notify?: boolean } = {},
  ) {}

  async write(queryRunner: QueryRunner, changes: readonly CapturedChange[]): Promise<void> {
    const sql = this.dialect.outbox;
    for (let start = 0; start < changes.length; start += ROWS_PER_STATEMENT) {
      const chunk = changes.slice(start, start + ROWS_PER_STATEMENT);
      const rows = chunk.map((change) => [
        change.entity,
        change.op,
        JSON.stringify(change.key),
        change.row === null ? null : JSON.stringify(change.row),
        change.targets,
        change.capturedAt,
        change.trace ?? null,
      ]);
      const params = sql.columnar ? rows[0].map((_, column) => rows.map((row) => row[column])) : rows.flat();
      await queryRunner.query(sql.insert(this.table, chunk.length, this.options.notify ?? true), params);
    }
  }
}
