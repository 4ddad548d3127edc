import type { DataSource } from 'typeorm';
import { DualWriteError } from '../errors/dual-write-error';
import { CaptureSubscriber, type CaptureOptions } from './capture-subscriber';
import type { OutboxRow } from '../relay/outbox-row';

type CommitListener = (rows?: OutboxRow[]) => void;

interface Registration {
  subscriber: CaptureSubscriber;
  listeners: Set<CommitListener>;
}

const registrations = new WeakMap<DataSource, Registration>();

/**
 * Registers THE capture subscriber instance on the primary DataSource, once:
 * a second call (a second `DualWrite.start` on the same DataSource) shares
 * it, because two instances would capture every write twice. TypeORM builds
 * subscribers listed in its options with no arguments, so a configured
 * instance is added to `dataSource.subscribers` instead.
 * The rows of a commit go to the first caller only (it relays them itself);
 * the others are nudged, so that no two relay the same rows from memory.
 * Returns the function that unregisters this caller.
 */
export function registerCapture(
  dataSource: DataSource,
  options: Omit<CaptureOptions, 'onCommitted'>,
  onCommitted: CommitListener,
): () => void {
  let registration = registrations.get(dataSource);
  if (!registration) {
    const listeners = new Set<CommitListener>();
    const subscriber = new CaptureSubscriber({
      ...options,
      onCommitted: (rows) => {
        let first = true;
        for (const listener of listeners) {
          listener(first ? rows : undefined);
          first = false;
        }
      },
    });
    narrowToReplicated(dataSource, subscriber);
    registration = { subscriber, listeners };
    registrations.set(dataSource, registration);
    dataSource.subscribers.push(subscriber);
  }
  const { subscriber, listeners } = registration;
  listeners.add(onCommitted);
  return () => {
    listeners.delete(onCommitted);
    if (listeners.size > 0) return;
    registrations.delete(dataSource);
    const index = dataSource.subscribers.indexOf(subscriber);
    if (index >= 0) dataSource.subscribers.splice(index, 1);
  };
}

/** What TypeORM's broadcaster offers that capture relies on (not all versions have all of it). */
interface BroadcasterSurface {
  isAllowedSubscriber?: (subscriber: unknown, target: unknown) => boolean;
  broadcastBeforeQueryEvent?: unknown;
  broadcastAfterQueryEvent?: unknown;
}

/** `use` applied to the broadcaster of a query runner that is never connected. */
function withBroadcaster<T>(dataSource: DataSource, use: (broadcaster: BroadcasterSurface) => T): T {
  const queryRunner = dataSource.createQueryRunner(); // not connected: a query runner connects on its first query
  try {
    return use(queryRunner.broadcaster as unknown as BroadcasterSurface);
  } finally {
    queryRunner.release().catch(() => undefined); // never connected: nothing to give back
  }
}

/**
 * Capture needs TypeORM to tell subscribers of every statement
 * (`beforeQuery`/`afterQuery`, TypeORM 0.3.18 and later): without it, a write
 * TypeORM gives no entity for (`update()`, `delete()`, raw `query()`) would
 * go uncaptured without the warning or the strict-mode refusal it must get.
 */
export function assertStatementEvents(dataSource: DataSource): void {
  const tells = withBroadcaster(
    dataSource,
    (b) => typeof b.broadcastBeforeQueryEvent === 'function' && typeof b.broadcastAfterQueryEvent === 'function',
  );
  if (tells) return;
  throw new DualWriteError(
    'TYPEORM_UNSUPPORTED',
    'The installed TypeORM does not tell subscribers about the statements they run (beforeQuery/afterQuery came in TypeORM 0.3.18): ' +
      'update(), delete() and raw query() writes on replicated entities would go uncaptured without a warning. ' +
      'Upgrade typeorm to 0.3.18 or later (npm install typeorm@^0.3.18, or 1.x).',
    { option: 'primary' },
  );
}

/**
 * Narrows the subscriber's entity events to the replicated entities (see
 * `CaptureSubscriber.narrowEntityEvents`), with the check TypeORM's
 * broadcaster itself makes; a TypeORM without that check leaves it listening
 * to every entity.
 */
function narrowToReplicated(dataSource: DataSource, subscriber: CaptureSubscriber): void {
  withBroadcaster(dataSource, (broadcaster) => {
    const allows = broadcaster.isAllowedSubscriber;
    if (typeof allows === 'function') subscriber.narrowEntityEvents((s, target) => allows.call(broadcaster, s, target) === true);
  });
}

/** How many capture subscribers this library has on the DataSource (tests check it is one). */
export function captureSubscriberCount(dataSource: DataSource): number {
  return dataSource.subscribers.filter((s) => s instanceof CaptureSubscriber).length;
}
