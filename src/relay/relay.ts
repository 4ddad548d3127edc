import type { JobsOptions } from 'bullmq';
import type { DataSource } from 'typeorm';
import type { Dialect } from '../dialect/dialect';
import { OUTBOX_TABLE } from '../../migrations/table-names';
import type { Logger } from '../observability/logger';
import { APPLY_JOB, type ApplyJobData } from '../queue/apply-job';
import { batchJobId } from '../queue/job-id';
import type { QueueSet } from '../queue/queue-set';
import type { DualWriteEvents } from '../observability/dual-write-events';
import { compareSeq, relayedJson, relayedRowOf, type OutboxRow, type RelayedRow } from './outbox-row';
import { rawJobData } from '../queue/raw-json-queue';
import { startRelaySpans } from '../observability/tracing';
import { DriverConnections } from '../dialect/driver-connections';

export interface RelayOptions {
  batchSize: number;
  jobSize: number;
  /** Options every apply job gets (attempts, backoff, retention). */
  jobOptions: JobsOptions;
  /**
   * While nudges keep coming, drains start at most this often (ms). The
   * first nudge after a quiet spell starts one at once; commits during a
   * drain are relayed together by the next one, this long after the last
   * one started. @defaultValue 5
   */
  coalesceMs?: number;
}

/** See `RelayOptions.coalesceMs`: a claim transaction costs about as much as a small save, so busy relays batch. */
const COALESCE_MS = 5;

/**
 * Published rows are deleted from the outbox at most this often (ms): the
 * delete is off the commit → applied path, and each statement is a round
 * trip for the application's process. Well under the workers' poll
 * interval, so their polls do not relay the rows again (see `nudgeUpTo`).
 */
const DELETE_EVERY_MS = 50;

/** What one relay pass (or `enqueue`) moved: outbox rows, the changes they held, and the jobs they became. */
export interface RelayPass {
  rows: number;
  changes: number;
  jobs: number;
  /** The claim took as many rows as it asked for: more may be waiting. */
  full?: boolean;
}

/**
 * Changes one claim should hold, about: an outbox row holds up to 1,000
 * changes, so `batchSize` rows of them could be millions of changes in memory
 * at once. The first claim asks for 20 rows (at most 20,000 changes); later
 * ones for up to `batchSize` rows, this many changes' worth at the changes per
 * row the previous claim saw. (Only a claim right after the rows grow much
 * larger can take more: one claim, up to `batchSize` rows.)
 */
const CLAIM_CHANGES = 20_000;
const FIRST_CLAIM_ROWS = CLAIM_CHANGES / 1000;

/**
 * Moves outbox rows to the target queues: claims a batch with
 * `FOR UPDATE SKIP LOCKED`, adds one job per `jobSize` changes per target,
 * and deletes the rows only after Redis acknowledged the adds, all in one
 * primary transaction on a connection of its own (`DriverConnections`). A
 * crash anywhere leaves the rows (or duplicates jobs, which the version gate
 * makes harmless); several relays never wait on each other's rows.
 */
export class Relay {
  private draining?: Promise<number>;
  private again = false;
  /** A bounded drain is due (see `nudgeUpTo`). */
  private upTo?: string;
  private retryTimer?: NodeJS.Timeout;
  /** Sleeps `close()` cuts short (see `waitUntil`). */
  private readonly pauses = new Set<{ timer: NodeJS.Timeout; resume: () => void }>();
  private lastStarted = 0;
  private lastPublished = 0;
  private lastDeleted = 0;
  private closed = false;
  /** Committed rows waiting for the running publish (see `publish`). */
  private pending: OutboxRow[] = [];
  private publishing?: Promise<void>;
  /** Set when a publish failed: commits are relayed by claims until a drain succeeds. */
  private publishFailed = false;
  /** Sequences of published rows still to delete from the outbox. */
  private deletions: string[] = [];
  /**
   * Sequences of rows this process relays from memory (`publish`), from the
   * commit until their delete ran: this process's claims leave them alone, or
   * a claim started by another commit's nudge would queue them a second time.
   */
  private readonly held = new Set<string>();
  private deleting?: Promise<void>;
  /** Two: a drain behind a backlog runs two passes at once (see `drain`). */
  private readonly connections: DriverConnections;
  /** Rows the next claim asks for (see FIRST_CLAIM_ROWS). */
  private claimRows: number;

