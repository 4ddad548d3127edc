import path from 'node:path';
import type { WriteStream } from 'node:fs';
import { CLI, NodeProcess, ROOT } from '../support/node-process';

export { CLI, ROOT };
export const WORKER_CONFIG = path.join(ROOT, 'dist/test/chaos/chaos-worker-config.js');
export const WRITER = path.join(ROOT, 'dist/test/chaos/writer-process.js');

/** A child process of the soak (a `dualwrite worker`, a writer, a CLI run), its lines in the run's log. */
export type ChaosProcess = NodeProcess;
export const ChaosProcess = {
  spawn: NodeProcess.spawn,
  /** `dualwrite worker` with the soak's config. */
  worker(label: string, env: Record<string, string>, log?: WriteStream): ChaosProcess {
    return NodeProcess.spawn(label, [CLI, 'worker', '--config', WORKER_CONFIG], env, { log });
  },
};

/** Runs a compiled CLI verb to completion; resolves with its exit code and output. */
export async function runCli(args: string[], env: Record<string, string>, log?: WriteStream): Promise<{ code: number | null; output: string }> {
  let output = '';
  const p = ChaosProcess.spawn(`cli ${args[0]}`, [CLI, ...args, '--config', WORKER_CONFIG], env, { log });
  p.child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  p.child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const { code } = await p.exited;
  return { code, output };
}
