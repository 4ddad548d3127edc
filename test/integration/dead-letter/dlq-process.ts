import { spawn } from 'node:child_process';
import { WorkerProcess } from '../faults/worker-process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');
export const DLQ_CONFIG = path.join(ROOT, 'dist/test/fixtures/dlq-config.js');

function assertBuilt(): void {
  for (const file of [CLI, DLQ_CONFIG]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` before the dead-letter tests`);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `dualwrite <args> --config dist/test/fixtures/dlq-config.js` to the end, as a user would. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--config', DLQ_CONFIG], {
      cwd: ROOT,
      env: { ...process.env, DW_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dualwrite ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A `dualwrite worker` child process with the dead-letter config. */
export type DlqWorker = WorkerProcess;

export const DlqWorker = {
  spawn(env: Record<string, string>): DlqWorker {
    assertBuilt();
    return WorkerProcess.spawn({ DW_LOG_LEVEL: 'warn', ...env }, DLQ_CONFIG);
  },
};
