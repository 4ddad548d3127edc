/** Table on the primary that holds captured changes until the relay enqueues them. */
export const OUTBOX_TABLE = 'dualwrite_outbox';
/** Procedure on a MariaDB primary that writes one outbox row and COMMITs, in one round trip. */
export const OUTBOX_COMMIT_PROCEDURE = 'dualwrite_outbox_commit';
/** Table in each target that records the newest applied version of each row. */
export const LEDGER_TABLE = 'dualwrite_version_ledger';

/** Columns the library reads and writes in the outbox; a table without them was made by another version. */
export const OUTBOX_COLUMNS = ['seq', 'entity', 'op', 'pk', 'row_image', 'targets', 'captured_at', 'trace'] as const;
/** Columns of the version ledger the apply needs (MySQL/MariaDB also `prior_version`). */
export const LEDGER_COLUMNS = ['entity', 'row_key', 'version', 'deleted', 'updated_at'] as const;
