import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { DualWrite, runMigrations, type ReconcileReport } from '../../src';
import { OUTBOX_TABLE } from '../../migrations/table-names';
import { dialectFor } from '../../src/dialect/dialect-for';
import { createDatabase, MARIADB, PG, type Engine, type TestDatabase } from '../support/databases';
import { chaosConfig, primaryOptions, targetOptions, type ChaosEnv } from './chaos-config';
import { CHAOS_ENTITY_NAMES, CHAOS_TARGETS, chaosEntities, COUNTERS, counterName } from './chaos-entities';
import { ChaosProcess, runCli, WRITER } from './chaos-process';
import { killConnections, type ConnectionScope } from './faults';
import { privateMariaDb, privatePostgres, privateRedis, type PrivateServer } from './private-servers';
import { auditOutbox } from '../integration/faults/convergence';
import { compareWithPrimary, lastCapturedChanges, ledgerOf, noDrift, unexplainedDrift, type Drift } from './verify';

/** The audit copy of the outbox that `auditOutbox` keeps (a trigger on the outbox INSERT). */
const AUDIT_TABLE = 'fault_outbox_audit';
import { emptyTally, seededRandom, type WriterTally } from './workload';

export interface ChaosOptions {
  primary: Engine;
  /** Committed changes of the fault phase. */
  changes: number;
  /** Committed changes of the clean phase (same workload, no faults) that measures the fault-free throughput. */
  cleanChanges: number;
  writers: number;
  workers: number;
  /** Changes per second per writer in the fault phase; 0 = as fast as they can (throttle short runs so every fault lands mid-stream). */
  rate: number;
  /** ms between worker SIGKILLs (random in this range). */
  workerKillEvery: [number, number];
  /** ms between connection kills (random in this range). */
  connectionKillEvery: [number, number];
  /** How long each target is down. */
  outageMs: number;
  seed: number;
  /** Progress lines. */
  log: (line: string) => void;
  /** How long the final drain may take before the run gives up, ms. @defaultValue 600000 */
  drainTimeoutMs?: number;
}

export type FaultKind =
  | 'worker SIGKILL'
  | 'target stopped (maria)'
  | 'target stopped (pg)'
  | 'Redis lost its data'
  | 'writer SIGKILL mid-transaction'
  | 'connections killed (primary, worker sessions)'
  | 'connections killed (target pg)'
  | 'connections killed (target maria)';

export const FAULT_KINDS: FaultKind[] = [
  'worker SIGKILL',
  'target stopped (maria)',
  'target stopped (pg)',
  'Redis lost its data',
  'writer SIGKILL mid-transaction',
  'connections killed (primary, worker sessions)',
  'connections killed (target pg)',
  'connections killed (target maria)',
];

export interface PhaseFigures {
  changes: number;
  /** Writers' start to their last commit, ms. */
  writeMs: number;
  /** Writers' start to every target equal to the primary, ms. */
  convergeMs: number;
  /** Committed changes per second while writing. */
  writeRate: number;
  /** Changes per second from the first write to full convergence (end to end). */
  endToEndRate: number;
}

