import type { QueryRunner } from 'typeorm';
import type { KeyRange } from '../dialect/checksum-sql';
import type { Statement } from '../dialect/dialect';
import { keyString } from '../outbox/change';
import { encodeValue } from '../outbox/value-codec';
import type { ReconcileTable, Side } from './reconcile-table';
import { sameValue } from './row-compare';

/** A key range in wire keys: `after < key ≤ upTo`, an absent bound is open. */
export interface WireRange {
  after?: string[];
  upTo?: string[];
}

/** Row count and hash sum of a range on one side. */
export interface Sums {
  n: number;
  s: string;
}

export type DriftKind = 'missing' | 'extra' | 'changed';

/** A key that looked different on the first look. */
export interface Suspect {
  key: string[];
  kind: DriftKind;
}

/** A key range and its primary sums. */
export interface Part {
  range: WireRange;
  sums: Sums;
}

/**
 * A primary chunk: one group per session, each summed by one scan that
 * returns the sums of its SUBPARTS parts (GROUP BY), so a difference is
 * already narrowed to a part of the chunk when it is found.
 */
export interface PrimaryChunk {
  groups: Array<{ range: WireRange; splits: string[][]; parts: Part[] }>;
  /** Rows of the whole chunk on the primary (once `primarySums` ran). */
  rows: number;
  /** Last key of the chunk; absent when the primary has no row after the cursor. */
  last?: string[];
  /** False when the primary had fewer rows than asked for: this is the last chunk, open above. */
  full: boolean;
}

/**
 * Parts of each session's share of a chunk, summed in the chunk's own scan.
 * More parts leave fewer rows to compare one by one where a part differs
 * (1,000,000 rows, 100 drifted: 64 parts → 0.8 s of row comparisons, 256 →
 * 0.22 s), at a small cost to every scan (1,024 parts made the clean scan
 * slower than the comparisons saved). See `checksumParts` for how each
 * engine finds a row's part.
 */
const SUBPARTS = 256;

/** Parts per bisection level, and the size at which rows are compared one by one. */
const FANOUT = 64;
const LEAF = 4096;
const MAX_DEPTH = 8;
/** Rows (of the bigger side) compared per statement when many small ranges differ. */
const BATCH_ROWS = 10_000;

/**
 * Compares key ranges of one table on the primary and a target, in SQL:
 * checksums of whole chunks, bisection of a differing range into parts
 * (one GROUP BY scan of the range per level), down to the keys and hashes of
 * a few rows. Each side has its own query runner.
 */
export class RangeDiffer {
  /**
   * Each side has sessions (the same number): the parts of a chunk are
   * summed on them at once, so both databases work on several cores while
   * the reconciler holds their load to that many queries. Bisection uses the
   * first session of each side.
   */
  constructor(
    private readonly table: ReconcileTable,
    private readonly primaryRunners: readonly QueryRunner[],
    private readonly targetRunners: readonly QueryRunner[],
  ) {}

  /**
   * The next chunk of at most `limit` keys after `after` on the primary, cut
   * into parts: one read of the key index (on `runner`) finds the ends of its
   * parts (SUBPARTS per session); their sums are `primarySums`' and `targetSums`'.
   */
  async chunkBounds(after: string[] | undefined, limit: number, runner: QueryRunner): Promise<PrimaryChunk> {
    const side = this.table.primary;
    const sessions = this.primaryRunners.length;
    const count = sessions * SUBPARTS;
    const positions = [...new Set(Array.from({ length: count }, (_, i) => Math.max(1, Math.floor((limit * (i + 1)) / count))))];
    const found = await this.query(side, side.sql.keysAt(side.table, { after: after && side.keyParams(after) }, positions), runner);
    const ends = new Map(found.map((row) => [Number(row.rn), side.keyOfRow(row)]));
    // Without a key at `limit`, this is the last chunk: its last part is open above.
    const last = ends.get(limit);
    const bounds = positions.map((p) => ends.get(p)).filter((k): k is string[] => k !== undefined);
    if (!last) bounds.push(undefined as unknown as string[]);
    const per = Math.ceil(bounds.length / sessions);
    const groups: PrimaryChunk['groups'] = [];
    for (let g = 0; g * per < bounds.length; g++) {
      const mine = bounds.slice(g * per, (g + 1) * per);
      const groupAfter = g === 0 ? after : bounds[g * per - 1];
      const upTo = mine[mine.length - 1] as string[] | undefined;
      const splits = mine.slice(0, -1);
      const ranges = mine.map((end, i) => ({ after: i === 0 ? groupAfter : mine[i - 1], upTo: end as string[] | undefined }));
      groups.push({ range: { after: groupAfter, upTo }, splits, parts: ranges.map((range) => ({ range, sums: { n: 0, s: '0' } })) });
    }
    return { groups, rows: 0, last, full: last !== undefined };
  }

