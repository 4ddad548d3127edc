import { CHANGES_PER_ROW, changeId, versionOf } from '../outbox/change';

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

/** The `op` of an outbox row that holds several changes (see OutboxWriter). */
export const BATCH_OP = 'batch';

/** Orders outbox sequences (decimal text without leading zeros) numerically. */
export function compareSeq(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * A claimed outbox row on its way to the queues: one change, or a batch of
 * changes (a `ChangeRun` in the job). Its JSON text stays the text the
 * outbox holds (capture wrote it with `JSON.stringify`): the job data is
 * built around it (`relayedJson`), never parsed and re-serialized. `trace`
 * may be re-pointed (relay spans) before that.
 */
export interface RelayedRow {
  /** The first change's id (relay spans name changes by it). */
  id: string;
  entity: string;
  seq: string;
  /** How many changes the row holds. */
  count: number;
  /** The first and the last change's versions. */
  version: string;
  lastVersion: string;
  trace?: string;
  /** A single change: its op, key and row image JSON. */
  single?: { op: 'upsert' | 'delete'; keyJson: string; rowJson: string; capturedAt: number };
  /** A batch: the JSON list of its changes. */
  changesJson?: string;
  /**
   * Why the row cannot be relayed as it is (written by hand or damaged):
   * it travels as one change that says so, which the worker keeps as a
   * dead letter (`checkApplyJob`), so the rows around it are not held back.
   */
  malformed?: string;
}

/**
 * A row on its way to the queues. `written`: the row's text is what capture
 * (or the backfill) just wrote in this process, so it is embedded as it is.
 * A claimed row may have been written by hand or damaged: a single change's
 * key and row image are parsed, so a text that only looks like JSON (`[1,]`)
 * becomes this row's `malformed` instead of breaking the JSON of a whole job
 * (whose other changes would then be dead-lettered with it). A batch row's
 * changes are not parsed (the relay's cost per change); its key list is.
 */
export function relayedRowOf(row: OutboxRow, written = false): RelayedRow {
  const seq = String(row.seq);
  const version = versionOf(seq, 0);
  const relayed: RelayedRow = { id: changeId(row.entity, version), entity: row.entity, seq, count: 1, version, lastVersion: version };
  if (row.trace) relayed.trace = row.trace;
  try {
    if (row.op === BATCH_OP) {
      // The keys' list is only counted: the changes' text goes into the job as it is.
      const keys = JSON.parse(row.pk) as unknown;
      if (!Array.isArray(keys) || keys.length === 0 || keys.length > CHANGES_PER_ROW) {
        throw new Error(`"pk" of a batch row must list 1 to ${CHANGES_PER_ROW} keys`);
      }
      relayed.count = keys.length;
      relayed.lastVersion = versionOf(seq, relayed.count - 1);
      relayed.changesJson = jsonText(row.row_image ?? '', '[', 'row_image', false);
    } else {
      if (row.op !== 'upsert' && row.op !== 'delete') throw new Error(`"op" must be "upsert", "delete" or "${BATCH_OP}"`);
      const keyJson = jsonText(row.pk, '[', 'pk', !written);
      const rowJson = row.row_image === null ? 'null' : jsonText(row.row_image, '{', 'row_image', !written);
      relayed.single = { op: row.op, keyJson, rowJson, capturedAt: Number(row.captured_at) };
    }
  } catch (error) {
    relayed.count = 1;
    relayed.lastVersion = version;
    relayed.changesJson = undefined;
    relayed.single = { op: 'upsert', keyJson: '[]', rowJson: 'null', capturedAt: Number(row.captured_at) };
    relayed.malformed =
      `outbox row ${seq} (entity ${JSON.stringify(row.entity)}, op ${JSON.stringify(row.op)}) is not as typeorm-dualwrite writes it: ` +
      `${(error as Error).message}. Its change(s) were not relayed; the primary still has the row(s)`;
  }
  return relayed;
}

/**
 * The JSON of a relayed row as job data holds it: a single change as a
 * `Change` (the same members in the same order as `JSON.stringify` of that
 * object would give), a batch as a `ChangeRun`.
 */
export function relayedJson(r: RelayedRow): string {
  const trace = r.trace === undefined ? '}' : `,"trace":${JSON.stringify(r.trace)}}`;
  const entity = JSON.stringify(r.entity);
  if (r.single) {
    const c = r.single;
    const malformed = r.malformed === undefined ? '' : `,"malformed":${JSON.stringify(r.malformed)}`;
    return (
      `{"id":${JSON.stringify(r.id)},"entity":${entity},"op":"${c.op}","key":${c.keyJson},` +
      `"version":"${r.version}","row":${c.rowJson},"capturedAt":${JSON.stringify(c.capturedAt)}${malformed}${trace}`
    );
  }
  return `{"seq":"${r.seq}","entity":${entity},"changes":${r.changesJson}${trace}`;
}

/**
 * Outbox JSON text as it can be embedded. Text that does not even look like
 * the expected JSON, or any text with `parse`, goes through a parse; text
 * that is not JSON, or not a list/object as expected, throws an error naming
 * the column (`relayedRowOf` makes it the row's `malformed`).
 */
function jsonText(text: string, opening: '[' | '{', column: string, parse: boolean): string {
  const closing = opening === '[' ? ']' : '}';
  const looksRight = text.charCodeAt(0) === opening.charCodeAt(0) && text.charCodeAt(text.length - 1) === closing.charCodeAt(0);
  if (looksRight && !parse) return text;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`"${column}" is not JSON (${(error as Error).message})`);
  }
  if (opening === '[' ? !Array.isArray(value) : typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`"${column}" must be a JSON ${opening === '[' ? 'list' : 'object'}`);
  }
  return looksRight ? text : JSON.stringify(value);
}
