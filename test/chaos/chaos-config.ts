import { appendFileSync } from 'node:fs';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { DualWriteConfig } from '../../src';
import { MARIADB, PG, type Engine } from '../support/databases';
import { chaosEntities, type ChaosEntities } from './chaos-entities';

/**
 * Everything a chaos child process (worker, writer, the reconcile CLI) needs
 * to find the run's databases and Redis, passed through the environment.
 */
export interface ChaosEnv {
  CHAOS_PRIMARY_ENGINE: Engine;
  CHAOS_PRIMARY_PORT: string;
  CHAOS_PRIMARY_DB: string;
  /** Account the WORKERS use on a MariaDB primary (so the soak can kill exactly their connections); default root. */
  CHAOS_WORKER_USER?: string;
  CHAOS_WORKER_PASSWORD?: string;
  CHAOS_PG_PORT: string;
  CHAOS_PG_DB: string;
  CHAOS_MARIA_PORT: string;
  CHAOS_MARIA_DB: string;
  CHAOS_REDIS_PORT: string;
  CHAOS_PREFIX: string;
  /** File the onDeadLetter handler appends each letter to (a Redis loss would erase the dead-letter queue itself). */
  CHAOS_DLQ_LOG: string;
}

export type ChaosRole = 'worker' | 'writer' | 'control';

export const APPLICATION_NAME = (role: ChaosRole) => `dw-chaos-${role}`;

export function readChaosEnv(env: NodeJS.ProcessEnv = process.env): ChaosEnv {
  const need = (name: keyof ChaosEnv) => {
    const value = env[name];
    if (!value) throw new Error(`chaos: environment variable ${name} is not set (the soak sets it for its child processes)`);
    return value;
  };
  const engine = need('CHAOS_PRIMARY_ENGINE');
  if (engine !== 'postgres' && engine !== 'mariadb') throw new Error(`chaos: CHAOS_PRIMARY_ENGINE must be postgres or mariadb, got "${engine}"`);
  return {
    CHAOS_PRIMARY_ENGINE: engine,
    CHAOS_PRIMARY_PORT: need('CHAOS_PRIMARY_PORT'),
    CHAOS_PRIMARY_DB: need('CHAOS_PRIMARY_DB'),
    CHAOS_WORKER_USER: env.CHAOS_WORKER_USER,
    CHAOS_WORKER_PASSWORD: env.CHAOS_WORKER_PASSWORD,
    CHAOS_PG_PORT: need('CHAOS_PG_PORT'),
    CHAOS_PG_DB: need('CHAOS_PG_DB'),
    CHAOS_MARIA_PORT: need('CHAOS_MARIA_PORT'),
    CHAOS_MARIA_DB: need('CHAOS_MARIA_DB'),
    CHAOS_REDIS_PORT: need('CHAOS_REDIS_PORT'),
    CHAOS_PREFIX: need('CHAOS_PREFIX'),
    CHAOS_DLQ_LOG: need('CHAOS_DLQ_LOG'),
  };
}

function options(engine: Engine, port: string, database: string, role: ChaosRole, account?: { user?: string; password?: string }): DataSourceOptions {
  return engine === 'postgres'
    ? { type: 'postgres', ...PG, port: Number(port), database, applicationName: APPLICATION_NAME(role), logging: false }
    : {
        type: 'mariadb',
        ...MARIADB,
        ...(account?.user ? { username: account.user, password: account.password ?? '' } : {}),
        port: Number(port),
        database,
        logging: false,
      };
}

export function primaryOptions(env: ChaosEnv, role: ChaosRole): DataSourceOptions {
  const account = role === 'worker' ? { user: env.CHAOS_WORKER_USER, password: env.CHAOS_WORKER_PASSWORD } : undefined;
  return options(env.CHAOS_PRIMARY_ENGINE, env.CHAOS_PRIMARY_PORT, env.CHAOS_PRIMARY_DB, role, account);
}

export function targetOptions(env: ChaosEnv, role: ChaosRole): Record<'pg' | 'maria', DataSourceOptions> {
  return {
    pg: options('postgres', env.CHAOS_PG_PORT, env.CHAOS_PG_DB, role),
    maria: options('mariadb', env.CHAOS_MARIA_PORT, env.CHAOS_MARIA_DB, role),
  };
}

/** The soak's DualWrite config for one process role; targets are read from their databases (the soak created the tables). */
export function chaosConfig(env: ChaosEnv, role: ChaosRole, extra: Partial<DualWriteConfig> = {}, entities: ChaosEntities = chaosEntities(true)): DualWriteConfig {
  const targets = targetOptions(env, role);
  return {
    primary: new DataSource({ ...primaryOptions(env, role), entities: entities.all }),
    targets: { pg: new DataSource(targets.pg), maria: new DataSource(targets.maria) },
    redis: { host: '127.0.0.1', port: Number(env.CHAOS_REDIS_PORT) },
    queuePrefix: env.CHAOS_PREFIX,
    relay: { pollInterval: 500 },
    // Enough attempts to ride out a ~20 s target outage many times over: a dead letter here is a finding.
    retry: { attempts: 60, delay: 100, maxDelay: 2000, jitter: 0.2 },
    // Short locks: a SIGKILLed worker's jobs come back within seconds.
    worker: { concurrency: 2, lockDuration: 3000 },
    // Only the soak's own `reconcile --repair` repairs (the issue asks for exactly one).
    reconcile: { every: 0 },
    onDeadLetter: (letter) => {
      appendFileSync(env.CHAOS_DLQ_LOG, `${JSON.stringify({ at: new Date().toISOString(), id: letter.id, failure: letter.failure })}\n`);
    },
    logger: { level: process.env.CHAOS_LOG_LEVEL ?? 'warn' },
    ...extra,
  };
}
