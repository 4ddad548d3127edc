/** Table on the primary that holds captured changes until the relay enqueues them. */
export const OUTBOX_TABLE = 'dualwrite_outbox';
/** Table in each target that records the newest applied version of each row. */
export const LEDGER_TABLE = 'dualwrite_version_ledger';
