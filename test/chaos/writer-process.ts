/**
 * A writer child of the chaos soak: the application side. Captures its writes
 * with DualWrite (in-process relay after each commit) and writes its share of
 * the workload. Talks to the soak over IPC:
 *   → { type: 'commit', tally }   after each commit
 *   → { type: 'done', tally }     when its quota is committed
 *   ← { type: 'die-in-transaction' }  SIGKILL itself in its next transaction, between its writes and COMMIT
 * Environment: the CHAOS_* variables of chaos-config.ts, plus
 *   CHAOS_WRITER, CHAOS_WRITERS, CHAOS_QUOTA, CHAOS_SEED, CHAOS_RATE
 */
import 'reflect-metadata';
import { DualWrite } from '../../src';
import { chaosConfig, readChaosEnv } from './chaos-config';
import { chaosEntities } from './chaos-entities';
import { runWorkload } from './workload';

async function main(): Promise<void> {
  const env = readChaosEnv();
  const number = (name: string) => Number(process.env[name] ?? 0);
  const entities = chaosEntities(true);
  const config = chaosConfig(env, 'writer', {}, entities);
  let dying = false;
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'die-in-transaction') dying = true;
  });
  const dw = await DualWrite.start(config);
  const tally = await runWorkload(config.primary, entities, {
    writer: number('CHAOS_WRITER'),
    writers: number('CHAOS_WRITERS'),
    quota: number('CHAOS_QUOTA'),
    seed: number('CHAOS_SEED'),
    rate: number('CHAOS_RATE'),
    dieBeforeCommit: () => dying,
    onCommit: (t) => process.send?.({ type: 'commit', tally: t }),
  });
  // Whatever the in-process relay could not move (Redis down) stays in the outbox for the workers' relay loop.
  await dw.flush().catch(() => undefined);
  process.send?.({ type: 'done', tally });
  await dw.close().catch(() => undefined);
  await config.primary.destroy().catch(() => undefined);
  process.disconnect?.();
}

main().catch((error) => {
  process.stderr.write(`chaos writer failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
