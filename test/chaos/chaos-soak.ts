import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
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
import { runCli } from './chaos-process';
import { describeDrift, FAULT_KINDS, type ChaosReport, type FaultKind, type PhaseFigures } from './chaos-report';
import { WorkerPool } from './worker-pool';
import { add, WriterGroup } from './writer-group';
import { killConnections, type ConnectionScope } from './faults';
import { privateMariaDb, privatePostgres, privateRedis, type PrivateServer } from './private-servers';
import { auditedChanges, auditOutbox, ledgerMismatches } from '../integration/faults/convergence';
import { compareWithPrimary, lastCapturedChanges, ledgerOf, noDrift, unexplainedDrift, type Drift } from './verify';

/** The audit copy of the outbox that `auditOutbox` keeps (a trigger on the outbox INSERT). */
const AUDIT_TABLE = 'fault_outbox_audit';
import { seededRandom } from '../support/seeded-random';

export { FAULT_KINDS, formatReport, type ChaosReport, type FaultKind } from './chaos-report';

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
    const capturedSoFar = async (what: 'MAX(seq)') => {
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
      say(`Redis killed (no persistence: every queued job is gone); changes up to outbox row ${redisWatermark} may have been in it`);
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
      // Redis dies 10 s into the MariaDB target's outage: the jobs piled up for it are really lost, and the writers are still writing.
      await untilProgress(0.1);
      await outage('maria', mariaServer, loseRedis);
      await untilProgress(0.6);
      await outage('pg', pgServer);
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
    const captured = (await auditedChanges(primary)).length;
    const ledgers = Object.fromEntries(await Promise.all(CHAOS_TARGETS.map(async (t) => [t, await ledgerOf(tOptions[t], t)] as const)));
    const unexplained = unexplainedDrift(driftBeforeRepair, await lastCapturedChanges(primary, CHAOS_TARGETS), redisWatermark, ledgers);
    if (unexplained.length > 0) {
      problems.push(`${unexplained.length} differences before the repair that the Redis loss cannot explain: ${unexplained.slice(0, 5).join('; ')}`);
    }
    // The workers repair what the Redis loss dropped on their own (epoch key gone → one recovery reconcile):
    // had the targets converged before the manual repair below? (Up to 60 s more for a recovery run still going.)
    const selfHealStart = Date.now();
    const convergedBeforeManualRepair = allEqual(driftBeforeRepair) || (await poll(async () => allEqual(await compareAll()), 60_000, 1000));
    say(`before the manual reconcile --repair: ${convergedBeforeManualRepair ? `already converged (the workers' own recovery; waited ${((Date.now() - selfHealStart) / 1000).toFixed(1)} s after the drain)` : 'NOT converged 60 s after the drain'}`);
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

    // The version ledger agrees with each target's rows: a live entry per row, no row under a tombstone.
    const ledgerProblems: string[] = [];
    for (const t of CHAOS_TARGETS) {
      const target = new DataSource(tOptions[t]);
      await target.initialize();
      try {
        ledgerProblems.push(...(await ledgerMismatches(control, target, t, CHAOS_ENTITY_NAMES)).map((p) => `${t} ${p}`));
      } finally {
        await target.destroy();
      }
    }
    if (ledgerProblems.length) problems.push(`${ledgerProblems.length} ledger entries disagree with the target rows: ${ledgerProblems.slice(0, 5).join('; ')}`);
    say(`ledger check: ${ledgerProblems.length} problems`);

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
      convergedBeforeManualRepair,
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
