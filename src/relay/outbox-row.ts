import { changeId, type Change } from '../outbox/change';

/** An outbox row as the claim query returns it (either engine). */
export interface OutboxRow {
  seq: string;
  entity: string;
  op: string;
  pk: string;
  row_image: string | null;
  targets: string;
  captured_at: string | number;
  trace: string | null;
}

export function changeOfRow(row: OutboxRow): Change {
  const seq = String(row.seq);
  const change: Change = {
    id: changeId(row.entity, seq),
    entity: row.entity,
    op: row.op === 'delete' ? 'delete' : 'upsert',
    key: JSON.parse(row.pk) as string[],
    version: seq,
    row: row.row_image === null ? null : JSON.parse(row.row_image),
    capturedAt: Number(row.captured_at),
  };
  if (row.trace) change.trace = row.trace;
  return change;
}
