import { recordNotReplicated } from '../src/metadata/replication-storage';

/**
 * Keeps this column's value on the primary only: it is left out of the
 * outbox, Redis, logs, the dashboard and every target.
 */
export function NotReplicated(): PropertyDecorator {
  return (prototype, propertyName) => {
    recordNotReplicated(prototype.constructor, String(propertyName));
  };
}
