import type { DataSource, EntityManager } from 'typeorm';
import { COUNTERS, counterName, type ChaosEntities } from './chaos-entities';
import { randomRows } from '../support/random-rows';
import { seededRandom } from '../support/seeded-random';


export interface WriterTally {
  /** Entity writes in committed transactions. */
  changes: number;
  transactions: number;
  inserts: number;
  updates: number;
  deletes: number;
  /** Delete-then-reinsert of one key in one transaction (2 changes each). */
  reinserts: number;
  counterUpdates: number;
  /** Transactions the writer rolled back on purpose, and their writes. */
  rolledBack: number;
  rolledBackChanges: number;
  /** Transactions that failed (deadlock on a hot row, a killed connection): rolled back by the database. */
  failed: number;
}

export const emptyTally = (): WriterTally => ({
  changes: 0,
  transactions: 0,
  inserts: 0,
  updates: 0,
  deletes: 0,
  reinserts: 0,
  counterUpdates: 0,
  rolledBack: 0,
  rolledBackChanges: 0,
  failed: 0,
});

export interface WorkloadOptions {
  writer: number;
  writers: number;
  /** Committed entity writes to reach. */
  quota: number;
  seed: number;
  /** Committed changes per second for this writer; 0 = as fast as it can. */
  rate: number;
  /** Fraction of transactions rolled back on purpose. @defaultValue 0.05 */
  rollbackRate?: number;
  /** Checked before each COMMIT: when it returns true the process SIGKILLs itself there, between its writes and COMMIT. */
  dieBeforeCommit: () => boolean;
  onCommit: (tally: WriterTally) => void;
}

const OWNERS = 120;
const SLOTS = 8;
class Rollback extends Error {}

/**
 * One writer's share of the soak: random transactions of 1–40 writes over the
 * three entities through the captured paths (save/remove): inserts, updates,
 * deletes, delete-then-reinsert of one key, updates of the hot counters every
 * writer shares; some rolled back on purpose. Each writer owns its item ids
 * and pair owners, so it knows which rows exist; after a failed transaction it
 * reads them back from the primary (a COMMIT cut off by a killed connection
 * may or may not have happened).
 */
