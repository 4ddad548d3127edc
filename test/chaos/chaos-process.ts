import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';

/** The package root, from the sources (ts-jest) or from dist/ (npm run chaos). */
export const ROOT = (() => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'typeorm-dualwrite') return dir;
  }
  throw new Error(`chaos: cannot find the typeorm-dualwrite package root above ${__dirname}`);
})();
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');
export const WORKER_CONFIG = path.join(ROOT, 'dist/test/chaos/chaos-worker-config.js');
export const WRITER = path.join(ROOT, 'dist/test/chaos/writer-process.js');

/**
 * A child process of the soak (a `dualwrite worker`, a writer, a CLI run):
 * compiled files only, output appended to the run's log with a label and the
 * tail kept for messages.
 */
export class ChaosProcess {
  private tail = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly label: string,
    readonly child: ChildProcess,
    log: WriteStream | undefined,
  ) {
    const keep = (chunk: Buffer) => {
      const text = chunk.toString();
      this.tail = (this.tail + text).slice(-8000);
      log?.write(text.split('\n').filter(Boolean).map((l) => `[${label}] ${l}\n`).join(''));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static spawn(label: string, args: string[], env: Record<string, string>, options: { ipc?: boolean; log?: WriteStream } = {}): ChaosProcess {
    for (const file of args.filter((a) => a.endsWith('.js'))) {
      if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (the soak runs the compiled CLI and fixtures)`);
    }
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    return new ChaosProcess(label, child, options.log);
  }

  /** `dualwrite worker` with the soak's config. */
  static worker(label: string, env: Record<string, string>, log?: WriteStream): ChaosProcess {
    return ChaosProcess.spawn(label, [CLI, 'worker', '--config', WORKER_CONFIG], env, { log });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.tail;
  }

  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Runs a compiled CLI verb to completion; resolves with its exit code and output. */
export async function runCli(args: string[], env: Record<string, string>, log?: WriteStream): Promise<{ code: number | null; output: string }> {
  let output = '';
  const p = ChaosProcess.spawn(`cli ${args[0]}`, [CLI, ...args, '--config', WORKER_CONFIG], env, { log });
  p.child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  p.child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const { code } = await p.exited;
  return { code, output };
}
