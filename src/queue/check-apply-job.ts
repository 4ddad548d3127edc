import { createHash } from 'node:crypto';
import { CHANGES_PER_ROW, changeId, keyString, versionOf, type Change } from '../outbox/change';
import { compareSeq } from '../relay/outbox-row';

/** The longest row key the targets' version ledger holds (`row_key varchar(512)`). */
export const MAX_ROW_KEY_LENGTH = 512;

/** A change of a job that can never apply as it is, and why. */
export interface RejectedChange {
  /** The change as far as it could be read; fields it lacked are filled in so it can be kept as a dead letter. */
  change: Change;
  code: 'PAYLOAD_INVALID' | 'KEY_TOO_LONG';
  message: string;
}

/** An apply job's changes, split into those that can be applied and those that never can. */
export interface CheckedApplyJob {
  changes: Change[];
  rejected: RejectedChange[];
}

/**
 * Reads an apply job's data defensively. Only the relay of this library
 * writes these jobs, but Redis is shared: a job written by another version,
 * by hand or by a bug must not crash the worker or block the other changes
 * of its queue. Every change that is not well-formed (or whose key is longer
 * than the version ledger holds) is rejected with a message saying what is
 * wrong, so the worker can keep it as a dead letter and apply the rest.
 */
export function checkApplyJob(data: unknown, jobId: string | undefined): CheckedApplyJob {
  const job = jobId ?? '(no id)';
  const raw = isRecord(data) ? data.changes : undefined;
  if (!Array.isArray(raw)) {
    // `unreadable`: the worker could not parse the job's data at all (see ApplyJobWorker).
    const unreadable = isRecord(data) && typeof data.unreadable === 'string' ? data.unreadable : undefined;
    const what =
      unreadable !== undefined
        ? `its data is not JSON (${describe(unreadable)})`
        : isRecord(data) ? `its "changes" is ${describe(data.changes)}` : `its data is ${describe(data)}`;
    return {
      changes: [],
      rejected: [reject(data, job, 0, 'PAYLOAD_INVALID', `Apply job ${job} is malformed: ${what}, not a list of changes. ${ADVICE}`)],
    };
  }
  const checked: CheckedApplyJob = { changes: [], rejected: [] };
  const items: unknown[] = [...raw];
  const runs = isRecord(data) ? data.runs : undefined;
  if (runs !== undefined) {
    const list = Array.isArray(runs) ? runs : [runs];
    list.forEach((run, index) => {
      const problem = runProblemOf(run);
      if (problem) {
        checked.rejected.push(reject(run, job, raw.length + index, 'PAYLOAD_INVALID', `Run ${index + 1} of apply job ${job} is malformed: ${problem}. ${ADVICE}`));
        return;
      }
      const r = run as { seq: string; entity: string; trace?: unknown; changes: unknown[] };
      r.changes.forEach((item, i) => {
        // Not an object: rejected below, as a malformed single change would be.
        if (!isRecord(item)) return items.push(item);
        // A literal of one shape (not a spread): a job holds up to a thousand of them.
        const version = versionOf(r.seq, i);
        const change: Change = { id: changeId(r.entity, version), entity: r.entity, op: item.op as Change['op'], key: item.key as string[], version, row: item.row as Change['row'], capturedAt: item.capturedAt as number };
        const trace = item.trace ?? r.trace;
        if (trace !== undefined) change.trace = trace as string;
        items.push(change);
      });
    });
    // Single changes and runs interleave: the applier takes them in version order.
    if (!inVersionOrder(items)) items.sort((a, b) => compareSeq(versionText(a), versionText(b)));
  }
  items.forEach((item, index) => {
    const problem = problemOf(item);
    if (problem) {
      checked.rejected.push(reject(item, job, index, 'PAYLOAD_INVALID', `Change ${index + 1} of apply job ${job} is malformed: ${problem}. ${ADVICE}`));
      return;
    }
    const change = item as Change;
    const key = keyString(change.key);
    if (key.length > MAX_ROW_KEY_LENGTH) {
      checked.rejected.push({
        change,
        code: 'KEY_TOO_LONG',
        message:
          `Change ${change.id} of entity "${change.entity}" has a primary key of ${key.length} characters (${key.slice(0, 40)}…); ` +
          `the version ledger of every target (dualwrite_version_ledger.row_key) holds at most ${MAX_ROW_KEY_LENGTH}. ` +
          `Replicate only entities whose keys are shorter (a surrogate id, for example).`,
      });
      return;
    }
    checked.changes.push(change);
  });
  return checked;
}

