import { createHash } from 'node:crypto';

/**
 * The BullMQ job id of a batch of changes, derived from their versions (the
 * first version of each outbox row in it; `last` is the last change's
 * version, for the eye). It starts with a letter and uses `-` as the
 * separator, so it can never be integer-looking, contain `:`, or equal one of
 * BullMQ's own key names (`wait`, `active`, …). The digest covers every
 * row in the batch, so two different batches never share an id.
 */
export function batchJobId(target: string, sequences: readonly string[], last = sequences[sequences.length - 1]): string {
  const digest = createHash('sha1').update(target).update('\u0000').update(sequences.join(',')).digest('hex').slice(0, 16);
  return `c-${sequences[0]}-${last}-${digest}`;
}