  constructor(
    primary: DataSource,
    private readonly dialect: Dialect,
    private readonly queues: QueueSet,
    private readonly logger: Logger,
    private readonly options: RelayOptions,
    private readonly events?: DualWriteEvents,
  ) {
    this.connections = new DriverConnections(primary, dialect.name, 2);
    this.claimRows = Math.min(FIRST_CLAIM_ROWS, options.batchSize);
  }

  /**
   * One claim → enqueue → delete transaction of up to `batchSize` rows, about
   * CLAIM_CHANGES changes; with `upTo`, of rows with sequences up to that only.
   */
  async relayOnce(upTo?: string): Promise<RelayPass> {
    const outbox = this.dialect.outbox;
    const limit = this.claimRows;
    return this.connections.run(async (connection) => {
      let rows: OutboxRow[];
      if (outbox.claimScript) {
        // BEGIN and the claim in one round trip (PostgreSQL).
        rows = (await connection.query(outbox.claimScript(OUTBOX_TABLE, limit, upTo, [...this.held]))) as unknown as OutboxRow[];
      } else {
        // The transaction and the claim in one round trip where the driver can (see `queryAll`).
        const claim = outbox.claim(OUTBOX_TABLE, limit, upTo, [...this.held]);
        const begin = outbox.claimIsolation ? [`SET TRANSACTION ISOLATION LEVEL ${outbox.claimIsolation}`] : [];
        const results = await connection.queryAll([...begin.map((sql) => ({ sql })), { sql: 'START TRANSACTION' }, claim]);
        rows = results[results.length - 1] as OutboxRow[];
      }
      if (rows.length === 0) {
        await connection.query('COMMIT');
        return { rows: 0, changes: 0, jobs: 0, full: false };
      }
      // DELETE … RETURNING returns rows in no particular order.
      if (outbox.claimDeletes) rows.sort((a, b) => compareSeq(a.seq, b.seq));
      const pass = await this.enqueue(rows);
      if (outbox.claimDeletes) {
        await connection.query('COMMIT');
      } else {
        const deletion = outbox.delete(OUTBOX_TABLE, rows.map((r) => String(r.seq)));
        await connection.queryAll([deletion, { sql: 'COMMIT' }]);
      }
      this.events?.emit('relayed', pass);
      this.claimRows = Math.max(1, Math.min(this.options.batchSize, Math.floor((CLAIM_CHANGES * rows.length) / Math.max(1, pass.changes))));
      return { ...pass, full: rows.length >= limit };
    });
  }

  /**
   * Adds the apply jobs of these outbox rows' changes (in version order) to
   * their targets' queues: per target, jobs of `jobSize` changes (whole rows:
   * a batch row larger than that is a job of its own), with the relay's job
   * options and ids. Resolves once Redis acknowledged every add. The
   * backfill adds its pages this way. `written`: rows this process has just
   * written (commits relayed from memory, backfill pages), whose text is
   * embedded without a parse (see `relayedRowOf`).
   */
  async enqueue(rows: readonly OutboxRow[], written = false): Promise<RelayPass> {
    const byTarget = new Map<string, RelayedRow[]>();
    const traced: RelayedRow[] = [];
    let changes = 0;
    for (const row of rows) {
      const relayed = relayedRowOf(row, written);
      changes += relayed.count;
      if (relayed.trace) traced.push(relayed);
      for (const target of row.targets.split(',')) {
        const list = byTarget.get(target) ?? [];
        list.push(relayed);
        byTarget.set(target, list);
      }
    }
    let jobs = 0;
    // A relay span per traced request; the jobs carry its traceparent, so the apply continues from it.
    const spans = startRelaySpans(traced);
    await Promise.all(
      [...byTarget].map(([target, relayed]) => {
        const bulk = [];
        for (let start = 0; start < relayed.length; ) {
          let end = start;
          for (let changes = 0; end < relayed.length && (end === start || changes + relayed[end].count <= this.options.jobSize); end++) changes += relayed[end].count;
          bulk.push({
            name: APPLY_JOB,
            data: rawJobData<ApplyJobData>(applyJobJson(target, relayed.slice(start, end))),
            opts: { ...this.options.jobOptions, jobId: batchJobId(target, relayed.slice(start, end).map((r) => r.version), relayed[end - 1].lastVersion) },
          });
          start = end;
        }
        jobs += bulk.length;
        const queue = this.queues.get(target);
        // One job (most commits): one script call; addBulk would build an ioredis pipeline, which copies
        // every script BullMQ defines onto it (4% of a saving process's busy time in a profile).
        return bulk.length === 1 ? queue.add(bulk[0].name, bulk[0].data, bulk[0].opts) : queue.addBulk(bulk);
      }),
    ).catch((error: unknown) => {
      spans.end(error);
      throw error;
    });
    spans.end();
    return { rows: rows.length, changes, jobs };
  }

