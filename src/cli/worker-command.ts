import { DualWrite, loadConfig } from '../index';
import { usageError } from './cli-error';

export async function workerCommand(options: { config?: string; targets?: string; concurrency?: string }): Promise<number> {
  const concurrency = options.concurrency === undefined ? undefined : Number(options.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency <= 0)) {
    throw usageError(`--concurrency takes a positive whole number, got "${options.concurrency}".`);
  }
  const targets = options.targets?.split(',').map((t) => t.trim()).filter(Boolean);
  if (targets !== undefined && targets.length === 0) {
    throw usageError(`--targets takes a comma-separated list of target names (e.g. --targets reporting,search), got "${options.targets}".`);
  }
  const dw = await DualWrite.start(loadConfig(options.config));
  let worker: { close(): Promise<void>; waitingTargets(): string[] };
  try {
    worker = await dw.startWorker({ targets, concurrency });
  } catch (error) {
    await dw.close();
    throw error;
  }
  const waiting = worker.waitingTargets();
  dw.logger.info(
    { targets: targets ?? Object.keys(dw.config.targets), unreachable: waiting },
    waiting.length === 0
      ? 'dualwrite worker started'
      : `dualwrite worker started; still trying to reach target(s) ${waiting.join(', ')} in the background (their changes wait in their queues)`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      dw.logger.info({ signal }, 'dualwrite worker stopping: finishing in-flight jobs');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await worker.close();
  await dw.close();
  return 0;
}
