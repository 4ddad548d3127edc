import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AppliedEvent, DualWriteEvents, RelayedEvent } from './dual-write-events';
import type { Logger } from './logger';
import { computeOverview, type Overview, type OverviewSources } from './overview';

/** Entity label of a job's outcome when the job mixed entities AND outcomes (see `onApplied`). */
export const MIXED_ENTITY = '(mixed)';

const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;

/**
 * The worker's Prometheus metrics, in a registry of their own (never
 * prom-client's global one, so an application's metrics are untouched).
 * Counters and the latency histogram follow `dw.events`; the gauges of the
 * outbox, queues and dead letters are sampled from the primary and Redis
 * when scraped (at most once per `minSampleIntervalMs`).
 */
export class DualWriteMetrics {
  readonly registry = new Registry();
  private readonly applied: Counter<'target' | 'entity'>;
  private readonly skipped: Counter<'target' | 'entity'>;
  private readonly deadLettered: Counter<'target' | 'entity'>;
  private readonly applyJobs: Counter<'target'>;
  private readonly latency: Histogram<'target'>;
  private readonly lastApplied: Gauge<'target'>;
  private readonly relayedChanges: Counter;
  private readonly relayedJobs: Counter;
  private readonly lag: Gauge<'target'>;
  private readonly queueJobs: Gauge<'target' | 'state'>;
  private readonly deadLetters: Gauge<'target'>;
  private readonly outboxRows: Gauge;
  private readonly outboxAge: Gauge;
  private readonly sampleOk: Gauge;
  private sampling?: Promise<void>;
  private sampledAt = 0;
  private readonly newestApplied = new Map<string, number>();
  private readonly onAppliedListener = (event: AppliedEvent) => this.onApplied(event);
  private readonly onRelayedListener = (event: RelayedEvent) => this.onRelayed(event);

