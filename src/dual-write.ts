import type IORedis from 'ioredis';
import type { DataSource } from 'typeorm';
import { OUTBOX_COLUMNS, OUTBOX_TABLE } from '../migrations/table-names';
import { assertStatementEvents, registerCapture } from './capture/register-capture';
import type { DualWriteConfig, ResolvedConfig, StatusThresholds } from './config/dual-write-config';
import { resolveConfig } from './config/resolve-config';
import type { Dialect } from './dialect/dialect';
import { dialectFor, primaryDialect } from './dialect/dialect-for';
import { tableColumnNames } from './dialect/table-columns';
import { DualWriteError } from './errors/dual-write-error';
import { classifyError } from './errors/classify-error';
import { resolveReplicatedEntities, type ReplicatedEntity } from './metadata/replicated-entity';
import { createLogger, type Logger } from './observability/logger';
import { OutboxWriter } from './outbox/outbox-writer';
import { connectRedis } from './queue/redis-connection';
import { QueueSet } from './queue/queue-set';
import { Relay } from './relay/relay';
import { DualWriteEvents } from './observability/dual-write-events';
import { RelayLoop } from './relay/relay-loop';
import type { ApplyWorkerOptions } from './apply/apply-worker';
import { DeadLetterQueue } from './dead-letter/dead-letter-queue';
import type { DeadLetter } from './dead-letter/dead-letter';
import { replayDeadLetters, type ReplayResult } from './dead-letter/replay';
import { DualWriteMetrics, startMetricsServer } from './observability/metrics';
import { computeOverview, probeTarget, type Overview } from './observability/overview';
import { startReconcileScheduler, type ReconcileScheduler } from './reconcile/reconcile-scheduler';
import { startTargetWorkers } from './worker/target-workers';
import { watchRedisEpoch } from './worker/redis-epoch';

/**
 * The in-process runtime: captures writes on the primary and relays them to
 * the queues after each commit.
 *
 * @example
 * ```ts
 * const dw = await DualWrite.start(config);
 * // ... the application writes through TypeORM as before ...
 * await dw.close();
 * ```
 */
export class DualWrite {
  private closed = false;
  private readonly workers = new Set<() => Promise<void>>();

  private constructor(
    readonly config: ResolvedConfig,
    readonly logger: Logger,
    readonly dialect: Dialect,
    readonly entities: ReadonlyMap<string, ReplicatedEntity>,
    readonly redis: IORedis,
    readonly queues: QueueSet,
    readonly relay: Relay,
    readonly deadLetters: DeadLetterQueue,
    /** In-process notifications: `applied` per apply job, `relayed` per relay pass. */
    readonly events: DualWriteEvents,
    private readonly unregister: () => void,
    private readonly initializedPrimary: boolean,
  ) {}

