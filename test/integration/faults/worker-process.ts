import path from 'node:path';
import { CLI, NodeProcess, ROOT } from '../../support/node-process';

export { CLI };
export const WORKER_CONFIG = path.join(ROOT, 'dist/test/fixtures/worker-config.js');

/** A `dualwrite worker` child process (the compiled CLI, as users run it). */
export type WorkerProcess = NodeProcess;
export const WorkerProcess = {
  spawn(env: Record<string, string>, config = WORKER_CONFIG): WorkerProcess {
    return NodeProcess.spawn('worker', [CLI, 'worker', '--config', config], env);
  },
};