  /**
   * Relays rows this process has just committed, from memory (the outbox
   * returned their sequences in the committing transaction): their jobs are
   * added at once after a quiet spell, else with the other commits of the
   * next `coalesceMs`, without a claim transaction; the rows are deleted from the
   * outbox afterwards, off the commit → applied path. As with a claim, the
   * rows stay until Redis acknowledged their jobs: a crash before that
   * leaves them for the workers' relay loops, and a crash before the delete
   * has them relayed twice, which the version gate makes harmless. Falls back
   * to `nudge` (a claim) when too many rows are waiting or an add failed.
   */
  publish(rows: readonly OutboxRow[]): void {
    if (this.closed) return;
    if (this.publishFailed || this.pending.length + rows.length > this.options.batchSize) {
      this.nudge();
      return;
    }
    for (const row of rows) {
      this.pending.push(row);
      this.held.add(row.seq);
    }
    this.publishing ??= this.runPublishes();
  }

  private async runPublishes(): Promise<void> {
    while (this.pending.length > 0) {
      // As drains: adds start at least `coalesceMs` apart, so a busy process adds one job per few commits, not per commit.
      await this.waitUntil(this.lastPublished + (this.options.coalesceMs ?? COALESCE_MS));
      this.lastPublished = Date.now();
      const rows = this.pending;
      this.pending = [];
      try {
        this.events?.emit('relayed', await this.enqueue(rows, true));
        for (const row of rows) this.deletions.push(row.seq);
        this.deleting ??= this.runDeletions();
      } catch (error) {
        this.logger.warn({ err: error }, 'relay could not add the jobs of committed changes; their outbox rows stay and will be relayed again');
        for (const row of rows) this.held.delete(row.seq);
        this.publishFailed = true;
        this.nudge();
      }
    }
    this.publishing = undefined;
  }

  /**
   * Deletes published rows, up to a claim batch per statement, at most every
   * `DELETE_EVERY_MS`: on a busy process one statement covers the rows of
   * many adds. A failure only leaves them to be relayed again.
   */
  private async runDeletions(): Promise<void> {
    while (this.deletions.length > 0) {
      await this.waitUntil(this.lastDeleted + DELETE_EVERY_MS);
      this.lastDeleted = Date.now();
      const seqs = this.deletions.splice(0, this.options.batchSize);
      const outbox = this.dialect.outbox;
      const deletion = outbox.deleteScript ? { sql: outbox.deleteScript(OUTBOX_TABLE, seqs), params: undefined } : outbox.delete(OUTBOX_TABLE, seqs);
      try {
        await this.connections.run((connection) => connection.query(deletion.sql, deletion.params));
      } catch (error) {
        this.logger.warn({ err: error, rows: seqs.length }, 'relay could not delete the outbox rows of relayed changes; they will be relayed again (harmless: the version gate skips them)');
      } finally {
        for (const seq of seqs) this.held.delete(seq);
      }
    }
    this.deleting = undefined;
  }

  /**
   * Relays until the outbox is empty (or only holds rows other relays have
   * claimed); returns how many changes it relayed. Behind a backlog (the
   * first pass claimed all it asked for), two passes run at once on two
   * connections, so one claims while the other waits for Redis; SKIP LOCKED
   * keeps their rows apart.
   */
  async drain(upTo?: string): Promise<number> {
    const first = await this.relayOnce(upTo);
    if (!first.full) return first.changes;
    const loop = async (): Promise<number> => {
      let total = 0;
      for (;;) {
        const pass = await this.relayOnce(upTo);
        total += pass.changes;
        if (!pass.full) return total;
      }
    };
    const [a, b] = await Promise.all([loop(), loop()]);
    return first.changes + a + b;
  }

