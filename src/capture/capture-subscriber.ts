import path from 'node:path';
import type {
  EntityMetadata,
  EntitySubscriberInterface,
  InsertEvent,
  ObjectLiteral,
  QueryRunner,
  RecoverEvent,
  RemoveEvent,
  SoftRemoveEvent,
  TransactionCommitEvent,
  TransactionRollbackEvent,
  UpdateEvent,
} from 'typeorm';
import type { Dialect } from '../dialect/dialect';
import { DualWriteError, isDualWriteError } from '../errors/dual-write-error';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { Logger } from '../observability/logger';
import { activeTraceparent, startCaptureSpan } from '../observability/tracing';
import type { CapturedChange, OutboxWriter } from '../outbox/outbox-writer';
import type { OutboxRow } from '../relay/outbox-row';
import { transactionDepth as depthOf } from './commit-hook';
import { lastChangePerRow, type PendingChange } from './pending-change';
import { keyOf, keyOfRaw, rowImageOf, rowImageOfUpdate } from './row-image';
import { readRowImages } from './row-reader';
import { StatementInspector, type InspectedWrite } from './statement-inspector';

/**
 * What TypeORM's `afterQuery` hands a subscriber: its `AfterQueryEvent`,
 * generic in 0.3.x and not in 1.x, so spelled out here for both.
 */
interface QueryDoneEvent {
  query: string;
  queryRunner: QueryRunner;
  success: boolean;
  /** As TypeORM types it (its driver result). */
  rawResults?: any;
}

/** Per query-runner capture state; query runners are never shared between transactions. */
interface CaptureState {
  /** Buffered changes per open transaction level (index 0 = the outer transaction). */
  levels: PendingChange[][];
  /** Changes written outside any transaction, flushed together on the next microtask. */
  loose: PendingChange[];
  looseFlush?: Promise<void>;
  /** Entity-level operations in progress per entity (before* seen, after* not yet). */
  inProgress: Map<ReplicatedEntity, number>;
  /** Entities whose current INSERT is an upsert: their images must be read back. */
  upserting: Set<ReplicatedEntity>;
  /**
   * Set by the outer transaction's outbox write: its rows (where the outbox
   * returns them, see `OutboxWriter`), handed on only after its COMMIT.
   */
  written?: { rows?: OutboxRow[] };
  /** Why a statement of the open transaction was refused (strict mode); its COMMIT then fails with it. */
  refused?: unknown;
  /** The outbox write waiting to ride in the outer COMMIT (`OutboxWriter.writeAtCommit`). */
  atCommit?: { changes: readonly CapturedChange[]; disarm(): void; isArmed(): boolean };
  /** The last write statement issued, inspected, with where it was issued when no entity write is in progress (see `beforeQuery`). */
  issued?: { query: string; write: InspectedWrite; stack?: Error };
}

export interface CaptureOptions {
  entities: ReadonlyMap<string, ReplicatedEntity>;
  dialect: Dialect;
  outbox: OutboxWriter;
  logger: Logger;
  strict: boolean;
  /**
   * Called after the outer COMMIT of a transaction that wrote outbox rows,
   * with those rows where the outbox returned them, and (without rows) after
   * loose writes.
   */
  onCommitted: (rows?: OutboxRow[]) => void;
}

/**
 * The one subscriber instance registered on the primary DataSource. It turns
 * entity writes into outbox rows written through the same query runner, in
 * the same transaction, as ONE multi-row INSERT just before the outer COMMIT.
 */
export class CaptureSubscriber implements EntitySubscriberInterface {
  private readonly states = new WeakMap<QueryRunner, CaptureState>();
  private readonly byMetadata = new Map<EntityMetadata, ReplicatedEntity>();
  private readonly inspector: StatementInspector;
  private readonly warned = new Set<string>();
  /**
   * Set by `narrowEntityEvents`: TypeORM then sends entity events for the
   * replicated entities only. Absent, it sends every entity's.
   */
  listenTo?: () => Function;