export interface ChaosReport {
  primary: Engine;
  seed: number;
  tally: WriterTally;
  clean: PhaseFigures;
  faulty: PhaseFigures;
  /** faulty.endToEndRate / clean.endToEndRate */
  throughputRatio: number;
  faults: Record<FaultKind, number>;
  sessionsKilled: number;
  workerExitsOnTheirOwn: number;
  /** Drift the independent comparison saw after the faults and the drain, before the repair (a Redis loss drops queued jobs: the reconciler's job). */
  driftBeforeRepair: Record<string, Drift>;
  /** Of those, the ones a Redis loss cannot explain (last change captured after it): must be none. */
  unexplainedBeforeRepair: string[];
  /** Outbox rows written (audit copy), before the repair: the writers' committed changes plus the seeded hot rows. */
  captured: number;
  reconcileRepair: Array<Pick<ReconcileReport, 'entity' | 'target' | 'status' | 'missing' | 'extra' | 'changed' | 'repaired'>>;
  /** The reconciler's own check after the repair: every report clean. */
  reconcileCheckClean: boolean;
  reconcileCheckOutput: string;
  /** The independent comparison after the repair: must be 0/0/0. */
  final: Record<string, Drift>;
  lost: number;
  resurrected: number;
  stale: number;
  deadLetters: number;
  deadLetterLines: string[];
  failedJobs: number;
  /** Last fault's end to every target equal to the primary, ms. */
  lastFaultToConvergenceMs: number;
  /** Final drain + repair + drain, ms. */
  ok: boolean;
  problems: string[];
  logFile: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll(check: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

async function createPrivateDatabase(server: PrivateServer, name: string): Promise<void> {
  if (server.kind === 'postgres') {
    const c = new Client({ host: PG.host, port: server.port, user: PG.username, database: 'postgres' });
    await c.connect();
    await c.query(`CREATE DATABASE "${name}"`);
    await c.end();
  } else {
    const c = await createConnection({ host: MARIADB.host, port: server.port, user: 'root', password: '' });
    await c.query(`CREATE DATABASE \`${name}\``);
    await c.end();
  }
}

/** A MariaDB account of the workers on the shared primary server, so the soak can kill exactly their sessions. */
async function workerAccount(database: string): Promise<{ user: string; password: string; drop(): Promise<void> }> {
  const user = `dwc_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const admin = () => createConnection({ host: MARIADB.host, port: MARIADB.port, user: MARIADB.username, password: MARIADB.password });
  const c = await admin();
  try {
    await c.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
    await c.query(`GRANT ALL PRIVILEGES ON \`${database}\`.* TO '${user}'@'%'`);
  } finally {
    await c.end();
  }
  return {
    user,
    password,
    drop: async () => {
      const d = await admin();
      await d.query(`DROP USER IF EXISTS '${user}'@'%'`).finally(() => d.end());
    },
  };
}

/** Keeps `count` `dualwrite worker` processes alive: a dead one (killed, or failed to start while a target is down) is replaced. */
class WorkerPool {
  readonly processes: Array<ChaosProcess | undefined> = [];
  private stopping = false;
  exitsOnTheirOwn = 0;
  private generation = 0;

  constructor(
    private readonly count: number,
    private readonly env: Record<string, string>,
    private readonly log: WriteStream,
  ) {}

  start(): void {
    for (let i = 0; i < this.count; i++) this.spawn(i);
  }

  private spawn(slot: number): void {
    if (this.stopping) return;
    const p = ChaosProcess.worker(`worker${slot}.${++this.generation}`, this.env, this.log);
    this.processes[slot] = p;
    void p.exited.then(({ signal }) => {
      if (this.stopping) return;
      if (signal !== 'SIGKILL') this.exitsOnTheirOwn++;
      // A worker that could not start (a target down) is retried a little later.
      setTimeout(() => this.spawn(slot), signal === 'SIGKILL' ? 200 : 1000);
    });
  }

  /** SIGKILLs one running worker at random; false if none was running. */
  async killOne(random: () => number): Promise<boolean> {
    const running = this.processes.filter((p): p is ChaosProcess => !!p && p.running);
    if (running.length === 0) return false;
    await running[Math.floor(random() * running.length)].kill();
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.processes.map((p) => p?.stop(15_000)));
  }
}

/**
 * Writer processes sharing a quota of committed changes; a writer killed
 * mid-transaction is replaced by one that writes the rest of its share.
 */
class WriterGroup {
  private readonly committed: number[] = [];
  private readonly done: boolean[] = [];
  private readonly procs: Array<ChaosProcess | undefined> = [];
  private readonly base: WriterTally[] = [];
  private readonly current: WriterTally[] = [];
  private generation = 0;
  killedMidTransaction = 0;
  finished: Promise<void>;
  private resolveFinished!: () => void;
  private failure: Error | undefined;

  constructor(
    private readonly count: number,
    private readonly quota: number,
    private readonly rate: number,
    private readonly seed: number,
    private readonly env: Record<string, string>,
    private readonly log: WriteStream,
  ) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  start(): void {
    for (let w = 0; w < this.count; w++) {
      this.base[w] = emptyTally();
      this.current[w] = emptyTally();
      this.committed[w] = 0;
      this.done[w] = false;
      this.spawn(w);
    }
  }