export async function runWorkload(primary: DataSource, entities: ChaosEntities, options: WorkloadOptions): Promise<WriterTally> {
  const random = seededRandom(options.seed);
  const tally = emptyTally();
  const rollbackRate = options.rollbackRate ?? 0.05;
  const { writer, writers } = options;
  const items = new Set<number>();
  const pairs = new Set<string>();
  let nextId = writer + writers;
  const started = Date.now();

  const reload = async () => {
    const itemRows = (await primary.getRepository(entities.ChaosItem).find({ select: { id: true } })) as Array<{ id: number }>;
    items.clear();
    for (const { id } of itemRows) {
      if (id % writers === writer) items.add(id);
      if (id % writers === writer && id >= nextId) nextId = id + writers;
    }
    const pairRows = (await primary.getRepository(entities.ChaosPair).find({ select: { owner: true, slot: true } })) as Array<{ owner: string; slot: number }>;
    pairs.clear();
    for (const { owner, slot } of pairRows) if (owner.startsWith(`w${writer}o`)) pairs.add(`${owner}|${slot}`);
  };
  await reload();

  const { int, itemRow, pairRow, pick } = randomRows(random);

  while (tally.changes < options.quota) {
    const budget = Math.min(1 + int(40), options.quota - tally.changes);
    const plan = { removeItems: [] as number[], saveItems: [] as number[], removePairs: [] as string[], savePairs: [] as string[], counters: [] as number[] };
    const counts = { inserts: 0, updates: 0, deletes: 0, reinserts: 0, counterUpdates: 0 };
    const touchedItems = new Set<number>();
    const touchedPairs = new Set<string>();
    const after = { items: new Set(items), pairs: new Set(pairs) };
    let writes = 0;
    let attempts = 0;
    while (writes < budget && attempts++ < budget * 4) {
      const roll = random();
      if (roll < 0.08) {
        const c = int(COUNTERS);
        if (plan.counters.includes(c)) continue;
        plan.counters.push(c);
        counts.counterUpdates++;
        writes++;
        continue;
      }
      const onItems = random() < 0.65;
      const r = random();
      const kind = r < 0.35 ? 'insert' : r < 0.68 ? 'update' : r < 0.87 ? 'delete' : 'reinsert';
      if (kind === 'reinsert' && budget - writes < 2) continue;
      if (onItems) {
        let id: number | undefined;
        if (kind === 'insert') {
          id = nextId;
          nextId += writers;
        } else id = pick(items, touchedItems);
        if (id === undefined) continue;
        touchedItems.add(id);
        if (kind === 'insert' || kind === 'update') plan.saveItems.push(id);
        if (kind === 'delete' || kind === 'reinsert') plan.removeItems.push(id);
        if (kind === 'reinsert') plan.saveItems.push(id);
        if (kind === 'insert') after.items.add(id);
        if (kind === 'delete') after.items.delete(id);
      } else {
        let key: string | undefined;
        if (kind === 'insert') {
          key = `w${writer}o${int(OWNERS).toString(36)}|${int(SLOTS)}`;
          if (pairs.has(key) || touchedPairs.has(key)) continue;
        } else key = pick(pairs, touchedPairs);
        if (key === undefined) continue;
        touchedPairs.add(key);
        if (kind === 'insert' || kind === 'update') plan.savePairs.push(key);
        if (kind === 'delete' || kind === 'reinsert') plan.removePairs.push(key);
        if (kind === 'reinsert') plan.savePairs.push(key);
        if (kind === 'insert') after.pairs.add(key);
        if (kind === 'delete') after.pairs.delete(key);
      }
      if (kind === 'insert') counts.inserts++;
      else if (kind === 'update') counts.updates++;
      else if (kind === 'delete') counts.deletes++;
      else counts.reinserts++;
      writes += kind === 'reinsert' ? 2 : 1;
    }
    if (writes === 0) continue;
    const rollback = random() < rollbackRate;
    try {
      await primary.transaction(async (m: EntityManager) => {
        const { ChaosItem, ChaosPair, ChaosCounter } = entities;
        if (plan.removeItems.length) await m.remove(ChaosItem, plan.removeItems.map((id) => m.create(ChaosItem, itemRow(id))));
        if (plan.removePairs.length) await m.remove(ChaosPair, plan.removePairs.map((k) => m.create(ChaosPair, pairRow(k))));
        if (plan.saveItems.length) await m.save(ChaosItem, plan.saveItems.map(itemRow));
        if (plan.savePairs.length) await m.save(ChaosPair, plan.savePairs.map(pairRow));
        // Sorted, so two writers updating the same hot rows lock them in one order.
        for (const c of plan.counters.sort((a, b) => a - b)) {
          await m.save(ChaosCounter, { name: counterName(c), value: String(int(2 ** 40)), writer: `w${writer}` });
        }
        if (options.dieBeforeCommit()) process.kill(process.pid, 'SIGKILL');
        if (rollback) throw new Rollback();
      });
    } catch (error) {
      if (error instanceof Rollback) {
        tally.rolledBack++;
        tally.rolledBackChanges += writes;
      } else {
        tally.failed++;
        await new Promise((r) => setTimeout(r, 50));
        await reload().catch(() => undefined);
      }
      continue;
    }
    items.clear();
    after.items.forEach((id) => items.add(id));
    pairs.clear();
    after.pairs.forEach((key) => pairs.add(key));
    tally.changes += writes;
    tally.transactions++;
    tally.inserts += counts.inserts;
    tally.updates += counts.updates;
    tally.deletes += counts.deletes;
    tally.reinserts += counts.reinserts;
    tally.counterUpdates += counts.counterUpdates;
    options.onCommit({ ...tally });
    if (options.rate > 0) {
      const due = started + (tally.changes / options.rate) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
  }
  return tally;
}
