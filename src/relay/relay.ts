import type { JobsOptions } from 'bullmq';
import type { DataSource } from 'typeorm';
import type { Dialect } from '../dialect/dialect';
import { OUTBOX_TABLE } from '../../migrations/table-names';
import type { Logger } from '../observability/logger';
import { APPLY_JOB, type ApplyJobData } from '../queue/apply-job';
import { batchJobId } from '../queue/job-id';
import type { QueueSet } from '../queue/queue-set';
import type { DualWriteEvents } from '../observability/dual-write-events';
import { changeJson, relayedChangeOfRow, type OutboxRow, type RelayedChange } from './outbox-row';
import { rawJobData } from '../queue/raw-json-queue';
import { startRelaySpans } from '../observability/tracing';

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

/** The driver connection under a PostgreSQL query runner (pg's client), as the scripted claim uses it. */
interface ScriptClient {
  query(sql: string): Promise<{ rows?: unknown[] } | Array<{ rows?: unknown[] }>>;
}

function compareSeq(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** What one relay pass moved. */
export interface RelayPass {
  rows: number;
  jobs: number;
}

/**
 * Moves outbox rows to the target queues: claims a batch with
 * `FOR UPDATE SKIP LOCKED`, adds one job per `jobSize` changes per target,
 * and deletes the rows only after Redis acknowledged the adds, all in one
 * primary transaction. A crash anywhere leaves the rows (or duplicates jobs,
 * which the version gate makes harmless); several relays never wait on each
 * other's rows.
 */
export class Relay {
  private draining?: Promise<number>;
  private again = false;
  private retryTimer?: NodeJS.Timeout;
  private pause?: { timer: NodeJS.Timeout; resume: () => void };
  private lastStarted = 0;
  private closed = false;

  constructor(
    private readonly primary: DataSource,
    private readonly dialect: Dialect,
    private readonly queues: QueueSet,
    private readonly logger: Logger,
    private readonly options: RelayOptions,
    private readonly events?: DualWriteEvents,
  ) {}

  /** One claim → enqueue → delete transaction. */
  async relayOnce(): Promise<RelayPass> {
    if (this.dialect.outbox.claimScript) return this.relayOnceScripted(this.dialect.outbox.claimScript);
    const queryRunner = this.primary.createQueryRunner('master');
    try {
      await queryRunner.connect();
      await queryRunner.startTransaction(this.dialect.outbox.claimIsolation);
      try {
        const claimed = await queryRunner.query(this.dialect.outbox.claim(OUTBOX_TABLE), [this.options.batchSize], true);
        const rows = (claimed.records ?? []) as OutboxRow[];
        if (rows.length === 0) {
          await queryRunner.commitTransaction();
          return { rows: 0, jobs: 0 };
        }
        // DELETE … RETURNING returns rows in no particular order.
        if (this.dialect.outbox.claimDeletes) rows.sort((a, b) => compareSeq(a.seq, b.seq));
        const jobs = await this.enqueue(rows);
        if (!this.dialect.outbox.claimDeletes) {
          const deletion = this.dialect.outbox.delete(OUTBOX_TABLE, rows.map((r) => String(r.seq)));
          await queryRunner.query(deletion.sql, deletion.params);
        }
        await queryRunner.commitTransaction();
        this.events?.emit('relayed', { rows: rows.length, jobs });
        return { rows: rows.length, jobs };
      } catch (error) {
        if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
        throw error;
      }
    } finally {
      await queryRunner.release();
    }
  }

  /**
   * `relayOnce` where the engine opens the transaction and claims in one
   * round trip (PostgreSQL), on the driver's connection itself: the claim
   * is neither logged nor broadcast to subscribers, as TypeORM would.
   */
  private async relayOnceScripted(script: NonNullable<Dialect['outbox']['claimScript']>): Promise<RelayPass> {
    const queryRunner = this.primary.createQueryRunner('master');
    let open = false;
    try {
      const client = (await queryRunner.connect()) as ScriptClient;
      open = true;
      const results = await client.query(script(OUTBOX_TABLE, this.options.batchSize));
      const last = Array.isArray(results) ? results[results.length - 1] : results;
      const rows = (last?.rows ?? []) as OutboxRow[];
      if (rows.length === 0) {
        await client.query('COMMIT');
        open = false;
        return { rows: 0, jobs: 0 };
      }
      // DELETE … RETURNING returns rows in no particular order.
      rows.sort((a, b) => compareSeq(a.seq, b.seq));
      const jobs = await this.enqueue(rows);
      await client.query('COMMIT');
      open = false;
      this.events?.emit('relayed', { rows: rows.length, jobs });
      return { rows: rows.length, jobs };
    } catch (error) {
      if (open) {
        const client = (await queryRunner.connect()) as ScriptClient;
        // A connection that cannot even roll back must not go back to the pool mid-transaction.
        await client.query('ROLLBACK').catch((rollbackError: unknown) =>
          (queryRunner as unknown as { releasePostgresConnection?(err: unknown): Promise<void> }).releasePostgresConnection?.(rollbackError),
        );
      }
      throw error;
    } finally {
      await queryRunner.release();
    }
  }

  /**
   * Adds the apply jobs of these changes (in version order) to their
   * targets' queues: one job per `jobSize` changes per target, with the
   * relay's job options and ids. Resolves once Redis acknowledged every add;
   * returns the number of jobs. The backfill adds its pages this way.
   */
  async enqueue(rows: readonly OutboxRow[]): Promise<number> {
    const byTarget = new Map<string, RelayedChange[]>();
    const traced: RelayedChange[] = [];
    for (const row of rows) {
      const change = relayedChangeOfRow(row);
      if (change.trace) traced.push(change);
      for (const target of row.targets.split(',')) {
        const list = byTarget.get(target) ?? [];
        list.push(change);
        byTarget.set(target, list);
      }
    }
    let jobs = 0;
    // A relay span per traced request; the jobs carry its traceparent, so the apply continues from it.
    const spans = startRelaySpans(traced);
    await Promise.all(
      [...byTarget].map(([target, changes]) => {
        const bulk = [];
        for (let start = 0; start < changes.length; start += this.options.jobSize) {
          const slice = changes.slice(start, start + this.options.jobSize);
          // The JSON of `{ target, changes }` (ApplyJobData), built around the outbox's JSON text.
          const text = `{"target":${JSON.stringify(target)},"changes":[${slice.map(changeJson).join(',')}]}`;
          bulk.push({
            name: APPLY_JOB,
            data: rawJobData<ApplyJobData>(text),
            opts: { ...this.options.jobOptions, jobId: batchJobId(target, slice.map((c) => c.version)) },
          });
        }
        jobs += bulk.length;
        return this.queues.get(target).addBulk(bulk);
      }),
    ).catch((error: unknown) => {
      spans.end(error);
      throw error;
    });
    spans.end();
    return jobs;
  }

  /**
   * Relays until the outbox is empty (or only holds rows other relays have
   * claimed). Behind a backlog (the first pass claimed a full batch), two
   * passes run at once on two connections, so one claims while the other
   * waits for Redis; SKIP LOCKED keeps their rows apart.
   */
  async drain(): Promise<number> {
    const first = await this.relayOnce();
    if (first.rows < this.options.batchSize) return first.rows;
    const loop = async (): Promise<number> => {
      let total = 0;
      for (;;) {
        const pass = await this.relayOnce();
        total += pass.rows;
        if (pass.rows < this.options.batchSize) return total;
      }
    };
    const [a, b] = await Promise.all([loop(), loop()]);
    return first.rows + a + b;
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

  private async runDrains(failures: number): Promise<number> {
    let total = 0;
    try {
      while (this.again && !this.closed) {
        await this.waitUntil(this.lastStarted + (this.options.coalesceMs ?? COALESCE_MS));
        if (this.closed) break;
        this.again = false;
        this.lastStarted = Date.now();
        total += await this.drain();
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
      const resume = () => {
        this.pause = undefined;
        resolve();
      };
      this.pause = { timer: setTimeout(resume, ms), resume };
    });
  }

  /** Waits for a running drain to finish; later nudges are ignored. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pause) {
      clearTimeout(this.pause.timer);
      this.pause.resume();
    }
    await this.draining?.catch(() => undefined);
  }

  /** Resolves when no drain is running or due (tests and the demo use it). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining.catch(() => undefined);
  }
}
