import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';

const run = promisify(execFile);

/**
 * Throwaway database and Redis servers of the chaos soak, each on its own
 * temp directory and free port. The soak stops and restarts THESE, never the
 * shared servers on 5432/3306/6379 that other tests use at the same time.
 */
export interface PrivateServer {
  readonly kind: 'postgres' | 'mariadb' | 'redis';
  readonly port: number;
  /** Crash-stops the server (no clean shutdown). */
  stop(): Promise<void>;
  /** Starts it again on the same data directory and port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const cleanups = new Set<() => void>();
let exitHookInstalled = false;
/** If the soak dies, its servers must not outlive it. */
function onExit(cleanup: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => cleanups.forEach((c) => c()));
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

function pgBin(): string {
  for (const version of ['17', '16', '15', '14']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    try {
      execFileSync(path.join(dir, 'pg_ctl'), ['--version'], { stdio: 'ignore' });
      return dir;
    } catch {
      // next version
    }
  }
  throw new Error('chaos: no PostgreSQL server binaries under /usr/lib/postgresql/<version>/bin (needed for the private target)');
}

/**
 * A private PostgreSQL cluster (initdb + pg_ctl). The server refuses to run as
 * root, so when the soak runs as root it runs as the `postgres` OS user.
 */
export async function privatePostgres(): Promise<PrivateServer> {
  const bin = pgBin();
  const dir = mkdtempSync(path.join(tmpdir(), 'dw-chaos-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const pgRun = (tool: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]) : run(path.join(bin, tool), args));
  const port = await freePort();
  await pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  // Commits must survive the crash-stop: synchronous_commit stays on (with it
  // off, PostgreSQL acknowledges commits it then loses in a crash, and the
  // target silently drops applies the worker saw succeed). fsync=off only
  // risks an OS crash, which the soak does not simulate.
  const settings = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
  let running = false;
  const stopSync = () => {
    if (!running) return;
    try {
      execFileSync(asRoot ? 'runuser' : path.join(bin, 'pg_ctl'), [...(asRoot ? ['-u', 'postgres', '--', path.join(bin, 'pg_ctl')] : []), '-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
    } catch {
      // already down
    }
  };
  const forget = onExit(stopSync);
  const server: PrivateServer = {
    kind: 'postgres',
    port,
    start: async () => {
      await pgRun('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', settings, 'start']);
      running = true;
      await until(async () => {
        const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
        await c.connect();
        await c.end();
        return true;
      }, `private PostgreSQL on ${port}`);
    },
    stop: async () => {
      await pgRun('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      running = false;
    },
    destroy: async () => {
      await server.stop();
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** A server run as a child process of the soak (MariaDB, Redis): stop = SIGKILL, start = spawn again. */
function childServer(kind: 'mariadb' | 'redis', port: number, dir: string, command: string, args: string[], ready: () => Promise<boolean>): PrivateServer {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const forget = onExit(() => child?.kill('SIGKILL'));
  const server: PrivateServer = {
    kind,
    port,
    start: async () => {
      const log = openSync(path.join(dir, 'log'), 'a');
      const started = spawn(command, args, { stdio: ['ignore', log, log] });
      child = started;
      exited = new Promise((resolve) => started.once('exit', () => resolve()));
      let failed: Error | undefined;
      started.once('error', (error) => (failed = error));
      await until(async () => {
        if (failed) throw failed;
        if (started.exitCode !== null) throw new Error(`${command} exited with ${started.exitCode}; see ${dir}/log`);
        return ready();
      }, `private ${kind} on ${port}`);
    },
    stop: async () => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      child = undefined;
    },
    destroy: async () => {
      await server.stop();
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A private MariaDB server (mariadb-install-db + mariadbd), root without a password on 127.0.0.1. */
export async function privateMariaDb(): Promise<PrivateServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dw-chaos-maria-'));
  const data = path.join(dir, 'data');
  const port = await freePort();
  await run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--user=root']);
  const args = [
    '--no-defaults',
    `--datadir=${data}`,
    `--port=${port}`,
    `--socket=${path.join(dir, 's')}`,
    `--pid-file=${path.join(dir, 'pid')}`,
    '--bind-address=127.0.0.1',
    '--user=root',
    '--skip-log-bin',
    // 2: the log reaches the OS at each commit, so a killed mariadbd keeps every acknowledged commit (0 loses up to a second of them).
    '--innodb-flush-log-at-trx-commit=2',
    '--innodb-buffer-pool-size=128M',
    '--max-connections=300',
  ];
  const server = childServer('mariadb', port, dir, 'mariadbd', args, async () => {
    const c = await createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
    await c.end();
    return true;
  });
  await server.start();
  return server;
}

/** A private Redis without persistence: a restart loses every key, as the soak wants. */
export async function privateRedis(): Promise<PrivateServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dw-chaos-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const server = childServer('redis', port, dir, 'redis-server', args, async () => {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'ping']);
    return stdout.trim() === 'PONG';
  });
  await server.start();
  return server;
}
