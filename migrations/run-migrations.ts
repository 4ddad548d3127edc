import type { DataSource, MigrationInterface } from 'typeorm';
import { DualWriteError } from '../src/errors/dual-write-error';
import { CreateDualWriteOutbox1764400000000 } from './1764400000000-CreateDualWriteOutbox';
import { CreateDualWriteLedger1764400000001 } from './1764400000001-CreateDualWriteLedger';
import { CreateDualWriteOutboxCommit1764400000002 } from './1764400000002-CreateDualWriteOutboxCommit';

/** What `runMigrations` did, per database. */
export interface MigrationReport {
  database: string;
  migration: string;
}

async function run(dataSource: DataSource, migration: MigrationInterface, target?: string): Promise<void> {
  const initialized = dataSource.isInitialized;
  if (!initialized) {
    try {
      await dataSource.initialize();
    } catch (error) {
      const where = target === undefined ? 'the primary DataSource' : `target "${target}"`;
      const option = target === undefined ? 'primary' : `targets.${target}`;
      throw new DualWriteError(
        target === undefined ? 'PRIMARY_UNREACHABLE' : 'TARGET_UNREACHABLE',
        `Cannot migrate ${where}: it failed to connect (${(error as Error).message}). Check its options in "${option}"; nothing was migrated there.`,
        { option, ...(target === undefined ? {} : { target }) },
        { cause: error },
      );
    }
  }
  const queryRunner = dataSource.createQueryRunner();
  try {
    await migration.up(queryRunner);
  } finally {
    await queryRunner.release();
    if (!initialized) await dataSource.destroy();
  }
}

/**
 * Creates the outbox (and, on MariaDB, its commit procedure) on the primary
 * and the version ledger in every target. Idempotent (`CREATE TABLE IF NOT
 * EXISTS`, `CREATE OR REPLACE PROCEDURE`), so it is safe to run on every
 * deploy; this is what `dualwrite migrate` runs.
 */
export async function runMigrations(config: { primary: DataSource; targets: Record<string, DataSource> }): Promise<MigrationReport[]> {
  const report: MigrationReport[] = [];
  for (const migration of [new CreateDualWriteOutbox1764400000000(), new CreateDualWriteOutboxCommit1764400000002()]) {
    await run(config.primary, migration);
    report.push({ database: 'primary', migration: migration.name });
  }
  for (const [name, target] of Object.entries(config.targets)) {
    const ledger = new CreateDualWriteLedger1764400000001();
    await run(target, ledger, name);
    report.push({ database: `target ${name}`, migration: ledger.name });
  }
  return report;
}
