import type { DataSource } from 'typeorm';
import { reEmit } from '../capture/re-emit';
import type { Dialect } from '../dialect/dialect';
import type { ReplicatedEntity } from '../metadata/replicated-entity';
import { keyString } from '../outbox/change';
import type { DeadLetter } from './dead-letter';
import type { DeadLetterQueue } from './dead-letter-queue';
import { DualWriteError } from '../errors/dual-write-error';

export interface ReplayResult {
  /** Ids of the letters replayed (and removed). */
  replayed: string[];
  /** Rows sent as their current image (several letters of one row count once). */
  upserts: number;
  /** Rows sent as a delete: they no longer exist on the primary. */
  deletes: number;
}

/**
 * Replays dead letters by capturing their rows' CURRENT state again (never
 * the letter's old image): the re-emitted change gets a fresh version and
 * goes through the version gate, so an old letter cannot roll a target back
 * past a newer write, and a row deleted meanwhile replays as a delete. Every
 * letter is checked before anything is sent; each is removed once its row is
 * safely in the outbox.
 */
export async function replayDeadLetters(
  deps: { primary: DataSource; dialect: Dialect; entities: ReadonlyMap<string, ReplicatedEntity>; deadLetters: DeadLetterQueue },
  letters: readonly DeadLetter[],
): Promise<ReplayResult> {
  const groups = new Map<string, { target: string; entity: ReplicatedEntity; letters: DeadLetter[] }>();
  for (const letter of letters) {
    const { target, change } = letter;
    const group = `${target}\u0000${change.entity}`;
    const existing = groups.get(group);
    if (existing) {
      existing.letters.push(letter);
      continue;
    }
    const entity = deps.entities.get(change.entity);
    if (letter.failure.code === 'PAYLOAD_INVALID' && (!entity || change.key.length !== entity.primaryColumns.length)) {
      throw new DualWriteError(
        'PAYLOAD_INVALID',
        `Dead letter ${letter.id} came from a malformed apply job and names no row that could be replayed; nothing was replayed. ` +
          `Discard it (dualwrite dlq discard ${letter.id}); \`dualwrite reconcile --repair\` brings the target up to date if a change was lost with it.`,
        { entity: change.entity, target },
      );
    }
    if (!entity) {
      throw new DualWriteError(
        'ENTITY_NOT_FOUND',
        `Dead letter ${letter.id} is a change of entity "${change.entity}", which this config does not replicate; nothing was replayed. Run replay with the application's config.`,
        { entity: change.entity, target },
      );
    }
    if (!entity.targets.has(target)) {
      throw new DualWriteError(
        'TARGET_UNKNOWN',
        `Dead letter ${letter.id} is for target "${target}", which entity "${change.entity}" no longer replicates to (@Replicate({ to: [${entity.options.to.map((t) => `'${t}'`).join(', ')}] })); nothing was replayed. Discard it instead.`,
        { entity: change.entity, target },
      );
    }
    groups.set(group, { target, entity, letters: [letter] });
  }

  const result: ReplayResult = { replayed: [], upserts: 0, deletes: 0 };
  for (const { target, entity, letters: group } of groups.values()) {
    const keys = new Map<string, string[]>();
    for (const letter of group) keys.set(keyString(letter.change.key), letter.change.key);
    const emitted = await reEmit(deps.primary, deps.dialect, entity, [...keys.values()], [target]);
    result.upserts += emitted.upserts;
    result.deletes += emitted.deletes;
    for (const letter of group) {
      await deps.deadLetters.remove(letter.id);
      result.replayed.push(letter.id);
    }
  }
  return result;
}
