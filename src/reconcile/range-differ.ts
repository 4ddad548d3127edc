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

/** A primary chunk, cut into parts that the target sums concurrently: each part's range and primary sums. */
export interface PrimaryChunk {
  parts: Array<{ range: WireRange; sums: Sums }>;
  /** Rows of the whole chunk on the primary. */
  rows: number;
  /** Last key of the chunk; absent when the primary has no row after the cursor. */
  last?: string[];
  /** False when the primary had fewer rows than asked for: this is the last chunk, open above. */
  full: boolean;
}

/** Parts per bisection level, and the size at which rows are compared one by one. */
const FANOUT = 64;
const LEAF = 256;
const MAX_DEPTH = 8;

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
   * into one part per session, each summed by an index range read of the
   * primary key.
   */
  async primaryChunk(after: string[] | undefined, limit: number): Promise<PrimaryChunk> {
    const side = this.table.primary;
    const t = side.table;
    const afterParams = after && side.keyParams(after);
    const count = this.primaryRunners.length;
    // The keys at every (limit / count)-th position: the parts' ends, the last one the chunk's.
    const positions = Array.from({ length: count }, (_, i) => Math.max(1, Math.floor((limit * (i + 1)) / count)));
    const found = await this.query(side, side.sql.keysAt(t, { after: afterParams }, [...new Set(positions)]));
    const boundary = found.find((row) => Number(row.rn) === limit);
    const splits = found.filter((row) => Number(row.rn) < limit).map((row) => side.keyOfRow(row));
    // Without a key at `limit`, this is the last chunk: its last part is open above.
    const last = boundary ? side.keyOfRow(boundary) : undefined;
    const ends: Array<string[] | undefined> = [...splits, last];
    const ranges: WireRange[] = ends.map((upTo, i) => ({ after: i === 0 ? after : splits[i - 1], upTo }));
    const sums = await Promise.all(ranges.map((range, i) => this.sums(side, range, this.primaryRunners[i % count])));
    const parts = ranges.map((range, i) => ({ range, sums: sums[i] }));
    return { parts, rows: parts.reduce((n, p) => n + p.sums.n, 0), last, full: last !== undefined };
  }

  async sums(side: Side, range: WireRange, runner?: QueryRunner): Promise<Sums> {
    const [row] = await this.query(side, side.sql.checksum(side.table, this.params(side, range)), runner);
    return { n: Number(row?.n ?? 0), s: String(row?.s ?? '0') };
  }

  /** The target's sums of each range, on its sessions at once. */
  targetSums(ranges: readonly WireRange[]): Promise<Sums[]> {
    const side = this.table.targetSide;
    return Promise.all(ranges.map((range, i) => this.sums(side, range, this.targetRunners[i % this.targetRunners.length])));
  }

  /** Narrows a range whose sums differ down to the keys that differ. */
  async diff(range: WireRange, primary: Sums, target: Sums, depth = 0): Promise<Suspect[]> {
    const biggest = Math.max(primary.n, target.n);
    if (biggest <= LEAF || depth >= MAX_DEPTH) return this.diffRows(range);
    // Split where the side with more rows has every (n / FANOUT)-th key: parts of even size on that side.
    const splitter = primary.n >= target.n ? this.table.primary : this.table.targetSide;
    const step = Math.ceil(biggest / FANOUT);
    const splits = (await this.query(splitter, splitter.sql.splitKeys(splitter.table, this.params(splitter, range), step))).map((row) =>
      splitter.keyOfRow(row),
    );
    if (splits.length === 0) return this.diffRows(range);
    const parts = (side: Side) =>
      this.query(side, side.sql.checksumParts(side.table, this.params(side, range), splits.map((s) => side.keyParams(s))));
    const [p, t] = await Promise.all([parts(this.table.primary), parts(this.table.targetSide)]);
    const byPart = (rows: Record<string, unknown>[]) => new Map(rows.map((r) => [Number(r.part), { n: Number(r.n), s: String(r.s) }]));
    const pp = byPart(p);
    const tp = byPart(t);
    const suspects: Suspect[] = [];
    for (let part = 0; part <= splits.length; part++) {
      const a = pp.get(part) ?? { n: 0, s: '0' };
      const b = tp.get(part) ?? { n: 0, s: '0' };
      if (a.n === b.n && a.s === b.s) continue;
      const sub: WireRange = {
        after: part === 0 ? range.after : splits[part - 1],
        upTo: part === splits.length ? range.upTo : splits[part],
      };
      suspects.push(...(await this.diff(sub, a, b, depth + 1)));
    }
    return suspects;
  }

  /** Keys and row hashes of a small range from both sides, compared. */
  private async diffRows(range: WireRange): Promise<Suspect[]> {
    const rows = async (side: Side) => {
      const out = new Map<string, { key: string[]; h: string }>();
      let after = range.after;
      for (;;) {
        const page = await this.query(side, side.sql.rowHashes(side.table, this.params(side, { after, upTo: range.upTo }), 10_000));
        for (const row of page) {
          const key = side.keyOfRow(row);
          out.set(keyString(key), { key, h: String(row.h) });
          after = key;
        }
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
  async diffNodeColumns(range: WireRange): Promise<Suspect[]> {
    const columns = this.table.nodeColumns;
    if (columns.length === 0) return [];
    const values = async (side: Side) => {
      const mysql = side.dialect.name === 'mysql';
      const checksumColumns = columns.map((c) => ({ facts: side.role === 'primary' ? c.primary : c.target, norm: c.norm, nullBit: c.nullBit }));
      const statement = side.sql.page(side.table, this.params(side, range), checksumColumns);
      const out = new Map<string, { key: string[]; values: unknown[] }>();
      for (const row of await this.query(side, statement)) {
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

  private async query(side: Side, statement: Statement, runner?: QueryRunner): Promise<Record<string, unknown>[]> {
    const session = runner ?? (side.role === 'primary' ? this.primaryRunners[0] : this.targetRunners[0]);
    return (await session.query(statement.sql, statement.params)) as Record<string, unknown>[];
  }
}