  private share(w: number): number {
    return Math.floor(this.quota / this.count) + (w < this.quota % this.count ? 1 : 0);
  }

  private spawn(w: number): void {
    const remaining = this.share(w) - this.committed[w];
    const p = ChaosProcess.spawn(
      `writer${w}.${++this.generation}`,
      [WRITER],
      {
        ...this.env,
        CHAOS_WRITER: String(w),
        CHAOS_WRITERS: String(this.count),
        CHAOS_QUOTA: String(remaining),
        CHAOS_SEED: String((this.seed + 7919 * this.generation) >>> 0),
        CHAOS_RATE: String(this.rate),
      },
      { ipc: true, log: this.log },
    );
    this.procs[w] = p;
    p.child.on('message', (m: { type: string; tally: WriterTally }) => {
      this.current[w] = m.tally;
      this.committed[w] = this.base[w].changes + m.tally.changes;
      if (m.type === 'done') this.done[w] = true;
    });
    void p.exited.then(({ code, signal }) => {
      if (this.done[w]) return this.check();
      if (signal === 'SIGKILL') {
        // Its open transaction died with it; a new writer writes the rest of its share.
        this.base[w] = add(this.base[w], this.current[w]);
        this.current[w] = emptyTally();
        this.spawn(w);
        return;
      }
      this.failure = new Error(`writer ${w} exited with ${code ?? signal} before its quota:\n${p.output()}`);
      this.resolveFinished();
    });
  }

  private check(): void {
    if (this.done.every(Boolean)) this.resolveFinished();
  }

  /** Committed changes so far. */
  progress(): number {
    return this.committed.reduce((a, b) => a + b, 0);
  }

  tally(): WriterTally {
    return this.current.reduce((acc, t, w) => add(acc, add(this.base[w], t)), emptyTally());
  }

  get running(): boolean {
    return !this.done.every(Boolean) && !this.failure;
  }

  /** Asks a running writer to SIGKILL itself between its next transaction's writes and its COMMIT; resolves when it died. */
  async killOneMidTransaction(random: () => number): Promise<boolean> {
    const candidates = this.procs.map((p, w) => ({ p, w })).filter(({ p, w }) => p?.running && !this.done[w]);
    if (candidates.length === 0) return false;
    const { p } = candidates[Math.floor(random() * candidates.length)];
    p!.child.send({ type: 'die-in-transaction' });
    const { signal } = await p!.exited;
    if (signal === 'SIGKILL') this.killedMidTransaction++;
    return signal === 'SIGKILL';
  }

  async wait(): Promise<void> {
    await this.finished;
    if (this.failure) throw this.failure;
  }

  async kill(): Promise<void> {
    await Promise.all(this.procs.map((p) => p?.kill()));
  }
}

function add(a: WriterTally, b: WriterTally): WriterTally {
  const out = { ...a };
  for (const k of Object.keys(out) as Array<keyof WriterTally>) out[k] = a[k] + b[k];
  return out;
}