  constructor(private readonly options: CaptureOptions) {
    for (const entity of options.entities.values()) {
      this.byMetadata.set(entity.metadata, entity);
      for (const child of entity.children) this.byMetadata.set(child, entity);
    }
    this.inspector = new StatementInspector(options.entities.values());
  }

  /**
   * Asks TypeORM for the entity events of replicated entities only, so that
   * every other entity's save() runs as it would without the plugin: TypeORM
   * recomputes the changed columns of all the subjects of a save() whenever a
   * before-hook ran, and ours (see `markInProgress`) would run for each of
   * them (measured: 0.4–0.7 ms of CPU per 100-entity save of a plain
   * 5-column entity). TypeORM 0.3.x and 1.x decide with
   * `listenTo().isPrototypeOf(target)`; `allows` is that decision, TypeORM's
   * own, tried here on every replicated target and on one that is not. Where
   * it answers otherwise, the subscriber keeps listening to every entity
   * (nothing is missed, the old cost stays). Returns whether it narrowed.
   */
  narrowEntityEvents(allows: (subscriber: CaptureSubscriber, target: Function | string) => boolean): boolean {
    const replicated = new Set<Function | string>([...this.byMetadata.keys()].map((metadata) => metadata.target));
    const only: Function = Object.defineProperty(function replicatedEntities() {}, 'isPrototypeOf', {
      value: (target: unknown) => replicated.has(target as Function | string),
    });
    this.listenTo = () => only;
    const decidesAsExpected =
      [...replicated].every((target) => allows(this, target)) && !allows(this, class NotReplicated {}) && !allows(this, 'not-replicated');
    if (!decidesAsExpected) this.listenTo = undefined;
    return decidesAsExpected;
  }

  // ----- entity events -----------------------------------------------------

  beforeInsert(event: InsertEvent<ObjectLiteral>): void {
    this.markInProgress(event.queryRunner, event.metadata, event.entity, +1);
  }

  beforeUpdate(event: UpdateEvent<ObjectLiteral>): void {
    // QueryBuilder updates pass their SET values as `entity` but no database entity.
    if (event.databaseEntity) this.markInProgress(event.queryRunner, event.metadata, event.entity, +1);
  }

  beforeRemove(event: RemoveEvent<ObjectLiteral>): void {
    this.markInProgress(event.queryRunner, event.metadata, event.entity, +1);
  }

  beforeSoftRemove(event: SoftRemoveEvent<ObjectLiteral>): void {
    this.markInProgress(event.queryRunner, event.metadata, event.entity, +1);
  }

  beforeRecover(event: RecoverEvent<ObjectLiteral>): void {
    this.markInProgress(event.queryRunner, event.metadata, event.entity, +1);
  }

  afterInsert(event: InsertEvent<ObjectLiteral>): Promise<void> | void {
    const entity = this.markInProgress(event.queryRunner, event.metadata, event.entity, -1);
    if (!entity || !event.entity) return;
    const state = this.state(event.queryRunner);
    const upsert = state.upserting.has(entity);
    if (upsert && (state.inProgress.get(entity) ?? 0) === 0) state.upserting.delete(entity);
    const key = keyOf(entity, event.entity);
    if (!key) return this.reportUncaptured(event.queryRunner, entity, 'INSERT', 'the inserted entity has no primary key value');
    if (upsert || entity.readsBack) return this.add(event.queryRunner, { kind: 'refresh', entity, key, capturedAt: Date.now() });
    const row = rowImageOf(entity, event.entity, undefined, true)!;
    return this.add(event.queryRunner, { kind: 'image', entity, change: this.change(entity, 'upsert', key, row) });
  }

