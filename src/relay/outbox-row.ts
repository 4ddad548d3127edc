import { changeId } from '../outbox/change';

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

/** Orders outbox sequences (decimal text without leading zeros) numerically. */
export function compareSeq(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * A claimed change on its way to the queues. Its key and row image stay the
 * JSON text the outbox holds (capture wrote them with `JSON.stringify`):
 * the job data is built around that text (`changeJson`), never parsed and
 * re-serialized. `trace` may be re-pointed (relay spans) before that.
 */
export interface RelayedChange {
  id: string;
  entity: string;
  op: 'upsert' | 'delete';
  version: string;
  capturedAt: number;
  trace?: string;
  keyJson: string;
  rowJson: string;
}

export function relayedChangeOfRow(row: OutboxRow): RelayedChange {
  const seq = String(row.seq);
  const change: RelayedChange = {
    id: changeId(row.entity, seq),
    entity: row.entity,
    op: row.op === 'delete' ? 'delete' : 'upsert',
    version: seq,
    capturedAt: Number(row.captured_at),
    keyJson: jsonText(row.pk, '['),
    rowJson: row.row_image === null ? 'null' : jsonText(row.row_image, '{'),
  };
  if (row.trace) change.trace = row.trace;
  return change;
}

/**
 * The JSON of the `Change` (see outbox/change.ts) with the same members in
 * the same order as `JSON.stringify` of that object would give.
 */
export function changeJson(c: RelayedChange): string {
  return (
    `{"id":${JSON.stringify(c.id)},"entity":${JSON.stringify(c.entity)},"op":"${c.op}","key":${c.keyJson},` +
    `"version":"${c.version}","row":${c.rowJson},"capturedAt":${JSON.stringify(c.capturedAt)}` +
    (c.trace === undefined ? '}' : `,"trace":${JSON.stringify(c.trace)}}`)
  );
}

/**
 * Outbox JSON text as it can be embedded. Text that does not even look like
 * the expected JSON (a row written by hand) goes through a parse, which
 * throws on invalid JSON just as the relay always did.
 */
function jsonText(text: string, opening: '[' | '{'): string {
  const closing = opening === '[' ? ']' : '}';
  if (text.charCodeAt(0) === opening.charCodeAt(0) && text.charCodeAt(text.length - 1) === closing.charCodeAt(0)) return text;
  return JSON.stringify(JSON.parse(text));
}
