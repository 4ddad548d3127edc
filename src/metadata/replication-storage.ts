import type { DeadLetterHandler } from '../dead-letter/dead-letter';

/**
 * What `@Replicate` / `replicate()` and `@NotReplicated` record, kept in the
 * plugin's own storage (never in TypeORM's arrays). The storage lives on
 * `globalThis` under a `Symbol.for` key, like TypeORM's own, so two copies of
 * this package in one process still share it.
 */

/** Options of `@Replicate` and `replicate()`. */
export interface ReplicateOptions {
  /** Names of the targets (keys of `targets` in the config) this entity is copied to. Required. */
  to: string[];
  /**
   * Table name in the targets when it differs from the primary's table name.
   * A string applies to every target; a map names it per target.
   * @defaultValue the primary's table name
   */
  table?: string | Record<string, string>;
  /**
   * Column renames per target: `{ reporting: { email: 'email_address' } }`.
   * Keys are property names or database column names of the primary.
   * @defaultValue no renames
   */
  columns?: Record<string, Record<string, string>>;
  /**
   * Which value orders writes of a row. Only `'sequence'` (the outbox's own
   * sequence, allocated under the row lock in commit order) is supported.
   * @defaultValue 'sequence'
   */
  version?: 'sequence';
  /**
   * Property or column names kept on the primary only, the code-only form of
   * `@NotReplicated()` (for `EntitySchema` users).
   * @defaultValue none
   */
  notReplicated?: string[];
  /**
   * Dead-letter handler for this entity's changes, instead of the config's
   * `onDeadLetter`. @defaultValue the config's handler
   */
  onDeadLetter?: DeadLetterHandler;
}

export interface ReplicationRecord {
  /** The entity class, or the EntitySchema / entity name given to `replicate()`. */
  target: Function | string | object;
  options: ReplicateOptions;
}

export interface NotReplicatedRecord {
  target: Function;
  propertyName: string;
}

export interface ReplicationStorage {
  entities: ReplicationRecord[];
  notReplicated: NotReplicatedRecord[];
}

const STORAGE_KEY = Symbol.for('typeorm-dualwrite.metadata');

export function getReplicationStorage(): ReplicationStorage {
  const holder = globalThis as unknown as Record<symbol, ReplicationStorage | undefined>;
  let storage = holder[STORAGE_KEY];
  if (!storage) {
    storage = { entities: [], notReplicated: [] };
    holder[STORAGE_KEY] = storage;
  }
  return storage;
}

/** Records (or replaces) the replication options of one entity. */
export function recordReplication(target: ReplicationRecord['target'], options: ReplicateOptions): void {
  const storage = getReplicationStorage();
  const existing = storage.entities.findIndex((record) => record.target === target);
  const record = { target, options };
  if (existing >= 0) storage.entities[existing] = record;
  else storage.entities.push(record);
}

export function recordNotReplicated(target: Function, propertyName: string): void {
  const storage = getReplicationStorage();
  if (!storage.notReplicated.some((r) => r.target === target && r.propertyName === propertyName)) {
    storage.notReplicated.push({ target, propertyName });
  }
}