  afterUpdate(event: UpdateEvent<ObjectLiteral>): Promise<void> | void {
    if (!event.databaseEntity || !event.entity) return; // QueryBuilder update: handled in afterQuery
    const entity = this.markInProgress(event.queryRunner, event.metadata, event.entity, -1);
    if (!entity) return;
    const written = event.entity as ObjectLiteral;
    const key = keyOf(entity, event.databaseEntity, written);
    if (!key) return this.reportUncaptured(event.queryRunner, entity, 'UPDATE', 'the updated entity has no primary key value');
    const row = entity.readsBack ? undefined : rowImageOfUpdate(entity, written, event.databaseEntity, event.updatedColumns);
    const pending: PendingChange = row
      ? { kind: 'image', entity, change: this.change(entity, 'upsert', key, row) }
      : { kind: 'refresh', entity, key, capturedAt: Date.now() };
    return this.add(event.queryRunner, pending);
  }

  afterRemove(event: RemoveEvent<ObjectLiteral>): Promise<void> | void {
    const entity = this.markInProgress(event.queryRunner, event.metadata, event.entity, -1);
    if (!entity || !event.entity) return; // QueryBuilder delete: handled in afterQuery
    // TypeORM clears the primary key on the removed entity before this event.
    const ids = typeof event.entityId === 'object' ? (event.entityId as ObjectLiteral) : undefined;
    const key = keyOf(entity, event.databaseEntity, ids, event.entity);
    if (!key) return this.reportUncaptured(event.queryRunner, entity, 'DELETE', 'the removed entity has no primary key value');
    return this.add(event.queryRunner, { kind: 'image', entity, change: this.change(entity, 'delete', key, null) });
  }

  afterSoftRemove(event: SoftRemoveEvent<ObjectLiteral>): Promise<void> | void {
    return this.afterKeyOnlyEvent(event.queryRunner, event.metadata, event.entity, event.databaseEntity);
  }

  afterRecover(event: RecoverEvent<ObjectLiteral>): Promise<void> | void {
    return this.afterKeyOnlyEvent(event.queryRunner, event.metadata, event.entity, event.databaseEntity);
  }

  /** Soft removes and recovers: the row still exists with new delete-date; read it back. */
  private afterKeyOnlyEvent(
    queryRunner: QueryRunner,
    metadata: EntityMetadata,
    written: ObjectLiteral | undefined,
    databaseEntity: ObjectLiteral | undefined,
  ): Promise<void> | void {
    const entity = this.markInProgress(queryRunner, metadata, written, -1);
    if (!entity || !written) return;
    const key = keyOf(entity, written, databaseEntity);
    if (!key) return this.reportUncaptured(queryRunner, entity, 'UPDATE', 'the entity has no primary key value');
    return this.add(queryRunner, { kind: 'refresh', entity, key, capturedAt: Date.now() });
  }

  // ----- statements without entities -------------------------------------

  /**
   * Inspects each statement once, for `afterQuery`, and notes where a write
   * without an entity was issued: TypeORM 0.3.x calls `afterQuery` from the
   * MySQL driver's callback, whose stack no longer shows the application's code.
   */
  beforeQuery(event: { query: string; queryRunner: QueryRunner }): void {
    const write = this.inspector.inspect(event.query);
    if (!write) return;
    const state = this.state(event.queryRunner);
    // The stack is only captured here (cheap); it is formatted only if the write goes uncaptured.
    const entityWrite = (state.inProgress.get(write.entity) ?? 0) > 0;
    state.issued = { query: event.query, write, stack: entityWrite ? undefined : captureStack() };
  }

  /**
   * Never throws: TypeORM 0.3.x calls it inside the MySQL driver's callback
   * without awaiting it, where a throw or an unobserved rejection would hang
   * the query or end the process. A refusal (strict mode) is returned as a
   * rejected promise, which TypeORM 1.x and the PostgreSQL driver await (the
   * statement fails), and is kept for the transaction's COMMIT, which every
   * version awaits (see `beforeTransactionCommit`).
   */
  afterQuery(event: QueryDoneEvent): Promise<void> | void {
    if (!event.success) return;
    try {
      // The statement `beforeQuery` inspected, or (a driver that skipped it) inspected now.
      const issued = this.states.get(event.queryRunner)?.issued;
      const write = issued?.query === event.query ? issued.write : this.inspector.inspect(event.query);
      if (!write) return;
      const state = this.state(event.queryRunner);
      if ((state.inProgress.get(write.entity) ?? 0) > 0) {
        // save()/insert()/remove(): the after* event brings the entity.
        if (write.upsert) state.upserting.add(write.entity);
        return;
      }
      const captured = this.captureStatement(event.queryRunner, write, event.rawResults);
      return captured ? this.refusing(event.queryRunner, captured) : undefined;
    } catch (error) {
      return this.refusing(event.queryRunner, Promise.reject(error));
    }
  }

