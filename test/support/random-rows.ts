/** A row of the integer-keyed test entity (FaultItem, ChaosItem): quotes and `%` in its text on purpose. */
export interface ItemRow {
  id: number;
  label: string;
  qty: number;
  note: string | null;
}
/** A row of the composite-string-keyed test entity (FaultPair, ChaosPair), keyed `owner|slot`. */
export interface PairRow {
  owner: string;
  slot: number;
  total: string;
}

/**
 * Random rows for the write streams of the fault tests and the chaos soak,
 * drawn from `random` (seeded, so a run can be replayed), and `pick`: a
 * random member of `set` not yet in `touched` (a few tries, else none).
 */
export function randomRows(random: () => number) {
  const int = (n: number) => Math.floor(random() * n);
  const itemRow = (id: number): ItemRow => ({ id, label: `l-${int(1e6).toString(36)}-'"%`, qty: int(2 ** 31) - 2 ** 30, note: random() < 0.2 ? null : `n${int(1e9)}` });
  const pairRow = (key: string): PairRow => {
    const [owner, slot] = key.split('|');
    return { owner, slot: Number(slot), total: String(BigInt(int(2 ** 30)) * BigInt(int(2 ** 22)) - 1000n) };
  };
  const pick = <T>(set: Set<T>, touched: Set<T>): T | undefined => {
    if (set.size === 0) return undefined;
    const all = [...set];
    for (let tries = 0; tries < 8; tries++) {
      const candidate = all[int(all.length)];
      if (!touched.has(candidate)) return candidate;
    }
    return undefined;
  };
  return { int, itemRow, pairRow, pick };
}