const ADVICE =
  'Only the relay of typeorm-dualwrite writes these jobs (was it written by hand, or by another version?). ' +
  'It was kept as a dead letter: inspect it with `dualwrite dlq show <id>` and discard it; the primary still has the row, ' +
  'so `dualwrite reconcile --repair` brings the target up to date.';

function runProblemOf(run: unknown): string | undefined {
  if (!isRecord(run)) return `expected an object, got ${describe(run)}`;
  if (typeof run.seq !== 'string' || !/^[1-9][0-9]{0,14}$/.test(run.seq)) return `"seq" must be an outbox sequence (decimal string), got ${describe(run.seq)}`;
  if (typeof run.entity !== 'string' || run.entity === '') return `"entity" must be an entity name, got ${describe(run.entity)}`;
  if (!Array.isArray(run.changes) || run.changes.length === 0 || run.changes.length > CHANGES_PER_ROW) {
    return `"changes" must be a list of 1 to ${CHANGES_PER_ROW} changes, got ${describe(run.changes)}`;
  }
  return undefined;
}

function inVersionOrder(items: readonly unknown[]): boolean {
  for (let i = 1; i < items.length; i++) if (compareSeq(versionText(items[i - 1]), versionText(items[i])) > 0) return false;
  return true;
}

/** A (possibly malformed) change's version for ordering; malformed ones sort first and are rejected anyway. */
function versionText(item: unknown): string {
  return isRecord(item) && typeof item.version === 'string' ? item.version : '';
}

function problemOf(item: unknown): string | undefined {
  if (!isRecord(item)) return `expected an object, got ${describe(item)}`;
  // The relay found its outbox row unusable (see RelayedRow.malformed).
  if (typeof item.malformed === 'string') return item.malformed;
  if (typeof item.entity !== 'string' || item.entity === '') return `"entity" must be an entity name, got ${describe(item.entity)}`;
  if (item.op !== 'upsert' && item.op !== 'delete') return `"op" must be "upsert" or "delete", got ${describe(item.op)}`;
  if (!Array.isArray(item.key) || item.key.length === 0 || !item.key.every((k) => typeof k === 'string')) {
    return `"key" must be a non-empty list of strings, got ${describe(item.key)}`;
  }
  if (typeof item.version !== 'string' || !/^[0-9]{1,19}$/.test(item.version)) {
    return `"version" must be a decimal string, got ${describe(item.version)}`;
  }
  if (item.op === 'upsert' && !isRecord(item.row)) return `an upsert needs a row image object in "row", got ${describe(item.row)}`;
  if (typeof item.id !== 'string') return `"id" must be a string, got ${describe(item.id)}`;
  if (typeof item.capturedAt !== 'number' || !Number.isFinite(item.capturedAt)) return `"capturedAt" must be a number, got ${describe(item.capturedAt)}`;
  return undefined;
}

/**
 * A Change-shaped copy of whatever the job held, so the dead-letter queue,
 * `dualwrite dlq list` and the handlers can show it. A missing version is
 * replaced by one derived from the job id and position (deterministic, so a
 * retry of the job makes the same letter, not a second one).
 */
function reject(item: unknown, job: string, index: number, code: RejectedChange['code'], message: string): RejectedChange {
  const r = isRecord(item) ? item : {};
  const version = typeof r.version === 'string' && /^[0-9]{1,19}$/.test(r.version) ? r.version : syntheticVersion(job, index);
  const entity = typeof r.entity === 'string' && r.entity !== '' ? r.entity : '(unknown)';
  const change: Change = {
    id: typeof r.id === 'string' ? r.id : `${entity}#${version}`,
    entity,
    op: r.op === 'delete' ? 'delete' : 'upsert',
    key: Array.isArray(r.key) ? r.key.map((k) => (typeof k === 'string' ? k : JSON.stringify(k) ?? 'undefined')) : [],
    version,
    row: isRecord(r.row) ? (r.row as Change['row']) : null,
    capturedAt: typeof r.capturedAt === 'number' && Number.isFinite(r.capturedAt) ? r.capturedAt : 0,
  };
  return { change, code, message };
}

function syntheticVersion(job: string, index: number): string {
  const digest = createHash('sha256').update(`${job}\u0000${index}`).digest();
  // 8 followed by 18 digits: a valid bigint, far above any real sequence value.
  return `8${(digest.readBigUInt64BE(0) % 10n ** 18n).toString().padStart(18, '0')}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