  /** `outcome`, whose failure also refuses the open transaction's COMMIT; observed, so it never goes unhandled. */
  private refusing(queryRunner: QueryRunner, outcome: Promise<void>): Promise<void> {
    outcome.catch((error: unknown) => {
      if (queryRunner.isTransactionActive) this.state(queryRunner).refused ??= error;
      else if (isDualWriteError(error)) this.options.logger.error({ err: error }, error.message);
    });
    return outcome;
  }

  private captureStatement(queryRunner: QueryRunner, write: InspectedWrite, raw: unknown): Promise<void> | void {
    const { rows, affected } = resultOf(raw);
    if (affected === 0) return;
    const keys: string[][] = [];
    for (const row of rows) {
      const key = keyOfRaw(write.entity, row);
      if (!key) break;
      keys.push(key);
    }
    if (keys.length === 0 || keys.length !== rows.length || (affected !== undefined && affected > rows.length)) {
      return this.reportUncaptured(
        queryRunner,
        write.entity,
        write.verb,
        'TypeORM gives no entity for it and the statement returned no primary keys',
      );
    }
    const now = Date.now();
    const changes: PendingChange[] = keys.map((key) =>
      write.verb === 'DELETE'
        ? { kind: 'image', entity: write.entity, change: this.change(write.entity, 'delete', key, null, now) }
        : { kind: 'refresh', entity: write.entity, key, capturedAt: now },
    );
    return this.add(queryRunner, ...changes);
  }

  private reportUncaptured(queryRunner: QueryRunner, entity: ReplicatedEntity, verb: string, why: string): void {
    const state = this.states.get(queryRunner);
    const issued = state?.issued?.stack;
    if (state) state.issued = undefined;
    const site = (issued && callSite(issued)) ?? callSite(captureStack()) ?? 'an unknown call site';
    const message =
      `typeorm-dualwrite: a ${verb} on replicated entity "${entity.name}" at ${site} was not captured: ${why}. ` +
      `Write it with save()/remove()/softRemove(), or on PostgreSQL add .returning(${JSON.stringify(entity.primaryColumns.map((c) => c.databaseName))}) ` +
      `to the QueryBuilder so its keys are captured; until then the reconciler repairs the target.`;
    if (this.options.strict) {
      throw new DualWriteError('UNCAPTURED_WRITE', `${message} (strict mode: the write was refused${queryRunner.isTransactionActive ? ' and its transaction must roll back' : ''}.)`, {
        entity: entity.name,
      });
    }
    const once = `${entity.name}|${verb}|${site}`;
    if (this.warned.has(once)) return;
    this.warned.add(once);
    this.options.logger.warn({ entity: entity.name, verb, site }, message);
  }

