import type IORedis from 'ioredis';
import type { DataSource } from 'typeorm';
import type { ResolvedConfig } from '../config/dual-write-config';
import type { Dialect } from '../dialect/dialect';
import { DualWriteError } from '../errors/dual-write-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { Logger } from '../observability/logger';
import type { QueueSet } from '../queue/queue-set';
import type { OutboxRow } from '../relay/outbox-row';

/**
 * What the reconciler and backfill need of the runtime; a `DualWrite`
 * instance is one (`reconcile(dw, …)`).
 */
export interface ReconcileContext {
  readonly config: ResolvedConfig;
  /** The primary's dialect. */
  readonly dialect: Dialect;
  readonly entities: ReadonlyMap<string, ReplicatedEntity>;
  readonly redis: IORedis;
  readonly queues: QueueSet;
  readonly logger: Logger;
  /**
   * Asked to relay soon after repairs or backfill wrote the outbox. With
   * `enqueue` (a `DualWrite`'s relay has it), a PostgreSQL backfill adds its
   * pages' jobs itself instead of writing them to the outbox.
   */
  readonly relay: { nudge(): void; enqueue?(rows: readonly OutboxRow[], written?: boolean): Promise<unknown> };
}

/** The entities and targets a run covers, checked against the config. */
export function selectPairs(ctx: ReconcileContext, filter: { entity?: string; target?: string }): Array<{ entity: ReplicatedEntity; target: string }> {
  if (filter.target !== undefined && !ctx.config.targets[filter.target]) {
    throw new DualWriteError(
      'TARGET_UNKNOWN',
      `Target "${filter.target}" is not configured. Known targets: ${Object.keys(ctx.config.targets).join(', ')}.`,
      { target: filter.target, option: '--target' },
    );
  }
  let entities = [...ctx.entities.values()];
  if (filter.entity !== undefined) {
    const entity = ctx.entities.get(filter.entity);
    if (!entity) {
      throw new DualWriteError(
        'ENTITY_NOT_FOUND',
        `No replicated entity "${filter.entity}". Replicated entities: ${[...ctx.entities.keys()].join(', ') || '(none)'}.`,
        { entity: filter.entity, option: '--entity' },
      );
    }
    entities = [entity];
  }
  const pairs = entities.flatMap((entity) =>
    [...entity.targets.keys()].filter((t) => filter.target === undefined || t === filter.target).map((target) => ({ entity, target })),
  );
  if (filter.entity !== undefined && filter.target !== undefined && pairs.length === 0) {
    throw new DualWriteError(
      'TARGET_UNKNOWN',
      `Entity "${filter.entity}" does not replicate to target "${filter.target}" (its targets: ${[...ctx.entities.get(filter.entity)!.targets.keys()].join(', ')}).`,
      { entity: filter.entity, target: filter.target, option: '--target' },
    );
  }
  return pairs;
}

/**
 * Opens the target DataSources a run needs that are not open yet; the
 * returned function closes exactly those.
 */
export async function openTargets(ctx: ReconcileContext, names: Iterable<string>): Promise<() => Promise<void>> {
  const opened: DataSource[] = [];
  for (const name of new Set(names)) {
    const dataSource = ctx.config.targets[name];
    if (dataSource.isInitialized) continue;
    try {
      await dataSource.initialize();
    } catch (error) {
      await Promise.all(opened.map((ds) => ds.destroy().catch(() => undefined)));
      throw new DualWriteError(
        'TARGET_UNREACHABLE',
        `Cannot connect to target "${name}" (${(error as Error).message}). Check its DataSource options in "targets.${name}".`,
        { target: name, option: `targets.${name}` },
        { cause: error },
      );
    }
    opened.push(dataSource);
  }
  return async () => {
    await Promise.all(opened.map((ds) => (ds.isInitialized ? ds.destroy().catch(() => undefined) : undefined)));
  };
}
