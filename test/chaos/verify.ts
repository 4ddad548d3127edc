import { isDeepStrictEqual } from 'node:util';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { dialectFor } from '../../src/dialect/dialect-for';
import type { ReplicatedEntity } from '../../src/metadata/replicated-entity';
import { snapshot } from '../support/compare';
import { auditedChanges, ledgerKeyOf, ledgerRows, type LedgerRow } from '../integration/faults/convergence';

/**
 * The soak's own full comparison of a target with the primary's final state,
 * independent of the reconciler's SQL checksums: every row of every entity,
 * read on both sides and compared as wire values.
 */
export interface Drift {
  /** Rows compared on the primary. */
  rows: number;
  /** On the primary, missing in the target. */
  lost: number;
  /** In the target, deleted on (or never on) the primary. */
  resurrected: number;
  /** In both, with other content (an older version's). */
  stale: number;
  samples: string[];
  /** Every differing key (entity, snapshot key `a|1`). */
  drifted: Array<{ entity: string; key: string; kind: 'lost' | 'resurrected' | 'stale' }>;
}

export const noDrift = (d: Drift) => d.lost + d.resurrected + d.stale === 0;

export async function compareWithPrimary(primary: DataSource, targetOptions: DataSourceOptions, targetName: string, entities: ReplicatedEntity[]): Promise<Drift> {
  const target = new DataSource(targetOptions);
  await target.initialize();
  try {
    const pd = dialectFor(primary, { primary: true });
    const td = dialectFor(target, { target: targetName });
    const drift: Drift = { rows: 0, lost: 0, resurrected: 0, stale: 0, samples: [], drifted: [] };
    const sample = (line: string) => drift.samples.length < 10 && drift.samples.push(line);
    for (const entity of entities) {
      const [p, t] = await Promise.all([snapshot(primary, pd, entity), snapshot(target, td, entity)]);
      drift.rows += p.size;
      for (const [key, row] of p) {
        const there = t.get(key);
        if (!there) {
          drift.lost++;
          drift.drifted.push({ entity: entity.name, key, kind: 'lost' });
          sample(`${targetName} ${entity.name} ${key}: lost (on the primary, missing in the target)`);
        } else if (!isDeepStrictEqual(row, there)) {
          drift.stale++;
          drift.drifted.push({ entity: entity.name, key, kind: 'stale' });
          sample(`${targetName} ${entity.name} ${key}: stale ${JSON.stringify(there)} ≠ primary ${JSON.stringify(row)}`);
        }
      }
      for (const key of t.keys()) {
        if (!p.has(key)) {
          drift.resurrected++;
          drift.drifted.push({ entity: entity.name, key, kind: 'resurrected' });
          sample(`${targetName} ${entity.name} ${key}: resurrected (in the target, not on the primary)`);
        }
      }
    }
    return drift;
  } finally {
    await target.destroy();
  }
}

/**
 * Drift that losing Redis cannot explain. Redis forgets jobs the relay moved
 * there BEFORE it died; a change captured after that moment (outbox sequence
 * above `watermark`) was still in the outbox then, so it must arrive without
 * the reconciler's help. `lastCaptured` maps `entity|key` to the sequence of
 * the key's last captured change; a drifted key with none at all (a row of a
 * rolled-back or killed transaction on a target) is unexplained too.
 */
export function unexplainedDrift(
  drift: Record<string, Drift>,
  lastCaptured: Map<string, { seq: bigint; version: bigint; op: string }>,
  watermark: bigint | undefined,
  ledgers: Record<string, Map<string, LedgerRow>>,
): string[] {
  const out: string[] = [];
  for (const [target, d] of Object.entries(drift)) {
    for (const { entity, key, kind } of d.drifted) {
      const last = lastCaptured.get(`${entity} ${key}`);
      const entry = ledgers[target]?.get(`${entity} ${ledgerKeyOf(key)}`);
      const ledger = entry ? `target ledger v${entry.version}${entry.deleted ? ' (tombstone)' : ''}` : 'no target ledger entry';
      if (last === undefined) out.push(`${target} ${entity} ${key}: ${kind}, but no change of this key was ever captured; ${ledger}`);
      else if (watermark === undefined || last.seq > watermark) {
        out.push(`${target} ${entity} ${key}: ${kind}; last change ${last.op} v${last.version} (outbox row ${last.seq}), captured after Redis lost its data (watermark: outbox row ${watermark ?? 'none'}); ${ledger}`);
      }
    }
  }
  return out;
}

/** A target's version ledger by `entity key` (ledger key form). */
export async function ledgerOf(options: DataSourceOptions, targetName: string): Promise<Map<string, LedgerRow>> {
  const target = new DataSource(options);
  await target.initialize();
  try {
    return new Map((await ledgerRows(target, targetName)).map((l) => [`${l.entity} ${l.key}`, l]));
  } finally {
    await target.destroy();
  }
}

/**
 * Each key's last change the application wrote (its outbox row's sequence,
 * and its op), from the audit copy of the outbox (see `auditOutbox`): rows
 * captured for all of `targets`. A repair re-emits a key for the one target
 * it repairs; the drift it fixes is explained (or not) by the application's
 * own last change. (Counted, a recovery repair applied between the soak's
 * table read and its ledger read looked like a change made after the loss
 * that never arrived.)
 */
export async function lastCapturedChanges(primary: DataSource, targets: readonly string[]): Promise<Map<string, { seq: bigint; version: bigint; op: string }>> {
  const out = new Map<string, { seq: bigint; version: bigint; op: string }>();
  for (const c of await auditedChanges(primary)) {
    if (!targets.every((t) => c.targets.includes(t))) continue;
    const id = `${c.entity} ${c.key.map(String).join('|')}`;
    if (!out.has(id) || out.get(id)!.version < c.version) out.set(id, { seq: c.seq, version: c.version, op: c.op });
  }
  return out;
}