  static async start(input: DualWriteConfig): Promise<DualWrite> {
    const config = resolveConfig(input);
    const logger = createLogger(config.logger);
    let dialect = dialectFor(config.primary, { primary: true });
    for (const [name, target] of Object.entries(config.targets)) dialectFor(target, { target: name });

    const initializedPrimary = await initializePrimary(config.primary);
    let redis: IORedis | undefined;
    try {
      const entities = resolveReplicatedEntities(config.primary, Object.keys(config.targets));
      assertStatementEvents(config.primary);
      await assertOutboxExists(config.primary, dialect);
      dialect = await primaryDialect(config.primary, dialect);
      redis = await connectRedis(config.redis);
      const queues = new QueueSet(redis, config.queuePrefix);
      const events = new DualWriteEvents();
      const relay = new Relay(config.primary, dialect, queues, logger, {
        batchSize: config.relay.batchSize,
        jobSize: config.relay.jobSize,
        jobOptions: {
          attempts: config.retry.attempts,
          backoff: { type: 'dualwrite' },
          removeOnComplete: true,
          removeOnFail: false,
        },
      }, events);
      const unregister = registerCapture(
        config.primary,
        {
          entities,
          dialect,
          outbox: new OutboxWriter(dialect, OUTBOX_TABLE, {
            relaysOwnCommits: config.relay.afterCommit,
            prepared: config.capture.preparedStatements,
            logger,
          }),
          logger,
          strict: config.strict,
        },
        (rows) => {
          if (!config.relay.afterCommit) return;
          if (rows) relay.publish(rows);
          else relay.nudge();
        },
      );
      const deadLetters = new DeadLetterQueue(redis, config.queuePrefix, config.deadLetter.handlerAttempts);
      const dw = new DualWrite(config, logger, dialect, entities, redis, queues, relay, deadLetters, events, unregister, initializedPrimary);
      if (entities.size === 0) {
        logger.warn('no entity of the primary DataSource is marked @Replicate: nothing will be captured');
      }
      // Whatever an earlier process left in the outbox, and only that: a full claim here would race
      // this process's own first commits, which it relays from memory (`publish`), and queue them twice.
      const leftover = await relay.newestSeq().catch(() => 'unknown');
      if (leftover === 'unknown') relay.nudge();
      else if (leftover !== undefined) relay.nudgeUpTo(leftover);
      return dw;
    } catch (error) {
      redis?.disconnect();
      if (initializedPrimary) await config.primary.destroy().catch(() => undefined);
      throw error;
    }
  }

  /** The resolved replicated entity of an entity name, class or schema. */
  entity(name: string): ReplicatedEntity {
    const entity = this.entities.get(name);
    if (!entity) {
      throw new DualWriteError(
        'ENTITY_NOT_FOUND',
        `No replicated entity "${name}". Replicated entities: ${[...this.entities.keys()].join(', ') || '(none)'}.`,
        { entity: name },
      );
    }
    return entity;
  }

  /**
   * Runs the worker side in this process: the relay loop (LISTEN/NOTIFY on
   * PostgreSQL, polling on both), one apply worker per target, the
   * dead-letter handlers, the reconcile schedule, the Redis data-loss watch
   * (see `watchRedisEpoch`: a lost Redis gets its schedule back and one
   * reconcile with repair across workers) and, when configured, the metrics
   * server. This is what `dualwrite worker` runs. A target it cannot reach is
   * logged and retried in the background (`waitingTargets()` lists them); the
   * other targets are served meanwhile. With `observability.metricsPort` set, it
   * also serves Prometheus metrics at `/metrics` on that port (closed by
   * `close()`); `metricsPort` in the result is the port it listens on.
   */
  async startWorker(
    options: ApplyWorkerOptions & {
      /** ms between the checks that Redis still holds its data (its epoch key). @defaultValue 5000 */
      redisCheckInterval?: number;
    } = {},
  ): Promise<{ close(): Promise<void>; metricsPort?: number; waitingTargets(): string[] }> {
    const { redisCheckInterval, ...applyOptions } = options;
    // A target that cannot be reached does not stop the others: it is retried in the background.
    const apply = await startTargetWorkers(this, applyOptions);
    const loop = new RelayLoop(this.config.primary, this.dialect, this.relay, this.logger, this.config.relay.pollInterval);
    let scheduler: ReconcileScheduler | undefined;
    let epoch: { close(): Promise<void> } | undefined;
    let metrics: { detach(): void; server: { port: number; close(): Promise<void> } } | undefined;
    const served = applyOptions.targets ?? Object.keys(this.config.targets);
    try {
      await loop.start();
      // Scheduled drift checks (config `reconcile.every`; 0 turns them off), one run at a time across workers.
      // Targets this worker is still trying to reach are left out until it connects to them.
      scheduler = await startReconcileScheduler(this, { targetReady: (t) => !served.includes(t) || apply.connected(t) });
      const recovery = scheduler;
      const collector = this.config.observability.metricsPort > 0 ? new DualWriteMetrics(this.overviewSources(), this.logger) : undefined;
      const workerMetrics = collector?.trackWorker(served, (t) => apply.connected(t));
      // Redis losing its data (restart without persistence, flush, failover to an empty replica) loses the
      // queued changes and the schedule: put the schedule back and reconcile everything once, across workers.
      epoch = await watchRedisEpoch(
        this.redis,
        this.config.queuePrefix,
        this.logger,
        async (loss) => {
          workerMetrics?.redisDataLoss();
          this.logger.error(
            { redisEpoch: loss.epoch, reason: loss.reason },
            loss.reason === 'missing'
              ? 'Redis lost its data (its epoch key is gone: restarted without persistence, flushed or replaced): queued changes, dead letters and the reconcile schedule it held are gone. Re-creating the schedule and running a reconcile with repair of every entity × target to re-emit what was lost.'
              : 'Redis holds another epoch than at start (it lost its data and another worker noticed first, or it was replaced): making sure the schedule exists and the recovery reconcile is queued.',
          );
          await recovery.ensureSchedule();
          await recovery.requestRecovery(loss.epoch, `Redis data loss (${loss.reason} epoch)`);
        },
        redisCheckInterval,
      );
      if (collector) {
        const detach = collector.attach(this.events);
        try {
          metrics = { detach, server: await startMetricsServer(collector, this.config.observability.metricsPort, this.logger) };
        } catch (error) {
          detach();
          throw new DualWriteError(
            'CONFIG_INVALID',
            `Cannot serve metrics on port ${this.config.observability.metricsPort} (${(error as Error).message}). Change "observability.metricsPort" or set it to 0.`,
            { option: 'observability.metricsPort' },
            { cause: error },
          );
        }
      }
    } catch (error) {
      await epoch?.close();
      await scheduler?.close();
      await loop.stop();
      await apply.close();
      throw error;
    }
    const stop = async () => {
      this.workers.delete(stop);
      metrics?.detach();
      await metrics?.server.close();
      await epoch?.close();
      await scheduler?.close();
      await loop.stop();
      await apply.close();
    };
    this.workers.add(stop);
    return { close: stop, metricsPort: metrics?.server.port, waitingTargets: () => apply.waiting() };
  }

