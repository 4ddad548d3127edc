import type { DataSource } from 'typeorm';
import { reEmit } from '../capture/re-emit';
import type { Dialect } from '../dialect/dialect';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import type { DeadLetter } from './dead-letter';
import type { DeadLetterQueue } from './dead-letter-queue';
import { DualWriteError } from '../errors/dual-write-error';

export interface ReplayResult {
  replayed: string[];
  upserts: number;
  deletes: number;
}

/**
 * Replays dead letters by capturing their rows' CURRENT state again (never
 * the letter's old image): the re-emitted change gets a fresh version and
 * goes through the version gate, so an old letter cannot roll a target back
 * past a newer write, and a row deleted meanwhile replays as a delete. Each
 * letter is removed once its row is safely in the outbox.
 */
export async function replayDeadLetters(
  deps: { primary: DataSource; dialect: Dialect; entities: ReadonlyMap<string, ReplicatedEntity>; deadLetters: DeadLetterQueue },
  letters: readonly DeadLetter[],
): Promise<ReplayResult> {
  const result: ReplayResult = { replayed: [], upserts: 0, deletes: 0 };
  const groups = new Map<string, DeadLetter[]>();
  for (const letter of letters) {
    const group = `${letter.target}\u0000${letter.change.entity}`;
    groups.set(group, [...(groups.get(group) ?? []), letter]);
  }
  for (const group of groups.values()) {
    const { target, change } = group[0];
    const entity = deps.entities.get(change.entity);
    if (!entity) {
      throw new DualWriteError(
        'ENTITY_NOT_FOUND',
        `Dead letter ${group[0].id} is a change of entity "${change.entity}", which this config does not replicate; run replay with the application's config.`,
        { entity: change.entity, target },
      );
    }
    const emitted = await reEmit(deps.primary, deps.dialect, entity, group.map((l) => l.change.key), [target]);
    result.upserts += emitted.upserts;
    result.deletes += emitted.deletes;
    for (const letter of group) {
      await deps.deadLetters.remove(letter.id);
      result.replayed.push(letter.id);
    }
  }
  return result;
}