  /**
   * Asks for a drain soon; called after each commit that wrote the outbox.
   * One drain runs at a time, and drains start at least `coalesceMs` apart
   * (see RelayOptions): nudges in between coalesce into one drain, so a busy
   * application pays one claim transaction per batch of commits, not per
   * commit. Failures are retried with a growing delay; the worker's
   * relay loop is the safety net.
   */
  nudge(): void {
    if (this.closed) return;
    this.again = true;
    if (!this.draining) this.draining = this.runDrains(0);
  }

  /**
   * Asks for a drain of the rows with sequences up to `upTo` only: a
   * worker's poll, which leaves rows newer than its previous poll to the
   * process that committed them (it relays them within milliseconds, see
   * `publish`; a claim in between would relay them twice).
   */
  nudgeUpTo(upTo: string): void {
    if (this.closed) return;
    if (this.upTo === undefined || compareSeq(upTo, this.upTo) > 0) this.upTo = upTo;
    if (!this.draining) this.draining = this.runDrains(0);
  }

  /** The newest sequence in the outbox, or undefined when it is empty. */
  async newestSeq(): Promise<string | undefined> {
    if (this.closed) return undefined;
    const [row] = await this.connections.run((connection) => connection.query(this.dialect.outbox.newestSeq(OUTBOX_TABLE)));
    return row?.seq == null ? undefined : String(row.seq);
  }

  private async runDrains(failures: number): Promise<number> {
    let total = 0;
    try {
      while ((this.again || this.upTo !== undefined) && !this.closed) {
        await this.waitUntil(this.lastStarted + (this.options.coalesceMs ?? COALESCE_MS));
        if (this.closed) break;
        // A full drain covers a bounded one.
        const upTo = this.again ? undefined : this.upTo;
        this.again = false;
        this.upTo = undefined;
        this.lastStarted = Date.now();
        total += await this.drain(upTo);
        this.publishFailed = false;
      }
      this.draining = undefined;
    } catch (error) {
      this.draining = undefined;
      if (!this.closed) {
        const delay = Math.min(100 * 2 ** failures, 10_000);
        this.logger.warn({ err: error, retryInMs: delay }, 'relay failed; outbox rows stay and will be relayed again');
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.again = true;
          if (!this.draining && !this.closed) this.draining = this.runDrains(failures + 1);
        }, delay);
        this.retryTimer.unref();
      }
    }
    return total;
  }

  /** Sleeps until `time` (ms since the epoch); `close()` cuts it short. */
  private async waitUntil(time: number): Promise<void> {
    const ms = time - Date.now();
    if (ms <= 0 || this.closed) return;
    await new Promise<void>((resolve) => {
      const pause = {
        timer: setTimeout(() => pause.resume(), ms),
        resume: () => {
          clearTimeout(pause.timer);
          this.pauses.delete(pause);
          resolve();
        },
      };
      this.pauses.add(pause);
    });
  }

  /** Waits for running publishes, deletes and drains to finish; later commits and nudges are left to the workers. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const pause of [...this.pauses]) pause.resume();
    await this.idle();
    await this.connections.end();
  }

  /** Resolves when no publish, delete or drain is running or due (tests and the demo use it). */
  async idle(): Promise<void> {
    for (;;) {
      const running = this.publishing ?? this.deleting ?? this.draining;
      if (!running) return;
      await running.catch(() => undefined);
    }
  }
}

/**
 * The JSON of `{ target, changes, runs? }` (ApplyJobData): single changes in
 * `changes`, batch rows as `runs`, built around the outbox's JSON text.
 */
function applyJobJson(target: string, rows: readonly RelayedRow[]): string {
  const singles: string[] = [];
  const runs: string[] = [];
  for (const row of rows) (row.single ? singles : runs).push(relayedJson(row));
  return `{"target":${JSON.stringify(target)},"changes":[${singles.join(',')}]${runs.length > 0 ? `,"runs":[${runs.join(',')}]` : ''}}`;
}