  // ----- transactions --------------------------------------------------------

  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const queryRunner = event.queryRunner;
    const state = this.states.get(queryRunner);
    if (!state) return;
    const depth = depthOf(queryRunner);
    if (depth > 1) {
      // RELEASE SAVEPOINT: the savepoint's changes now belong to its parent.
      const released = state.levels.splice(depth - 1).flat();
      if (released.length) (state.levels[depth - 2] ??= []).push(...released);
      return;
    }
    // Whatever an earlier COMMIT that failed left here never committed.
    state.written = undefined;
    this.withdrawAtCommit(state);
    if (state.refused !== undefined) {
      // A statement of this transaction was refused (strict mode): it must not commit.
      const refused = state.refused;
      state.refused = undefined;
      throw refused;
    }
    const pending = state.levels.flat();
    state.levels = [];
    if (pending.length === 0) return;
    const changes = await this.changesOf(queryRunner, pending);
    if (changes.length === 0) return;
    const span = startCaptureSpan(changes);
    const atCommit = this.options.outbox.writeAtCommit(queryRunner, changes, (error, rows) => {
      span.end(error);
      if (!error) state.written = { rows };
    });
    if (atCommit) state.atCommit = { changes, ...atCommit };
    else state.written = { rows: await this.write(queryRunner, changes, span) };
  }

  afterTransactionCommit(event: TransactionCommitEvent): Promise<void> | void {
    // Also fires after RELEASE SAVEPOINT: only the outer COMMIT publishes.
    if (event.queryRunner.isTransactionActive) return;
    const state = this.states.get(event.queryRunner);
    if (state?.atCommit?.isArmed()) return this.committedWithoutOutbox(event.queryRunner, state);
    if (state) state.atCommit = undefined;
    const written = state?.written;
    if (state && written) {
      state.written = undefined;
      this.options.onCommitted(written.rows);
    }
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    const state = this.states.get(event.queryRunner);
    if (!state) return;
    // Drop the changes of the rolled-back level (savepoint) or of everything.
    state.levels.splice(depthOf(event.queryRunner));
    if (!event.queryRunner.isTransactionActive) {
      this.withdrawAtCommit(state);
      state.levels = [];
      state.written = undefined;
      state.refused = undefined;
      state.inProgress.clear();
      state.upserting.clear();
    }
  }

  // ----- internals -----------------------------------------------------------

  private withdrawAtCommit(state: CaptureState): void {
    state.atCommit?.disarm();
    state.atCommit = undefined;
  }

  /**
   * The transaction committed without the outbox write that was to ride in
   * its COMMIT: a TypeORM whose commitTransaction() does not send a plain
   * "COMMIT" through the query runner. Writes the rows right away (outside the
   * transaction: a crash in between would leave the reconciler to repair it),
   * so nothing is lost, and says so loudly.
   */
  private async committedWithoutOutbox(queryRunner: QueryRunner, state: CaptureState): Promise<void> {
    const changes = state.atCommit!.changes;
    this.withdrawAtCommit(state);
    this.options.logger.error(
      { changes: changes.length },
      'typeorm-dualwrite: the transaction committed without the outbox write it was to carry (an unknown TypeORM commit path); ' +
        'the changes were written right after the COMMIT instead. Please report your TypeORM version.',
    );
    const rows = await this.write(queryRunner, changes, startCaptureSpan(changes));
    this.options.onCommitted(rows);
  }

  private state(queryRunner: QueryRunner): CaptureState {
    let state = this.states.get(queryRunner);
    if (!state) {
      state = { levels: [], loose: [], inProgress: new Map(), upserting: new Set() };
      this.states.set(queryRunner, state);
    }
    return state;
  }

  private markInProgress(
    queryRunner: QueryRunner,
    metadata: EntityMetadata,
    written: ObjectLiteral | undefined,
    delta: 1 | -1,
  ): ReplicatedEntity | undefined {
    const entity = this.byMetadata.get(metadata);
    if (!entity || !written) return entity;
    const state = this.state(queryRunner);
    const count = (state.inProgress.get(entity) ?? 0) + delta;
    if (count > 0) state.inProgress.set(entity, count);
    else state.inProgress.delete(entity);
    return entity;
  }

  private change(
    entity: ReplicatedEntity,
    op: CapturedChange['op'],
    key: string[],
    row: CapturedChange['row'],
    capturedAt = Date.now(),
  ): CapturedChange {
    const change: CapturedChange = { entity: entity.name, op, key, row, targets: entity.options.to.join(','), capturedAt };
    // The writing request's trace, when the application runs an OpenTelemetry SDK.
    const trace = activeTraceparent();
    if (trace) change.trace = trace;
    return change;
  }

  /** Buffers changes in the open transaction, or writes them right away (batched per tick) without one. */
  private add(queryRunner: QueryRunner, ...changes: PendingChange[]): Promise<void> | void {
    const state = this.state(queryRunner);
    const depth = depthOf(queryRunner);
    if (depth > 0) {
      while (state.levels.length < depth) state.levels.push([]);
      state.levels[depth - 1].push(...changes);
      return;
    }
    state.loose.push(...changes);
    state.looseFlush ??= Promise.resolve().then(async () => {
      const loose = state.loose;
      state.loose = [];
      state.looseFlush = undefined;
      // Not handed on: without a transaction of ours, these may sit in one the application opened by hand.
      const changes = await this.changesOf(queryRunner, loose);
      if (changes.length) await this.write(queryRunner, changes, startCaptureSpan(changes));
      this.options.onCommitted();
    });
    return state.looseFlush;
  }

  /** The changes to write for these pending ones: the last per row, statement captures read back. */
  private async changesOf(queryRunner: QueryRunner, pending: readonly PendingChange[]): Promise<CapturedChange[]> {
    const latest = lastChangePerRow(pending);
    const changes: CapturedChange[] = [];
    const refreshes = new Map<ReplicatedEntity, Array<Extract<PendingChange, { kind: 'refresh' }>>>();
    for (const item of latest) {
      if (item.kind === 'image') changes.push(item.change);
      else {
        const list = refreshes.get(item.entity) ?? [];
        list.push(item);
        refreshes.set(item.entity, list);
      }
    }
    for (const [entity, items] of refreshes) {
      const images = await readRowImages(queryRunner, this.options.dialect, entity, items.map((i) => i.key));
      for (const item of items) {
        const row = images.get(item.key.join('\u0000')) ?? null;
        changes.push(this.change(entity, row ? 'upsert' : 'delete', item.key, row, item.capturedAt));
      }
    }
    return changes;
  }

  /** Writes the outbox rows of these changes; returns them where the outbox can (see `OutboxWriter`). */
  private async write(queryRunner: QueryRunner, changes: readonly CapturedChange[], span: ReturnType<typeof startCaptureSpan>): Promise<OutboxRow[] | undefined> {
    let rows: OutboxRow[] | undefined;
    try {
      rows = await this.options.outbox.write(queryRunner, changes);
    } catch (error) {
      span.end(error);
      throw error;
    }
    span.end();
    return rows;
  }
}

