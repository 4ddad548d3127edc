import { recordReplication, type ReplicateOptions } from '../src/metadata/replication-storage';

/**
 * Marks an entity class for replication: every committed write to it reaches
 * each target named in `to`.
 *
 * @example
 * ```ts
 * @Replicate({ to: ['reporting', 'analytics'] })
 * @Entity()
 * export class Order { ... }
 * ```
 */
export function Replicate(options: ReplicateOptions): ClassDecorator {
  return (target) => {
    recordReplication(target, options);
  };
}

/**
 * The code-only form of `@Replicate` for `EntitySchema` users (or classes you
 * cannot decorate): `replicate(OrderSchema, { to: ['reporting'] })`.
 * `target` is an entity class, an `EntitySchema`, or an entity name.
 */
export function replicate(target: Function | object | string, options: ReplicateOptions): void {
  recordReplication(target, options);
}