  /** The primary's sums of each group's parts, the groups on its sessions at once; sets them on the chunk. */
  async primarySums(chunk: PrimaryChunk): Promise<Sums[][]> {
    const side = this.table.primary;
    const sums = await Promise.all(chunk.groups.map((group, i) => this.partSums(side, group, this.primaryRunners[i % this.primaryRunners.length])));
    chunk.groups.forEach((group, i) => group.parts.forEach((part, j) => (part.sums = sums[i][j])));
    chunk.rows = sums.flat().reduce((n, part) => n + part.n, 0);
    return sums;
  }

  /** The target's sums of each group's parts, the groups on its sessions at once. */
  targetSums(groups: PrimaryChunk['groups']): Promise<Sums[][]> {
    const side = this.table.targetSide;
    return Promise.all(groups.map((group, i) => this.partSums(side, group, this.targetRunners[i % this.targetRunners.length])));
  }

  private async partSums(side: Side, group: { range: WireRange; splits: string[][] }, runner: QueryRunner): Promise<Sums[]> {
    if (group.splits.length === 0) return [await this.sums(side, group.range, runner)];
    const statement = side.sql.checksumParts(side.table, this.params(side, group.range), group.splits.map((k) => side.keyParams(k)));
    const rows = await this.query(side, statement, runner);
    const byPart = new Map(rows.map((r) => [Number(r.part), { n: Number(r.n), s: String(r.s) }]));
    return Array.from({ length: group.splits.length + 1 }, (_, i) => byPart.get(i) ?? { n: 0, s: '0' });
  }

  async sums(side: Side, range: WireRange, runner?: QueryRunner): Promise<Sums> {
    const [row] = await this.query(side, side.sql.checksum(side.table, this.params(side, range)), runner);
    return { n: Number(row?.n ?? 0), s: String(row?.s ?? '0') };
  }

  /**
   * Narrows ranges whose sums differ down to the keys that differ: the small
   * ones (at most LEAF rows a side) compared row by row, many ranges per
   * statement; the bigger ones bisected (`diff`).
   */
  async diffRanges(ranges: ReadonlyArray<{ range: WireRange; primary: Sums; target: Sums }>, session = 0, depth = 0): Promise<Suspect[]> {
    const suspects: Suspect[] = [];
    let batch: WireRange[] = [];
    let rows = 0;
    const flush = async () => {
      if (batch.length) suspects.push(...(await this.diffRows(batch, session)));
      batch = [];
      rows = 0;
    };
    for (const { range, primary, target } of ranges) {
      const biggest = Math.max(primary.n, target.n);
      if (biggest > LEAF) {
        suspects.push(...(await this.diff(range, primary, target, session, depth)));
        continue;
      }
      if (rows + biggest > BATCH_ROWS) await flush();
      batch.push(range);
      rows += biggest;
    }
    await flush();
    return suspects;
  }

  /** Narrows a range whose sums differ down to the keys that differ. */
  async diff(range: WireRange, primary: Sums, target: Sums, session = 0, depth = 0): Promise<Suspect[]> {
    const biggest = Math.max(primary.n, target.n);
    if (biggest <= LEAF || depth >= MAX_DEPTH) return this.diffRows([range], session);
    // Split where the side with more rows has every (n / FANOUT)-th key: parts of even size on that side.
    const splitter = primary.n >= target.n ? this.table.primary : this.table.targetSide;
    const step = Math.ceil(biggest / FANOUT);
    const splits = (
      await this.query(splitter, splitter.sql.splitKeys(splitter.table, this.params(splitter, range), step), this.runner(splitter, session))
    ).map((row) => splitter.keyOfRow(row));
    if (splits.length === 0) return this.diffRows([range], session);
    const parts = (side: Side) =>
      this.query(side, side.sql.checksumParts(side.table, this.params(side, range), splits.map((s) => side.keyParams(s))), this.runner(side, session));
    const [p, t] = await Promise.all([parts(this.table.primary), parts(this.table.targetSide)]);
    const byPart = (rows: Record<string, unknown>[]) => new Map(rows.map((r) => [Number(r.part), { n: Number(r.n), s: String(r.s) }]));
    const pp = byPart(p);
    const tp = byPart(t);
    const differing: Array<{ range: WireRange; primary: Sums; target: Sums }> = [];
    for (let part = 0; part <= splits.length; part++) {
      const a = pp.get(part) ?? { n: 0, s: '0' };
      const b = tp.get(part) ?? { n: 0, s: '0' };
      if (a.n === b.n && a.s === b.s) continue;
      const sub: WireRange = {
        after: part === 0 ? range.after : splits[part - 1],
        upTo: part === splits.length ? range.upTo : splits[part],
      };
      differing.push({ range: sub, primary: a, target: b });
    }
    return this.diffRanges(differing, session, depth + 1);
  }