/**
 * The chaos soak: PostgreSQL or MariaDB primary (own database on the shared
 * server) → a private PostgreSQL and a private MariaDB target, through a
 * private Redis, with `workers` `dualwrite worker` processes and `writers`
 * writer processes. A clean phase measures throughput without faults; the
 * fault phase injects every fault kind while the writers write; then the
 * workers drain, one `dualwrite reconcile --repair` runs, and the targets are
 * checked against the primary by the reconciler and by a full comparison.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const random = seededRandom(options.seed ^ 0x9e3779b9);
  const between = ([lo, hi]: [number, number]) => lo + random() * (hi - lo);
  const logFile = path.join(tmpdir(), `dw-chaos-${options.primary}-${Date.now().toString(36)}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const dlqLog = `${logFile}.dead-letters`;
  const t0 = Date.now();
  const say = (line: string) => {
    const stamped = `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s ${line}`;
    options.log(stamped);
    log.write(`[soak] ${stamped}\n`);
  };
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const problems: string[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  let workers: WorkerPool | undefined;
  let writers: WriterGroup | undefined;
  let dw: DualWrite | undefined;

  try {
    say(`chaos soak: ${options.primary} primary → pg + maria targets, seed ${options.seed}, log ${logFile}`);
    const [pgServer, mariaServer, redisServer] = await Promise.all([privatePostgres(), privateMariaDb(), privateRedis()]);
    cleanups.push(() => pgServer.destroy(), () => mariaServer.destroy(), () => redisServer.destroy());
    say(`private servers: PostgreSQL :${pgServer.port}, MariaDB :${mariaServer.port}, Redis :${redisServer.port}`);

    const primaryDb: TestDatabase = await createDatabase(options.primary, 'dwchaos');
    cleanups.push(() => primaryDb.drop());
    await Promise.all([createPrivateDatabase(pgServer, 'chaos'), createPrivateDatabase(mariaServer, 'chaos')]);
    const account = options.primary === 'mariadb' ? await workerAccount(primaryDb.name) : undefined;
    if (account) cleanups.push(() => account.drop());

    const env: ChaosEnv = {
      CHAOS_PRIMARY_ENGINE: options.primary,
      CHAOS_PRIMARY_PORT: String(options.primary === 'postgres' ? PG.port : MARIADB.port),
      CHAOS_PRIMARY_DB: primaryDb.name,
      CHAOS_WORKER_USER: account?.user,
      CHAOS_WORKER_PASSWORD: account?.password,
      CHAOS_PG_PORT: String(pgServer.port),
      CHAOS_PG_DB: 'chaos',
      CHAOS_MARIA_PORT: String(mariaServer.port),
      CHAOS_MARIA_DB: 'chaos',
      CHAOS_REDIS_PORT: String(redisServer.port),
      CHAOS_PREFIX: 'chaos',
      CHAOS_DLQ_LOG: dlqLog,
    };
    const childEnv = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;

    // Tables: the primary's from the replicated entities, the targets' from plain copies; then outbox and ledgers.
    const entities = chaosEntities(true);
    const primary = new DataSource({ ...primaryOptions(env, 'control'), entities: entities.all, synchronize: true });
    await primary.initialize();
    cleanups.push(() => primary.destroy());
    const tOptions = targetOptions(env, 'control');
    const targets = {
      pg: new DataSource({ ...tOptions.pg, entities: chaosEntities(false).all, synchronize: true }),
      maria: new DataSource({ ...tOptions.maria, entities: chaosEntities(false).all, synchronize: true }),
    };
    await Promise.all(Object.values(targets).map((t) => t.initialize()));
    await runMigrations({ primary, targets });
    await auditOutbox(primary);
    const capturedSoFar = async (what: 'COUNT(*)' | 'MAX(seq)') => {
      const rows = (await primary.query(`SELECT ${what} AS n FROM ${dialectFor(primary, { primary: true }).quoteTable(AUDIT_TABLE)}`)) as Array<{ n: string | number | null }>;
      return BigInt(rows[0].n ?? 0);
    };
    await Promise.all(Object.values(targets).map((t) => t.destroy()));

    dw = await DualWrite.start(chaosConfig(env, 'control', { primary, logger: { level: 'silent' } }, entities));
    const replicated = CHAOS_ENTITY_NAMES.map((n) => dw!.entity(n));
    const control = dw;
    // The hot rows every writer updates.
    await primary.getRepository(entities.ChaosCounter).save(Array.from({ length: COUNTERS }, (_, i) => ({ name: counterName(i), value: '0', writer: 'seed' })));

    const outboxRows = async () => {
      const d = dialectFor(primary, { primary: true });
      const rows = (await primary.query(`SELECT COUNT(*) AS n FROM ${d.quoteTable(OUTBOX_TABLE)}`)) as Array<{ n: string | number }>;
      return Number(rows[0].n);
    };
    const queued = async () => {
      let n = 0;
      for (const t of CHAOS_TARGETS) {
        const counts = await control.queues.get(t).getJobCounts('active', 'wait', 'delayed', 'prioritized', 'waiting-children');
        n += Object.values(counts).reduce((a, b) => a + b, 0);
      }
      return n;
    };
    const drained = async () => (await outboxRows()) === 0 && (await queued()) === 0;
    const compareAll = async () => {
      const out: Record<string, Drift> = {};
      for (const t of CHAOS_TARGETS) out[t] = await compareWithPrimary(primary, tOptions[t], t, replicated);
      return out;
    };
    const allEqual = (d: Record<string, Drift>) => Object.values(d).every(noDrift);

    workers = new WorkerPool(options.workers, childEnv, log);
    workers.start();
    await poll(async () => (await control.queues.get('pg').getWorkersCount()) >= options.workers, 60_000);
    say(`${options.workers} workers up`);

    // ---- Clean phase: the same workload, no faults: the throughput baseline.
    const cleanStart = Date.now();
    const clean = new WriterGroup(options.writers, options.cleanChanges, 0, options.seed, childEnv, log);
    writers = clean;
    clean.start();
    await clean.wait();
    const cleanWritten = Date.now();
    let cleanDrift: Record<string, Drift> = {};
    const cleanOk = await poll(async () => (await drained()) && allEqual((cleanDrift = await compareAll())), 300_000, 250);
    if (!cleanOk) problems.push(`clean phase did not converge: ${JSON.stringify(cleanDrift)}`);
    const cleanDone = Date.now();
    const cleanChanges = clean.tally().changes;
    const cleanFigures: PhaseFigures = {
      changes: cleanChanges,
      writeMs: cleanWritten - cleanStart,
      convergeMs: cleanDone - cleanStart,
      writeRate: cleanChanges / ((cleanWritten - cleanStart) / 1000),
      endToEndRate: cleanChanges / ((cleanDone - cleanStart) / 1000),
    };
    say(`clean phase: ${cleanChanges} changes written in ${(cleanFigures.writeMs / 1000).toFixed(1)} s, converged after ${(cleanFigures.convergeMs / 1000).toFixed(1)} s`);

    // ---- Fault phase.
    const faultStart = Date.now();
    let lastFaultEnd = faultStart;
    const faultDone = (kind: FaultKind, detail = '') => {
      faults[kind]++;
      lastFaultEnd = Date.now();
      say(`fault: ${kind}${detail ? ` (${detail})` : ''}`);
    };
    const faulty = new WriterGroup(options.writers, options.changes, options.rate, options.seed + 1, childEnv, log);
    writers = faulty;
    faulty.start();
    const progress = () => faulty.progress() / options.changes;
    let writing = true;
    const untilProgress = (fraction: number) => poll(async () => progress() >= fraction || !writing, 24 * 3600_000, 50);
    let sessionsKilled = 0;
    let redisWatermark: bigint | undefined;

    const workerKiller = (async () => {
      while (writing) {
        await sleep(between(options.workerKillEvery));
        if (writing && (await workers!.killOne(random))) faultDone('worker SIGKILL');
      }
    })();
    const scopes: Array<{ kind: FaultKind; scope: ConnectionScope }> = [
      {
        kind: 'connections killed (primary, worker sessions)',
        scope: {
          engine: options.primary,
          port: Number(env.CHAOS_PRIMARY_PORT),
          database: primaryDb.name,
          onlyWorkers: true,
          workerUser: account?.user,
        },
      },
      { kind: 'connections killed (target pg)', scope: { engine: 'postgres', port: pgServer.port, database: 'chaos', onlyWorkers: false } },
      { kind: 'connections killed (target maria)', scope: { engine: 'mariadb', port: mariaServer.port, database: 'chaos', onlyWorkers: false } },
    ];
    let outageOf: string | undefined;
    const connectionKiller = (async () => {
      let i = 0;
      while (writing) {
        await sleep(between(options.connectionKillEvery));
        if (!writing) break;
        const { kind, scope } = scopes[i++ % scopes.length];
        if (kind.includes(`target ${outageOf}`)) continue; // that server is down right now
        const killed = await killConnections(scope).catch((error) => {
          say(`connection kill on ${kind} failed: ${(error as Error).message}`);
          return -1;
        });
        if (killed >= 0) {
          sessionsKilled += killed;
          faultDone(kind, `${killed} sessions`);
        }
      }
    })();
    /** Stops a target for `outageMs`; `midway` runs halfway through (the Redis loss, so the jobs piled up for the stopped target are lost). */
    const outage = async (name: 'pg' | 'maria', server: PrivateServer, midway?: () => Promise<void>) => {
      outageOf = name;
      await server.stop();
      say(`target ${name} stopped`);
      await sleep(options.outageMs / 2);
      await midway?.();
      await sleep(options.outageMs / 2);
      await server.start();
      outageOf = undefined;
      faultDone(name === 'pg' ? 'target stopped (pg)' : 'target stopped (maria)', `${(options.outageMs / 1000).toFixed(0)} s down`);
    };
    const loseRedis = async () => {
      await redisServer.stop();
      redisWatermark = await capturedSoFar('MAX(seq)');
      say(`Redis killed (no persistence: every queued job is gone); changes up to v${redisWatermark} may have been in it`);
      await sleep(1000);
      await redisServer.start();
      faultDone('Redis lost its data', 'restarted empty');
    };
    const writerKill = async () => {
      if (await faulty.killOneMidTransaction(random)) faultDone('writer SIGKILL mid-transaction');
      else say('no writer left to kill mid-transaction');
    };
    const scheduled = (async () => {
      await untilProgress(0.05);
      await writerKill();
      await untilProgress(0.1);
      await outage('maria', mariaServer);
      await untilProgress(0.4);
      await outage('pg', pgServer, loseRedis);
      // A second writer kill if any writer is still writing.
      await untilProgress(0.8);
      if (faulty.running) await writerKill();
    })();
    const reporter = setInterval(() => say(`progress: ${faulty.progress()} of ${options.changes} changes committed`), 10_000);
    try {
      await faulty.wait();
    } finally {
      clearInterval(reporter);
    }
    const faultWritten = Date.now();
    say(`fault phase: ${faulty.tally().changes} changes written in ${((faultWritten - faultStart) / 1000).toFixed(1)} s`);
    await scheduled.finally(() => (writing = false));
    writing = false;
    await Promise.all([workerKiller, connectionKiller]);
    say(`faults over: ${JSON.stringify(faults)}`);

    // ---- Drain, one reconcile --repair, check.
    const drainTimeout = options.drainTimeoutMs ?? 600_000;
    if (!(await poll(drained, drainTimeout, 500))) problems.push(`not drained within ${drainTimeout} ms: ${await outboxRows().catch(() => '?')} outbox rows, ${await queued().catch(() => '?')} queued jobs`);
    const driftBeforeRepair = await compareAll();
    say(`drained; before repair: ${describeDrift(driftBeforeRepair)}`);
    const captured = Number(await capturedSoFar('COUNT(*)'));
    const ledgers = Object.fromEntries(await Promise.all(CHAOS_TARGETS.map(async (t) => [t, await ledgerOf(tOptions[t], t)] as const)));
    const unexplained = unexplainedDrift(driftBeforeRepair, await lastCapturedChanges(primary, AUDIT_TABLE), redisWatermark, ledgers);
    if (unexplained.length > 0) {
      problems.push(`${unexplained.length} differences before the repair that the Redis loss cannot explain: ${unexplained.slice(0, 5).join('; ')}`);
    }
    const repair = await runCli(['reconcile', '--repair', '--json'], childEnv, log);
    const repairReports = jsonReports(repair.output);
    if (!repairReports) problems.push(`reconcile --repair printed no report (exit ${repair.code}):\n${repair.output.slice(-2000)}`);
    say(`reconcile --repair (exit ${repair.code}): ${(repairReports ?? []).map((r) => `${r.entity}→${r.target} ${r.status} ${r.missing}/${r.extra}/${r.changed} repaired ${r.repaired}`).join(', ')}`);
    if (!(await poll(drained, drainTimeout, 250))) problems.push('not drained after the repair');
    let final = await compareAll();
    // The repair's own changes may still be between the queue and the target's commit for a moment.
    if (!allEqual(final)) await poll(async () => allEqual((final = await compareAll())), 30_000, 500);
    const converged = Date.now();
    say(`after repair: ${describeDrift(final)}`);
    const check = await runCli(['reconcile', '--json'], childEnv, log);
    const checkReports = jsonReports(check.output) ?? [];
    const reconcileCheckClean = check.code === 0 && checkReports.length === CHAOS_ENTITY_NAMES.length * CHAOS_TARGETS.length && checkReports.every((r) => r.status === 'clean');
    say(`reconcile check (exit ${check.code}): ${checkReports.map((r) => `${r.entity}→${r.target} ${r.status}`).join(', ')}`);

    const letters = await control.listDeadLetters();
    const deadLetterLines = [
      ...letters.map((l) => `${l.id}: ${l.failure.message}`),
      ...(existsSync(dlqLog) ? readFileSync(dlqLog, 'utf8').split('\n').filter(Boolean) : []),
      ...(existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('dead-lettered')) : []),
    ];
    let failedJobs = 0;
    for (const t of CHAOS_TARGETS) failedJobs += await control.queues.get(t).getFailedCount();

    // BullMQ's event streams since the Redis loss, for the post-mortem of a failed run.
    const events: string[] = [];
    for (const t of CHAOS_TARGETS) {
      const entries = (await control.redis.xrange(`${env.CHAOS_PREFIX}:${t}:events`, '-', '+')) as Array<[string, string[]]>;
      for (const [id, fields] of entries) events.push(`${t} ${id} ${fields.join(' ')}`);
    }
    writeFileSync(`${logFile}.events`, `${events.join('\n')}\n`);

    const sum = (k: 'lost' | 'resurrected' | 'stale') => Object.values(final).reduce((a, d) => a + d[k], 0);
    const faultChanges = faulty.tally().changes;
    const faultFigures: PhaseFigures = {
      changes: faultChanges,
      writeMs: faultWritten - faultStart,
      convergeMs: converged - faultStart,
      writeRate: faultChanges / ((faultWritten - faultStart) / 1000),
      endToEndRate: faultChanges / ((converged - faultStart) / 1000),
    };
    const report: ChaosReport = {
      primary: options.primary,
      seed: options.seed,
      tally: add(clean.tally(), faulty.tally()),
      clean: cleanFigures,
      faulty: faultFigures,
      throughputRatio: faultFigures.endToEndRate / cleanFigures.endToEndRate,
      faults,
      sessionsKilled,
      workerExitsOnTheirOwn: workers.exitsOnTheirOwn,
      driftBeforeRepair,
      unexplainedBeforeRepair: unexplained.slice(0, 50),
      captured,
      reconcileRepair: (repairReports ?? []).map(({ entity, target, status, missing, extra, changed, repaired }) => ({ entity, target, status, missing, extra, changed, repaired })),
      reconcileCheckClean,
      reconcileCheckOutput: check.output.slice(-3000),
      final,
      lost: sum('lost'),
      resurrected: sum('resurrected'),
      stale: sum('stale'),
      deadLetters: deadLetterLines.length,
      deadLetterLines: deadLetterLines.slice(0, 20),
      failedJobs,
      lastFaultToConvergenceMs: converged - lastFaultEnd,
      ok: false,
      problems,
      logFile,
    };
    if (report.lost + report.resurrected + report.stale > 0) problems.push(`targets differ from the primary: ${describeDrift(final)}`);
    if (!reconcileCheckClean) problems.push(`the reconciler's check after the repair is not clean (exit ${check.code})`);
    if (report.deadLetters > 0) problems.push(`${report.deadLetters} dead letters: ${deadLetterLines.slice(0, 3).join(' | ')}`);
    if (failedJobs > 0) problems.push(`${failedJobs} failed jobs`);
    for (const kind of FAULT_KINDS) if (faults[kind] === 0) problems.push(`fault "${kind}" was never injected`);
    report.ok = problems.length === 0;
    return report;
  } finally {
    await writers?.kill().catch(() => undefined);
    await workers?.stop().catch(() => undefined);
    await dw?.close().catch(() => undefined);
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => say(`cleanup: ${(error as Error).message}`));
    await new Promise((r) => log.end(r));
  }
}

