import type { DataSource } from 'typeorm';
import type { Dialect } from '../dialect/dialect';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import { OutboxWriter, type CapturedChange } from '../outbox/outbox-writer';
import { readRowImages } from './row-reader';

/** What a re-emission wrote to the outbox. */
export interface ReEmitted {
  upserts: number;
  deletes: number;
}

/**
 * Captures the CURRENT state of rows again, as if they had just been written:
 * in one primary transaction, the rows are read with a lock and written to the
 * outbox (an upsert of the current image, or a delete where the row is gone),
 * for the given targets only. The outbox gives each a fresh version, later
 * than any write that committed before the lock was granted, so applying it
 * can never roll a target back past a newer write, and a write after it
 * still wins. Dead-letter replay, the reconciler's repairs and backfill all
 * go through here (DESIGN §3.6). The caller nudges the relay.
 */
export async function reEmit(
  primary: DataSource,
  dialect: Dialect,
  entity: ReplicatedEntity,
  keys: readonly string[][],
  targets: readonly string[],
): Promise<ReEmitted> {
  if (keys.length === 0) return { upserts: 0, deletes: 0 };
  const queryRunner = primary.createQueryRunner('master');
  try {
    await queryRunner.connect();
    await queryRunner.startTransaction();
    const images = await readRowImages(queryRunner, dialect, entity, keys, { forUpdate: true });
    const capturedAt = Date.now();
    const changes: CapturedChange[] = keys.map((key) => {
      const row = images.get(key.join('\u0000')) ?? null;
      return { entity: entity.name, op: row ? 'upsert' : 'delete', key: [...key], row, targets: targets.join(','), capturedAt };
    });
    await new OutboxWriter(dialect).write(queryRunner, changes);
    await queryRunner.commitTransaction();
    const deletes = changes.filter((c) => c.op === 'delete').length;
    return { upserts: changes.length - deletes, deletes };
  } catch (error) {
    if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await queryRunner.release();
  }
}