  constructor(
    private readonly sources: OverviewSources,
    private readonly logger?: Logger,
    private readonly minSampleIntervalMs = 1000,
  ) {
    const registers = [this.registry];
    this.applied = new Counter({ name: 'dualwrite_changes_applied_total', help: 'Changes written to a target (their version won the gate).', labelNames: ['target', 'entity'], registers });
    this.skipped = new Counter({ name: 'dualwrite_changes_skipped_total', help: 'Changes skipped by the version gate (stale or duplicate).', labelNames: ['target', 'entity'], registers });
    this.deadLettered = new Counter({ name: 'dualwrite_changes_dead_lettered_total', help: 'Changes that became dead letters.', labelNames: ['target', 'entity'], registers });
    this.applyJobs = new Counter({ name: 'dualwrite_apply_jobs_total', help: 'Apply jobs finished by this worker.', labelNames: ['target'], registers });
    this.latency = new Histogram({
      name: 'dualwrite_apply_latency_seconds',
      help: 'Time from capture (outbox write) to the apply transaction commit, per change.',
      labelNames: ['target'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.lastApplied = new Gauge({
      name: 'dualwrite_last_applied_capture_timestamp_seconds',
      help: 'Capture time of the newest change this worker applied to the target (time() minus this is the lag since the last apply).',
      labelNames: ['target'],
      registers,
    });
    this.relayedChanges = new Counter({ name: 'dualwrite_changes_relayed_total', help: 'Captured changes moved from the outbox to the queues by this process.', registers });
    this.relayedJobs = new Counter({ name: 'dualwrite_relay_jobs_total', help: 'Apply jobs added to the queues by this process.', registers });
    this.lag = new Gauge({
      name: 'dualwrite_replication_lag_seconds',
      help: 'Age of the oldest change in a not yet applied job of the target (0 when its queue is empty); sampled when scraped.',
      labelNames: ['target'],
      registers,
    });
    this.queueJobs = new Gauge({ name: 'dualwrite_queue_jobs', help: 'Apply jobs per target and BullMQ state; sampled when scraped.', labelNames: ['target', 'state'], registers });
    this.deadLetters = new Gauge({ name: 'dualwrite_dead_letters', help: 'Dead letters kept per target; sampled when scraped.', labelNames: ['target'], registers });
    this.outboxRows = new Gauge({ name: 'dualwrite_outbox_backlog_rows', help: 'Rows in the outbox table of the primary (captured, not relayed yet); sampled when scraped.', registers });
    this.outboxAge = new Gauge({ name: 'dualwrite_outbox_oldest_age_seconds', help: 'Age of the oldest outbox row (0 when empty); sampled when scraped.', registers });
    this.sampleOk = new Gauge({ name: 'dualwrite_sample_success', help: '1 when the last sample of the outbox, queues and dead letters succeeded, 0 when it failed.', registers });
    collectDefaultMetrics({ register: this.registry });
  }

  /** Starts counting `applied` and `relayed` events; returns a function that stops. */
  /**
   * The worker's own metrics: whether it has each served target's apply
   * worker running (`connected`), and a counter of Redis data losses it found;
   * call the returned `redisDataLoss` for each.
   */
  trackWorker(served: readonly string[], connected: (target: string) => boolean): { redisDataLoss(): void } {
    const registers = [this.registry];
    const losses = new Counter({ name: 'dualwrite_redis_data_losses_total', help: 'Times this worker found that Redis had lost its data (its epoch key gone or replaced).', registers });
    new Gauge({
      name: 'dualwrite_target_connected',
      help: '1 when this worker has its apply worker for the target running, 0 while the target is unreachable and retried in the background.',
      labelNames: ['target'],
      registers,
      collect() {
        for (const t of served) this.set({ target: t }, connected(t) ? 1 : 0);
      },
    });
    return { redisDataLoss: () => losses.inc() };
  }

  attach(events: DualWriteEvents): () => void {
    events.on('applied', this.onAppliedListener);
    events.on('relayed', this.onRelayedListener);
    return () => {
      events.off('applied', this.onAppliedListener);
      events.off('relayed', this.onRelayedListener);
    };
  }

  /**
   * The event gives a job's totals, not each change's outcome. Per entity
   * they are exact when the job holds one entity or one outcome (the usual
   * case: everything applied); a job that mixes both is counted under the
   * entity label `(mixed)`.
   */
  onApplied(event: AppliedEvent): void {
    const { target } = event;
    this.applyJobs.inc({ target });
    const perEntity = new Map<string, number>();
    let newest = 0;
    for (const change of event.changes) {
      perEntity.set(change.entity, (perEntity.get(change.entity) ?? 0) + 1);
      if (typeof change.capturedAt === 'number') {
        this.latency.observe({ target }, Math.max(0, event.finishedAt - change.capturedAt) / 1000);
        newest = Math.max(newest, change.capturedAt);
      }
    }
    const outcomes: Array<[Counter<'target' | 'entity'>, number]> = [
      [this.applied, event.applied],
      [this.skipped, event.skipped],
      [this.deadLettered, event.deadLettered],
    ];
    const single = outcomes.filter(([, n]) => n > 0);
    if (perEntity.size === 1) {
      const entity = [...perEntity.keys()][0];
      for (const [counter, n] of outcomes) if (n > 0) counter.inc({ target, entity }, n);
    } else if (single.length === 1 && single[0][1] === event.changes.length) {
      for (const [entity, n] of perEntity) single[0][0].inc({ target, entity }, n);
    } else {
      for (const [counter, n] of outcomes) if (n > 0) counter.inc({ target, entity: MIXED_ENTITY }, n);
    }
    if (event.applied > 0 && newest > (this.newestApplied.get(target) ?? 0)) {
      this.newestApplied.set(target, newest);
      this.lastApplied.set({ target }, newest / 1000);
    }
  }

  onRelayed(event: RelayedEvent): void {
    this.relayedChanges.inc(event.changes);
    this.relayedJobs.inc(event.jobs);
  }

  /** Samples the outbox, queues and dead letters now (the scrape handler calls it). */
  async sample(): Promise<void> {
    if (this.sampling) return this.sampling;
    if (Date.now() - this.sampledAt < this.minSampleIntervalMs) return;
    this.sampling = (async () => {
      try {
        this.record(await computeOverview(this.sources));
        this.sampleOk.set(1);
      } catch (error) {
        this.sampleOk.set(0);
        this.logger?.warn({ err: error }, 'metrics: could not sample the outbox, queues or dead letters');
      } finally {
        this.sampledAt = Date.now();
        this.sampling = undefined;
      }
    })();
    return this.sampling;
  }

  private record(overview: Overview): void {
    this.outboxRows.set(overview.outbox.count);
    this.outboxAge.set(overview.outbox.oldestAgeMs / 1000);
    for (const t of overview.targets) {
      this.lag.set({ target: t.target }, t.lagMs / 1000);
      this.deadLetters.set({ target: t.target }, t.deadLetters);
      for (const state of QUEUE_STATES) this.queueJobs.set({ target: t.target, state }, t.queue[state]);
    }
  }

  /** The text exposition, after a fresh sample. */
  async metrics(): Promise<string> {
    await this.sample();
    return this.registry.metrics();
  }
}

/** The HTTP server that serves `/metrics`. */
export interface MetricsServer {
  /** The port it listens on (the configured one, or the one picked for port 0). */
  port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (Prometheus text format) on `port`; every other path is 404. */
export async function startMetricsServer(metrics: DualWriteMetrics, port: number, logger?: Logger): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: metrics are at /metrics\n');
      return;
    }
    metrics.metrics().then(
      (body) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (error: unknown) => {
        logger?.warn({ err: error }, 'metrics: scrape failed');
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger?.error({ err: error }, 'metrics server error'));
  const actual = (server.address() as AddressInfo).port;
  logger?.info({ port: actual }, `metrics served at http://localhost:${actual}/metrics`);
  return {
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