/** The reports `dualwrite reconcile --json` prints (pretty-printed, between log lines of one line each). */
function jsonReports(output: string): ReconcileReport[] | undefined {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l === '[' || l === '[]');
  if (start < 0) return undefined;
  const end = lines[start] === '[]' ? start : lines.indexOf(']', start);
  try {
    return JSON.parse(lines.slice(start, end + 1).join('\n')) as ReconcileReport[];
  } catch {
    return undefined;
  }
}

export function describeDrift(drift: Record<string, Drift>): string {
  return Object.entries(drift)
    .map(([t, d]) => `${t}: ${d.rows} rows, lost ${d.lost}, resurrected ${d.resurrected}, stale ${d.stale}${d.samples.length ? ` [${d.samples.slice(0, 3).join('; ')}]` : ''}`)
    .join(' | ');
}

/** The report as the lines `npm run chaos` prints. */
export function formatReport(r: ChaosReport): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const rate = (n: number) => `${Math.round(n)} changes/s`;
  const lines = [
    `== chaos soak: ${r.primary} primary → pg + maria targets (seed ${r.seed}) ==`,
    `changes written:      ${r.tally.changes} committed (${r.clean.changes} clean phase + ${r.faulty.changes} under faults) in ${r.tally.transactions} transactions: ` +
      `${r.tally.inserts} inserts, ${r.tally.updates} updates, ${r.tally.deletes} deletes, ${r.tally.reinserts} delete-then-reinserts, ${r.tally.counterUpdates} hot-row updates; ` +
      `${r.tally.rolledBack} transactions (${r.tally.rolledBackChanges} writes) rolled back on purpose, ${r.tally.failed} failed (deadlock / killed session)`,
    `faults injected:      ${Object.values(r.faults).reduce((a, b) => a + b, 0)} — ${Object.entries(r.faults).map(([k, n]) => `${k}: ${n}`).join(', ')}; ${r.sessionsKilled} sessions killed; ${r.workerExitsOnTheirOwn} worker starts failed (target down) and were retried`,
    `changes captured:     ${r.captured} outbox rows (a delete-then-reinsert in one transaction is captured as one change; + ${COUNTERS} seeded hot rows)`,
    `before repair:        ${describeDrift(r.driftBeforeRepair)}`,
    `  not explained by the Redis loss: ${r.unexplainedBeforeRepair.length}${r.unexplainedBeforeRepair.length ? ` [${r.unexplainedBeforeRepair.slice(0, 3).join('; ')}]` : ''}`,
    `reconcile --repair:   ${r.reconcileRepair.map((x) => `${x.entity}→${x.target} ${x.status} (missing ${x.missing}, extra ${x.extra}, changed ${x.changed}, repaired ${x.repaired})`).join('; ')}`,
    `reconciler check:     ${r.reconcileCheckClean ? 'clean' : 'NOT CLEAN'}`,
    `last fault → converged: ${s(r.lastFaultToConvergenceMs)}`,
    `rows lost:            ${r.lost}`,
    `rows resurrected:     ${r.resurrected}`,
    `rows stale:           ${r.stale}`,
    `dead letters:         ${r.deadLetters}; failed jobs: ${r.failedJobs}`,
    `throughput clean:     ${rate(r.clean.writeRate)} written, ${rate(r.clean.endToEndRate)} end to end (${r.clean.changes} changes, converged in ${s(r.clean.convergeMs)})`,
    `throughput faults:    ${rate(r.faulty.writeRate)} written, ${rate(r.faulty.endToEndRate)} end to end (${r.faulty.changes} changes, converged in ${s(r.faulty.convergeMs)} incl. drain and repair)`,
    `faults/clean:         ${(r.throughputRatio * 100).toFixed(0)}% of the fault-free end-to-end throughput`,
    `result:               ${r.ok ? 'OK' : `FAILED — ${r.problems.join('; ')}`}`,
    `log:                  ${r.logFile}`,
  ];
  return lines.join('\n');
}
