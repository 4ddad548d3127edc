import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';

/** The package root, found from the sources (ts-jest) or from dist/ (compiled benches and the chaos soak). */
export const ROOT = (() => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'typeorm-dualwrite') return dir;
  }
  throw new Error(`cannot find the typeorm-dualwrite package root above ${__dirname}`);
})();
/** The compiled CLI, as users run it. */
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

/**
 * A Node child process of a test (a `dualwrite worker`, a writer, a CLI run):
 * compiled files only, the tail of its output kept for failure messages and,
 * with `log`, every line appended to a log with a label.
 */
export class NodeProcess {
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

  /** `node <args…>`; every `.js` argument must exist (they are compiled by `npm run build`). */
  static spawn(label: string, args: string[], env: Record<string, string>, options: { ipc?: boolean; log?: WriteStream } = {}): NodeProcess {
    for (const file of args.filter((a) => a.endsWith('.js'))) {
      if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (these tests run the compiled CLI and fixtures)`);
    }
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    return new NodeProcess(label, child, options.log);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.tail;
  }

  /** SIGKILL: no chance to finish, release locks or close connections. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it does not stop in time. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** What a finished child printed, and how it ended. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node <args…>` to the end (e.g. a `dualwrite` verb, as a user runs it); rejects if it outlives `timeoutMs`. */
export function runNode(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<RunResult> {
  for (const file of args.filter((a) => a.endsWith('.js'))) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (these tests run the compiled CLI and fixtures)`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
