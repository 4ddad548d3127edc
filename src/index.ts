export { Replicate, replicate, NotReplicated } from '../decorators';
export type { ReplicateOptions } from '../decorators';
export { defineDualWrite } from './config/dual-write-config';
export type { DualWriteConfig, RetryOptions, RelayOptions, WorkerOptions } from './config/dual-write-config';
export { DualWrite } from './dual-write';
export { DualWriteError, isDualWriteError } from './errors/dual-write-error';
export type { DualWriteErrorCode } from './errors/dual-write-error';
export type { Change, ChangeOperation, RowImage, WireValue } from './outbox/change';
export type { ReplicatedEntity, ReplicatedColumn, TargetMapping } from './metadata/replicated-entity';
export type { ApplyJobData } from './queue/apply-job';
export { captureSubscriberCount } from './capture/register-capture';
export {
  CreateDualWriteOutbox1764400000000,
  CreateDualWriteLedger1764400000001,
  CreateDualWriteOutboxCommit1764400000002,
  OUTBOX_TABLE,
  LEDGER_TABLE,
  runMigrations,
} from '../migrations';
export type { MigrationReport } from '../migrations';
export { loadConfig } from './config/load-config';
export type { DeadLetter, DeadLetterContext, DeadLetterFailure, DeadLetterHandler } from './dead-letter/dead-letter';
export type { ReplayResult } from './dead-letter/replay';
export type { DeadLetterOptions } from './config/dual-write-config';
export type { ReconcileOptions } from './config/dual-write-config';
export { reconcile } from './reconcile/reconciler';
export type { ReconcileRunOptions } from './reconcile/reconciler';
export type { ReconcileContext } from './reconcile/reconcile-context';
export { readReconcileReports, readReconcileHistory } from './reconcile/reconcile-report';
export type { ReconcileReport } from './reconcile/reconcile-report';
export type { AppliedEvent, RelayedEvent, DualWriteEvents } from './observability/dual-write-events';
export { backfill } from './reconcile/backfill';
export type { BackfillOptions, BackfillProgress, BackfillResult } from './reconcile/backfill';
export { startReconcileScheduler, RECONCILE_QUEUE } from './reconcile/reconcile-scheduler';
export type { ReconcileSchedulerOptions } from './reconcile/reconcile-scheduler';
export { redactSecrets } from './observability/redact-secrets';
export type { LoggerOptions } from './observability/logger';
