import type { DataSource } from 'typeorm';
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

/**
 * Narrows the subscriber's entity events to the replicated entities (see
 * `CaptureSubscriber.narrowEntityEvents`), with the check TypeORM's
 * broadcaster itself makes; a TypeORM without that check leaves it listening
 * to every entity.
 */
function narrowToReplicated(dataSource: DataSource, subscriber: CaptureSubscriber): void {
  const queryRunner = dataSource.createQueryRunner(); // not connected: a query runner connects on its first query
  try {
    const broadcaster = queryRunner.broadcaster as unknown as { isAllowedSubscriber?: (subscriber: unknown, target: unknown) => boolean };
    const allows = broadcaster.isAllowedSubscriber;
    if (typeof allows === 'function') subscriber.narrowEntityEvents((s, target) => allows.call(broadcaster, s, target) === true);
  } finally {
    queryRunner.release().catch(() => undefined); // never connected: nothing to give back
  }
}

/** How many capture subscribers this library has on the DataSource (tests check it is one). */
export function captureSubscriberCount(dataSource: DataSource): number {
  return dataSource.subscribers.filter((s) => s instanceof CaptureSubscriber).length;
}