/** Rows and affected-row count of a raw driver result (pg or mysql2). */
function resultOf(raw: unknown): { rows: Record<string, unknown>[]; affected?: number } {
  if (Array.isArray(raw)) return { rows: raw as Record<string, unknown>[], affected: raw.length };
  if (raw && typeof raw === 'object') {
    const r = raw as { rows?: unknown; rowCount?: number | null; affectedRows?: number };
    const rows = Array.isArray(r.rows) ? (r.rows as Record<string, unknown>[]) : [];
    return { rows, affected: r.rowCount ?? r.affectedRows ?? undefined };
  }
  return { rows: [] };
}

const LIBRARY_ROOT = path.resolve(__dirname, '..', '..');
const TYPEORM_FRAME =
  /[\\/]typeorm[\\/]|[\\/](subscriber|query-builder|entity-manager|repository|persistence|driver|query-runner)[\\/][A-Z]\w+\.[jt]s:/;

/** The current stack, captured but not yet formatted (see `callSite`). */
function captureStack(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error();
  Error.stackTraceLimit = limit;
  return stack;
}

/** The first frame of `stack` outside TypeORM, this library and other packages: where the user wrote it. */
function callSite(stack: Error): string | undefined {
  const frames = (stack.stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    if (frame.includes(`${LIBRARY_ROOT}${path.sep}src${path.sep}`) || frame.includes(`${LIBRARY_ROOT}${path.sep}dist${path.sep}`)) continue;
    if (TYPEORM_FRAME.test(frame) || /node:internal|processTicksAndRejections|new Promise|\(<anonymous>\)|[\\/]node_modules[\\/]/.test(frame)) continue;
    return frame.trim().replace(/^at\s+/, '');
  }
  return undefined;
}
