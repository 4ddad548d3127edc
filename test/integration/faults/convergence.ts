import { isDeepStrictEqual } from 'node:util';
import type { DataSource } from 'typeorm';
import { LEDGER_TABLE, OUTBOX_TABLE, type DualWrite } from '../../../src';
import { dialectFor } from '../../../src/dialect/dialect-for';
import { snapshot } from '../../support/compare';
import { versionOf } from '../../../src/outbox/change';
import { BATCH_OP } from '../../../src/relay/outbox-row';

/** The result of comparing every replicated entity of a primary with a target. */
export interface Comparison {
  equal: boolean;
  rows: number;
  /** Human-readable first differences, for the failure message. */
  differences: string[];
}

export async function compareTarget(dw: DualWrite, target: DataSource, targetName: string, entityNames: string[]): Promise<Comparison> {
  const pd = dialectFor(dw.config.primary, { primary: true });
  const td = dialectFor(target, { target: targetName });
  const differences: string[] = [];
  let rows = 0;
  for (const name of entityNames) {
    const entity = dw.entity(name);
    const [p, t] = await Promise.all([snapshot(dw.config.primary, pd, entity), snapshot(target, td, entity)]);
    rows += p.size;
    for (const [key, row] of p) {
      if (!t.has(key)) differences.push(`${name} ${key}: missing on the target`);
      else if (!isDeepStrictEqual(row, t.get(key))) differences.push(`${name} ${key}: ${JSON.stringify(t.get(key))} ≠ primary ${JSON.stringify(row)}`);
    }
    for (const key of t.keys()) if (!p.has(key)) differences.push(`${name} ${key}: on the target, deleted on the primary`);
  }
  return { equal: differences.length === 0, rows, differences: differences.slice(0, 10).concat(differences.length > 10 ? [`… ${differences.length - 10} more`] : []) };
}

/** Outbox rows still on the primary. */
export async function outboxCount(primary: DataSource): Promise<number> {
  const d = dialectFor(primary, { primary: true });
  const rows = (await primary.query(`SELECT COUNT(*) AS n FROM ${d.quoteTable(OUTBOX_TABLE)}`)) as Array<{ n: string | number }>;
  return Number(rows[0].n);
}

export interface LedgerRow {
  entity: string;
  key: string;
  version: string;
  deleted: boolean;
}

export async function ledgerRows(target: DataSource, targetName: string): Promise<LedgerRow[]> {
  const d = dialectFor(target, { target: targetName });
  const rows = (await target.query(`SELECT entity, row_key, version, deleted FROM ${d.quoteTable(LEDGER_TABLE)}`)) as Array<
    Record<string, unknown>
  >;
  return rows.map((r) => ({ entity: String(r.entity), key: String(r.row_key), version: String(r.version), deleted: Boolean(Number(r.deleted) || r.deleted === true) }));
}

/** The ledger's key string of a snapshot key (`a|1` → `["a","1"]`, `7` → `7`). */
export function ledgerKeyOf(snapshotKey: string): string {
  const parts = snapshotKey.split('|');
  return parts.length === 1 ? parts[0] : JSON.stringify(parts);
}

/**
 * The ledger agrees with the target's rows: every row has a live ledger entry,
 * every live entry has its row, every tombstone has none.
 */
export async function ledgerMismatches(dw: DualWrite, target: DataSource, targetName: string, entityNames: string[]): Promise<string[]> {
  const td = dialectFor(target, { target: targetName });
  const ledger = await ledgerRows(target, targetName);
  const problems: string[] = [];
  for (const name of entityNames) {
    const rows = await snapshot(target, td, dw.entity(name));
    const keys = new Set([...rows.keys()].map(ledgerKeyOf));
    const entries = new Map(ledger.filter((l) => l.entity === name).map((l) => [l.key, l]));
    for (const key of keys) if (!entries.get(key) || entries.get(key)!.deleted) problems.push(`${name} ${key}: row without a live ledger entry`);
    for (const [key, entry] of entries) {
      if (!entry.deleted && !keys.has(key)) problems.push(`${name} ${key}: live ledger entry v${entry.version} without a row`);
      if (entry.deleted && keys.has(key)) problems.push(`${name} ${key}: tombstone v${entry.version} but the row exists`);
    }
  }
  return problems;
}

const AUDIT_TABLE = 'fault_outbox_audit';

/**
 * Test-only: a trigger copies every outbox INSERT into an audit table, so the
 * test knows each row's last captured version whichever process relays it.
 */
