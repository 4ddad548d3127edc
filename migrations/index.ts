export { CreateDualWriteOutbox1764400000000 } from './1764400000000-CreateDualWriteOutbox';
export { CreateDualWriteLedger1764400000001 } from './1764400000001-CreateDualWriteLedger';
export { CreateDualWriteOutboxCommit1764400000002 } from './1764400000002-CreateDualWriteOutboxCommit';
export { OUTBOX_TABLE, LEDGER_TABLE } from './table-names';
export { runMigrations } from './run-migrations';
export type { MigrationReport } from './run-migrations';
