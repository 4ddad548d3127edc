import { loadConfig, runMigrations } from '../index';

export async function migrateCommand(options: { config?: string }): Promise<number> {
  const config = loadConfig(options.config);
  const report = await runMigrations(config);
  for (const line of report) process.stdout.write(`migrated ${line.database}: ${line.migration}\n`);
  return 0;
}
