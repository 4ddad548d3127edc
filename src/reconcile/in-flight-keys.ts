import type { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { OUTBOX_TABLE } from '../../migrations/table-names';
import type { Dialect } from '../dialect/dialect';
import { keyString } from '../outbox/change';
import { checkApplyJob } from '../queue/check-apply-job';
import { BATCH_OP } from '../relay/outbox-row';
import type { ApplyJobData } from '../queue/apply-job';

/** Job states whose changes have not been applied yet, but will be. */
const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/**
 * The keys of an entity with a change on its way to a target: still in the
 * primary's outbox, or in a job of the target's queue that has not finished.
 * The outbox is read BEFORE the queue: the relay adds a change's job before it
 * deletes the change's outbox row, so a change moving between the two is seen
 * in at least one of them.
 */
export async function inFlightKeys(
  primary: DataSource,
  dialect: Dialect,
  queue: Queue<ApplyJobData>,
  entity: string,
  target: string,
): Promise<Set<string>> {
  const keys = new Set<string>();
  const rows = (await primary.query(
    `SELECT op, pk, targets FROM ${dialect.quoteTable(OUTBOX_TABLE)} WHERE entity = ${dialect.placeholder(1)}`,
    [entity],
  )) as Array<{ op: string; pk: string; targets: string }>;
  for (const row of rows) {
    if (!row.targets.split(',').includes(target)) continue;
    // A batch row's `pk` lists its changes' keys.
    const pk = JSON.parse(row.pk) as string[] | string[][];
    if (row.op === BATCH_OP) for (const key of pk as string[][]) keys.add(keyString(key));
    else keys.add(keyString(pk as string[]));
  }
  const jobs = await queue.getJobs([...PENDING_STATES], 0, -1);
  for (const job of jobs) {
    if (!job?.data) continue;
    for (const change of checkApplyJob(job.data, job.id).changes) if (change.entity === entity) keys.add(keyString(change.key));
  }
  return keys;
}
