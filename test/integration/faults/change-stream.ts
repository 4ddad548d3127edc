import type { DataSource, EntityManager } from 'typeorm';
import type { FaultEntities } from '../../fixtures/fault-entities';
import { randomRows, type ItemRow, type PairRow } from '../../support/random-rows';
import { seededRandom } from '../../support/seeded-random';


export interface StreamStats {
  changes: number;
  transactions: number;
  inserts: number;
  updates: number;
  deletes: number;
  /** Delete-then-reinsert of the same key in one transaction (2 changes each). */
  reinserts: number;
  ms: number;
}

export interface StreamOptions {
  /** Entity writes in all. */
  total: number;
  /** Entity writes per transaction. @defaultValue 50 */
  perTransaction?: number;
  seed: number;
  /** Called after each commit with the number of writes committed so far. */
  onCommit?: (changes: number) => void | Promise<void>;
}

const OWNERS = 300;
const SLOTS = 8;

/**
 * Writes a random stream of inserts, updates, deletes and delete-then-reinserts
 * of both fault entities through the captured write paths (save/remove), in
 * transactions of about `perTransaction` writes. Keys are never touched twice
 * in one transaction except by a delete-then-reinsert.
 */
export async function streamChanges(primary: DataSource, entities: FaultEntities, options: StreamOptions): Promise<StreamStats> {
  const random = seededRandom(options.seed);
  const perTransaction = options.perTransaction ?? 50;
  const items = new Set<number>();
  const pairs = new Set<string>();
  let nextId = 1;
  const stats: StreamStats = { changes: 0, transactions: 0, inserts: 0, updates: 0, deletes: 0, reinserts: 0, ms: 0 };
  const started = Date.now();

  const { int, itemRow, pairRow, pick } = randomRows(random);

  while (stats.changes < options.total) {
    const budget = Math.min(perTransaction, options.total - stats.changes);
    const removeItems: ItemRow[] = [];
    const saveItems: ItemRow[] = [];
    const removePairs: PairRow[] = [];
    const savePairs: PairRow[] = [];
    const touchedItems = new Set<number>();
    const touchedPairs = new Set<string>();
    const after = { items: new Set(items), pairs: new Set(pairs) };
    let writes = 0;
    let attempts = 0;
    while (writes < budget && attempts++ < budget * 4) {
      const onItems = random() < 0.7;
      const roll = random();
      const kind = roll < 0.35 ? 'insert' : roll < 0.7 ? 'update' : roll < 0.87 ? 'delete' : 'reinsert';
      if (kind === 'reinsert' && budget - writes < 2) continue;
      if (onItems) {
        if (kind === 'insert') {
          const id = nextId++;
          touchedItems.add(id);
          saveItems.push(itemRow(id));
          after.items.add(id);
          stats.inserts++;
          writes++;
          continue;
        }
        const id = pick(items, touchedItems);
        if (id === undefined) continue;
        touchedItems.add(id);
        if (kind === 'update') {
          saveItems.push(itemRow(id));
          stats.updates++;
          writes++;
        } else if (kind === 'delete') {
          removeItems.push(itemRow(id));
          after.items.delete(id);
          stats.deletes++;
          writes++;
        } else {
          removeItems.push(itemRow(id));
          saveItems.push(itemRow(id));
          stats.reinserts++;
          writes += 2;
        }
      } else {
        if (kind === 'insert') {
          const key = `o${int(OWNERS).toString(36)}|${int(SLOTS)}`;
          if (pairs.has(key) || touchedPairs.has(key)) continue;
          touchedPairs.add(key);
          savePairs.push(pairRow(key));
          after.pairs.add(key);
          stats.inserts++;
          writes++;
          continue;
        }
        const key = pick(pairs, touchedPairs);
        if (key === undefined) continue;
        touchedPairs.add(key);
        if (kind === 'update') {
          savePairs.push(pairRow(key));
          stats.updates++;
          writes++;
        } else if (kind === 'delete') {
          removePairs.push(pairRow(key));
          after.pairs.delete(key);
          stats.deletes++;
          writes++;
        } else {
          removePairs.push(pairRow(key));
          savePairs.push(pairRow(key));
          stats.reinserts++;
          writes += 2;
        }
      }
    }
    await primary.transaction(async (m: EntityManager) => {
      if (removeItems.length) await m.remove(entities.FaultItem, removeItems.map((r) => m.create(entities.FaultItem, r)));
      if (removePairs.length) await m.remove(entities.FaultPair, removePairs.map((r) => m.create(entities.FaultPair, r)));
      if (saveItems.length) await m.save(entities.FaultItem, saveItems);
      if (savePairs.length) await m.save(entities.FaultPair, savePairs);
    });
    items.clear();
    after.items.forEach((id) => items.add(id));
    pairs.clear();
    after.pairs.forEach((key) => pairs.add(key));
    stats.changes += writes;
    stats.transactions++;
    await options.onCommit?.(stats.changes);
  }
  stats.ms = Date.now() - started;
  return stats;
}
