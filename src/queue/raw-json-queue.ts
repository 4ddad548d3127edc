import { Job, Queue, type JobJson } from 'bullmq';

/** Job data whose JSON text is already built (see `rawJobData`). */
const texts = new WeakMap<object, string>();

/**
 * Job data for `RawJsonQueue.addBulk`, given as its JSON text: BullMQ stores
 * the text as is instead of `JSON.stringify`ing an object. The relay builds
 * apply jobs this way around the row images, which are JSON text in the
 * outbox already; parsing and re-serializing each of them cost more than the
 * Redis round trip. The text must be exactly what `JSON.stringify` of the
 * data would give; workers parse it as usual.
 */
export function rawJobData<T>(text: string): T {
  const holder = {};
  texts.set(holder, text);
  return holder as T;
}

class RawJsonJob extends Job {
  override asJSON(): JobJson {
    const json = super.asJSON();
    const text = typeof this.data === 'object' && this.data !== null ? texts.get(this.data as object) : undefined;
    return text === undefined ? json : { ...json, data: text };
  }
}

/**
 * A BullMQ queue whose `add`/`addBulk` accept `rawJobData`, through the Job
 * class a queue uses to create jobs (BullMQ's own extension point for that);
 * every other operation is the plain Queue's.
 */
export class RawJsonQueue<T> extends Queue<T> {
  protected override get Job(): typeof Job {
    // Generic only in its type parameters, which a subclass cannot restate.
    return RawJsonJob as unknown as typeof Job;
  }
}
