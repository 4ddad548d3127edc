import path from 'node:path';
import { CLI, ROOT, runNode, type RunResult } from '../../support/node-process';
import { WorkerProcess } from '../faults/worker-process';

export { CLI };
export const DLQ_CONFIG = path.join(ROOT, 'dist/test/fixtures/dlq-config.js');

export type CliResult = RunResult;

/** Runs `dualwrite <args> --config dist/test/fixtures/dlq-config.js` to the end, as a user would. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return runNode([CLI, ...args, '--config', DLQ_CONFIG], { DW_LOG_LEVEL: 'warn', ...env }, timeoutMs);
}

/** A `dualwrite worker` child process with the dead-letter config. */
export type DlqWorker = WorkerProcess;

export const DlqWorker = {
  spawn(env: Record<string, string>): DlqWorker {
    return WorkerProcess.spawn({ DW_LOG_LEVEL: 'warn', ...env }, DLQ_CONFIG);
  },
};
