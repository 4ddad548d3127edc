import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { CapturedChange } from '../outbox/outbox-writer';

/**
 * A change waiting for its transaction to commit. A `refresh` is a change
 * whose row image TypeORM did not give us in full (upserts, soft removes,
 * recovers, QueryBuilder writes with returned keys): its image is read back
 * from the primary, inside the same transaction, just before the flush.
 */
export type PendingChange =
  | { kind: 'image'; entity: ReplicatedEntity; change: CapturedChange }
  | { kind: 'refresh'; entity: ReplicatedEntity; key: string[]; capturedAt: number };

export function pendingKey(pending: PendingChange): string {
  const key = pending.kind === 'image' ? pending.change.key : pending.key;
  return `${pending.entity.name}\u0000${key.join('\u0000')}`;
}

/** Keeps only the last change of each row: all of them commit together. */
export function lastChangePerRow(changes: readonly PendingChange[]): PendingChange[] {
  if (changes.length < 2) return [...changes];
  const last = new Map<string, PendingChange>();
  for (const change of changes) {
    const key = pendingKey(change);
    last.delete(key);
    last.set(key, change);
  }
  return [...last.values()];
}
