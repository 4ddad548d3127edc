/**
 * Stable machine-readable codes. Tests, the CLI and users' alerting match on
 * these, never on message text.
 */
export type DualWriteErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_LOAD_FAILED'
  | 'PRIMARY_UNREACHABLE'
  | 'PRIMARY_DRIVER_UNSUPPORTED'
  | 'TYPEORM_UNSUPPORTED'
  | 'TARGET_DRIVER_UNSUPPORTED'
  | 'TARGET_UNKNOWN'
  | 'TARGET_UNREACHABLE'
  | 'ENTITY_NOT_FOUND'
  | 'ENTITY_NO_PRIMARY_KEY'
  | 'COLUMN_UNKNOWN'
  | 'COLUMN_TYPE_UNSUPPORTED'
  | 'REDIS_UNREACHABLE'
  | 'OUTBOX_MISSING'
  | 'LEDGER_MISSING'
  | 'UNCAPTURED_WRITE'
  | 'TARGET_TABLE_MISSING'
  | 'TARGET_COLUMN_MISSING'
  | 'PAYLOAD_INVALID'
  | 'KEY_TOO_LONG'
  | 'ROW_TOO_LARGE'
  | 'DEAD_LETTER_BUSY'
  | 'CLI_USAGE';

/** Where a problem sits, so a message and a log line can name it. */
export interface DualWriteErrorContext {
  entity?: string;
  target?: string;
  column?: string;
  option?: string;
}

/**
 * The one base class of every error this library throws on purpose. The
 * message says what is wrong and how to fix it; `code` is stable.
 */
export class DualWriteError extends Error {
  override readonly name = 'DualWriteError';
  readonly entity?: string;
  readonly target?: string;
  readonly column?: string;
  readonly option?: string;

  constructor(
    readonly code: DualWriteErrorCode,
    message: string,
    context: DualWriteErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.entity = context.entity;
    this.target = context.target;
    this.column = context.column;
    this.option = context.option;
  }
}

export function isDualWriteError(error: unknown, code?: DualWriteErrorCode): error is DualWriteError {
  return error instanceof DualWriteError && (code === undefined || error.code === code);
}