  /** Outbox backlog, and per target the queue depth, lag estimate and dead letters (what `dualwrite status` shows). */
  overview(): Promise<Overview> {
    return computeOverview(this.overviewSources());
  }

  /**
   * The overview without starting capture or relaying (so it does not drain
   * the outbox it measures), with the config's status thresholds (defaults
   * applied): opens the primary and Redis, measures, checks that every target
   * answers (`probeTarget`), closes. `dualwrite status` runs it.
   */
  static async inspect(input: DualWriteConfig): Promise<{ overview: Overview; thresholds: Required<StatusThresholds> }> {
    const config = resolveConfig(input);
    const dialect = dialectFor(config.primary, { primary: true });
    const initializedPrimary = await initializePrimary(config.primary);
    let redis: IORedis | undefined;
    let queues: QueueSet | undefined;
    let deadLetters: DeadLetterQueue | undefined;
    try {
      await assertOutboxExists(config.primary, dialect);
      redis = await connectRedis(config.redis);
      queues = new QueueSet(redis, config.queuePrefix);
      deadLetters = new DeadLetterQueue(redis, config.queuePrefix, config.deadLetter.handlerAttempts);
      const names = Object.keys(config.targets);
      const [overview, probes] = await Promise.all([
        computeOverview({ primary: config.primary, dialect, queues, deadLetters, targets: names }),
        Promise.all(names.map((name) => probeTarget(config.targets[name]))),
      ]);
      overview.targets.forEach((target, i) => {
        target.reachable = probes[i].reachable;
        if (probes[i].reason !== undefined) target.unreachableReason = probes[i].reason;
      });
      return { overview, thresholds: config.observability.thresholds };
    } finally {
      await queues?.close().catch(() => undefined);
      await deadLetters?.close().catch(() => undefined);
      if (redis) await redis.quit().catch(() => redis?.disconnect());
      if (initializedPrimary) await config.primary.destroy().catch(() => undefined);
    }
  }

  private overviewSources() {
    return { primary: this.config.primary, dialect: this.dialect, queues: this.queues, deadLetters: this.deadLetters, targets: Object.keys(this.config.targets) };
  }