  /**
   * Keys and row hashes of small ranges from both sides, compared: one
   * statement a side for all of them; a single range (a bisection's last
   * resort, of any size) is read in pages.
   */
  private async diffRows(ranges: readonly WireRange[], session: number): Promise<Suspect[]> {
    const rows = async (side: Side) => {
      const out = new Map<string, { key: string[]; h: string }>();
      const add = (row: Record<string, unknown>) => {
        const key = side.keyOfRow(row);
        out.set(keyString(key), { key, h: String(row.h) });
        return key;
      };
      if (ranges.length > 1) {
        const statement = side.sql.rowHashesIn(side.table, ranges.map((range) => this.params(side, range)));
        for (const row of await this.query(side, statement, this.runner(side, session))) add(row);
        return out;
      }
      let after = ranges[0].after;
      for (;;) {
        const page = await this.query(side, side.sql.rowHashes(side.table, this.params(side, { after, upTo: ranges[0].upTo }), 10_000), this.runner(side, session));
        for (const row of page) after = add(row);
        if (page.length < 10_000) return out;
      }
    };
    const [p, t] = await Promise.all([rows(this.table.primary), rows(this.table.targetSide)]);
    const suspects: Suspect[] = [];
    for (const [id, row] of p) {
      const other = t.get(id);
      if (!other) suspects.push({ key: row.key, kind: 'missing' });
      else if (other.h !== row.h) suspects.push({ key: row.key, kind: 'changed' });
    }
    for (const [id, row] of t) if (!p.has(id)) suspects.push({ key: row.key, kind: 'extra' });
    return suspects;
  }

  /**
   * Keys whose Node-compared columns (JSON and the like, which the SQL hash
   * leaves out) differ within a range; rows present on one side only are
   * the SQL checksum's to find.
   */
  async diffNodeColumns(range: WireRange, session = 0): Promise<Suspect[]> {
    const columns = this.table.nodeColumns;
    if (columns.length === 0) return [];
    const values = async (side: Side) => {
      const mysql = side.dialect.name === 'mysql';
      const checksumColumns = columns.map((c) => ({ facts: side.role === 'primary' ? c.primary : c.target, norm: c.norm, nullBit: c.nullBit }));
      const statement = side.sql.page(side.table, this.params(side, range), checksumColumns);
      const out = new Map<string, { key: string[]; values: unknown[] }>();
      for (const row of await this.query(side, statement, this.runner(side, session))) {
        const key = side.keyOfRow(row);
        out.set(keyString(key), { key, values: columns.map((c, i) => encodeValue(c.source.kind, row[`v${i}`], mysql)) });
      }
      return out;
    };
    const [p, t] = await Promise.all([values(this.table.primary), values(this.table.targetSide)]);
    const suspects: Suspect[] = [];
    for (const [id, row] of p) {
      const other = t.get(id);
      if (!other) continue;
      const differs = columns.some((c, i) => !sameValue(c, row.values[i] as never, other.values[i] as never));
      if (differs) suspects.push({ key: row.key, kind: 'changed' });
    }
    return suspects;
  }

  private params(side: Side, range: WireRange): KeyRange {
    return { after: range.after && side.keyParams(range.after), upTo: range.upTo && side.keyParams(range.upTo) };
  }

  private runner(side: Side, session: number): QueryRunner {
    const runners = side.role === 'primary' ? this.primaryRunners : this.targetRunners;
    return runners[session % runners.length];
  }

  private async query(side: Side, statement: Statement, runner?: QueryRunner): Promise<Record<string, unknown>[]> {
    const session = runner ?? (side.role === 'primary' ? this.primaryRunners[0] : this.targetRunners[0]);
    return (await session.query(statement.sql, statement.params)) as Record<string, unknown>[];
  }
}