export async function auditOutbox(primary: DataSource): Promise<void> {
  if (dialectFor(primary, { primary: true }).name === 'postgres') {
    await primary.query(`CREATE TABLE "${AUDIT_TABLE}" (seq bigint NOT NULL, entity varchar(255) NOT NULL, op varchar(8) NOT NULL, pk text NOT NULL, row_image text NULL, targets text NOT NULL)`);
    await primary.query(`CREATE FUNCTION "${AUDIT_TABLE}_copy"() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO "${AUDIT_TABLE}" VALUES (NEW.seq, NEW.entity, NEW.op, NEW.pk, NEW.row_image, NEW.targets); RETURN NEW; END $$`);
    await primary.query(`CREATE TRIGGER "${AUDIT_TABLE}_copy" AFTER INSERT ON "${OUTBOX_TABLE}" FOR EACH ROW EXECUTE FUNCTION "${AUDIT_TABLE}_copy"()`);
  } else {
    await primary.query(`CREATE TABLE \`${AUDIT_TABLE}\` (seq bigint NOT NULL, entity varchar(255) NOT NULL, op varchar(8) NOT NULL, pk text NOT NULL, row_image longtext NULL, targets text NOT NULL) ENGINE=InnoDB`);
    await primary.query(`CREATE TRIGGER \`${AUDIT_TABLE}_copy\` AFTER INSERT ON \`${OUTBOX_TABLE}\` FOR EACH ROW
      INSERT INTO \`${AUDIT_TABLE}\` VALUES (NEW.seq, NEW.entity, NEW.op, NEW.pk, NEW.row_image, NEW.targets)`);
  }
}

/** One captured change, as the audit copy of the outbox holds it: a batch row's changes each on their own. */
export interface AuditedChange {
  entity: string;
  key: string[];
  /** The outbox row's sequence, and the change's version in it. */
  seq: bigint;
  version: bigint;
  op: 'upsert' | 'delete';
  /** The targets it was captured for: all of the entity's, or the one a repair re-emitted it for. */
  targets: string[];
}

/** Every change in the audit copy of the outbox (see `auditOutbox`); with `target`, only those captured for it. */
export async function auditedChanges(primary: DataSource, target?: string): Promise<AuditedChange[]> {
  const d = dialectFor(primary, { primary: true });
  const rows = (await primary.query(`SELECT seq, entity, op, pk, row_image, targets FROM ${d.quoteTable(AUDIT_TABLE)}`)) as Array<Record<string, string>>;
  const out: AuditedChange[] = [];
  for (const r of rows) {
    const seq = BigInt(r.seq);
    const targets = r.targets.split(',');
    if (target !== undefined && !targets.includes(target)) continue;
    if (r.op === BATCH_OP) {
      const changes = JSON.parse(r.row_image) as Array<{ op: 'upsert' | 'delete'; key: string[] }>;
      changes.forEach((c, i) => out.push({ entity: r.entity, key: c.key, seq, version: BigInt(versionOf(r.seq, i)), op: c.op, targets }));
    } else {
      out.push({ entity: r.entity, key: JSON.parse(r.pk) as string[], seq, version: BigInt(versionOf(r.seq, 0)), op: r.op as 'upsert' | 'delete', targets });
    }
  }
  return out;
}

/**
 * Compares the target's ledger with the audit: each row's ledger entry must
 * hold the version (and delete flag) of the row's LAST captured change, no
 * more, no less, and there is no entry for a row never written.
 */
export async function ledgerVersionMismatches(primary: DataSource, target: DataSource, targetName: string): Promise<{ rows: number; problems: string[] }> {
  const expected = new Map<string, { version: bigint; deleted: boolean }>();
  for (const a of await auditedChanges(primary, targetName)) {
    const id = `${a.entity} ${a.key.length === 1 ? a.key[0] : JSON.stringify(a.key)}`;
    const seen = expected.get(id);
    if (!seen || a.version > seen.version) expected.set(id, { version: a.version, deleted: a.op === 'delete' });
  }
  const ledger = new Map((await ledgerRows(target, targetName)).map((l) => [`${l.entity} ${l.key}`, { version: BigInt(l.version), deleted: l.deleted }]));
  const problems: string[] = [];
  for (const [id, want] of expected) {
    const got = ledger.get(id);
    if (!got) problems.push(`${id}: no ledger entry, last change v${want.version}`);
    else if (got.version !== want.version || got.deleted !== want.deleted) {
      problems.push(`${id}: ledger v${got.version}${got.deleted ? ' (deleted)' : ''}, last change v${want.version}${want.deleted ? ' (deleted)' : ''}`);
    }
  }
  for (const id of ledger.keys()) if (!expected.has(id)) problems.push(`${id}: ledger entry for a row never captured`);
  return { rows: expected.size, problems: problems.slice(0, 10).concat(problems.length > 10 ? [`… ${problems.length - 10} more`] : []) };
}