  /** Dead letters of the given targets (default: all), optionally of one entity. */
  listDeadLetters(filter: { target?: string; entity?: string } = {}): Promise<DeadLetter[]> {
    const targets = filter.target ? [this.targetName(filter.target)] : Object.keys(this.config.targets);
    return this.deadLetters.list(targets, { entity: filter.entity });
  }

  /** Replays dead letters through the version gate (see `replayDeadLetters`) and relays them. */
  async replayDeadLetters(letters: readonly DeadLetter[]): Promise<ReplayResult> {
    const result = await replayDeadLetters(
      { primary: this.config.primary, dialect: this.dialect, entities: this.entities, deadLetters: this.deadLetters },
      letters,
    );
    this.relay.nudge();
    return result;
  }

  private targetName(name: string): string {
    if (!this.config.targets[name]) {
      throw new DualWriteError('TARGET_UNKNOWN', `No target "${name}". Targets: ${Object.keys(this.config.targets).join(', ')}.`, {
        target: name,
        option: '--target',
      });
    }
    return name;
  }

  /** Relays everything in the outbox now and waits for it; returns the changes moved. */
  async flush(): Promise<number> {
    await this.relay.idle();
    return this.relay.drain();
  }

  /** Stops capturing and relaying. The DataSources stay open unless `start` opened them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stop of [...this.workers]) await stop();
    this.unregister();
    await this.relay.close();
    await this.queues.close();
    await this.deadLetters.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
    if (this.initializedPrimary) await this.config.primary.destroy();
  }
}

async function initializePrimary(primary: DataSource): Promise<boolean> {
  if (primary.isInitialized) return false;
  try {
    await primary.initialize();
    return true;
  } catch (error) {
    // TypeORM also fails here on its own metadata (a relation to an entity not listed, a bad column type):
    // those errors carry no driver or socket error code.
    const connecting = classifyError(error).code !== undefined;
    throw new DualWriteError(
      'PRIMARY_UNREACHABLE',
      `Cannot initialize the primary DataSource (${(error as Error).message}). ` +
        (connecting ? 'Check its connection options in "primary".' : 'Check its entities and options in "primary" (TypeORM itself refused them).'),
      { option: 'primary' },
      { cause: error },
    );
  }
}

async function assertOutboxExists(primary: DataSource, dialect: Dialect): Promise<void> {
  const rows = (await primary.query(dialect.outbox.exists(OUTBOX_TABLE))) as Array<{ n: number | string }>;
  if (Number(rows[0]?.n ?? 0) === 0) {
    throw new DualWriteError(
      'OUTBOX_MISSING',
      `The outbox table "${OUTBOX_TABLE}" does not exist in the primary database. ` +
        `Run \`dualwrite migrate\` (or add CreateDualWriteOutbox1764400000000 from 'typeorm-dualwrite/migrations' to your migrations and run them).`,
      { option: 'primary' },
    );
  }
  // An outbox made by another version would make every captured write fail: refuse to start instead.
  // (When the catalog shows no such table in the current schema, e.g. it lives in another one, there is nothing to compare.)
  const queryRunner = primary.createQueryRunner();
  let columns: Set<string>;
  try {
    columns = await tableColumnNames(queryRunner, dialect, OUTBOX_TABLE);
  } finally {
    await queryRunner.release();
  }
  const missing = columns.size > 0 ? OUTBOX_COLUMNS.filter((c) => !columns.has(c)) : [];
  if (missing.length > 0) {
    throw new DualWriteError(
      'OUTBOX_MISSING',
      `The outbox table "${OUTBOX_TABLE}" in the primary database lacks the column(s) ${missing.map((c) => `"${c}"`).join(', ')}: it was made by another version of typeorm-dualwrite. ` +
        `Let the relay empty it, drop it, and run \`dualwrite migrate\` (or add the columns as CreateDualWriteOutbox1764400000000 defines them).`,
      { option: 'primary' },
    );
  }
}
