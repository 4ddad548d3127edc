/**
 * Config of the `dualwrite worker` child process of the reconcile bench:
 *   node dist/src/cli/main.js worker --config dist/test/bench/reconcile-bench-config.js
 * DW_BENCH_PRIMARY_DB, DW_BENCH_TARGET_DB (PostgreSQL primary, MariaDB target), DW_BENCH_PREFIX.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { defineDualWrite } from '../../src';
import { MARIADB, PG } from '../support/databases';
import { REDIS } from '../support/redis';
import { benchEntities } from './bench-entities';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`reconcile-bench-config: ${name} is not set`);
  return value;
};

export default defineDualWrite({
  primary: new DataSource({ type: 'postgres', ...PG, database: env('DW_BENCH_PRIMARY_DB'), entities: [benchEntities('postgres').BenchItem] }),
  targets: { t: new DataSource({ type: 'mariadb', ...MARIADB, database: env('DW_BENCH_TARGET_DB') }) },
  redis: REDIS,
  queuePrefix: env('DW_BENCH_PREFIX'),
  relay: { jobSize: 1000 },
  reconcile: { every: 0 },
  logger: { level: 'warn' },
});
