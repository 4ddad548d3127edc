import { isDualWriteError } from './dual-write-error';

/** Whether retrying can help. */
export type FailureClass = 'transient' | 'permanent';

export interface Classified {
  class: FailureClass;
  /** A short stable reason, e.g. `deadlock`, `constraint`, `connection`. */
  reason: string;
  /** The driver's own code (SQLSTATE, MySQL errno name or Node error code), when there is one. */
  code?: string;
}

// PostgreSQL SQLSTATEs. Classes 08 (connection), 53 (resources) and 57
// (operator intervention: shutdown, restart, terminated backend) are transient.
const PG_TRANSIENT: Record<string, string> = {
  '40001': 'serialization',
  '40P01': 'deadlock',
  '55P03': 'lock-timeout',
  '57014': 'statement-timeout',
};
const PG_TRANSIENT_CLASSES: Record<string, string> = { '08': 'connection', '53': 'resources', '57': 'server-restarting', '58': 'system' };
const PG_PERMANENT_CLASSES: Record<string, string> = {
  '22': 'data',
  '23': 'constraint',
  '42': 'schema',
  '44': 'constraint',
};

const MYSQL_TRANSIENT: Record<string, string> = {
  ER_LOCK_DEADLOCK: 'deadlock',
  ER_LOCK_WAIT_TIMEOUT: 'lock-timeout',
  ER_CON_COUNT_ERROR: 'too-many-connections',
  ER_TOO_MANY_USER_CONNECTIONS: 'too-many-connections',
  ER_SERVER_SHUTDOWN: 'server-restarting',
  ER_CONNECTION_KILLED: 'connection',
  ER_QUERY_INTERRUPTED: 'connection',
  ER_NORMAL_SHUTDOWN: 'server-restarting',
  ER_SHUTDOWN_COMPLETE: 'server-restarting',
  ER_STATEMENT_TIMEOUT: 'statement-timeout',
  PROTOCOL_CONNECTION_LOST: 'connection',
  PROTOCOL_SEQUENCE_TIMEOUT: 'connection',
  ER_CLIENT_INTERACTION_TIMEOUT: 'connection',
};
const MYSQL_PERMANENT: Record<string, string> = {
  ER_NO_SUCH_TABLE: 'schema',
  ER_BAD_FIELD_ERROR: 'schema',
  ER_BAD_TABLE_ERROR: 'schema',
  ER_DUP_ENTRY: 'constraint',
  ER_BAD_NULL_ERROR: 'constraint',
  ER_NO_REFERENCED_ROW: 'constraint',
  ER_NO_REFERENCED_ROW_2: 'constraint',
  ER_ROW_IS_REFERENCED: 'constraint',
  ER_ROW_IS_REFERENCED_2: 'constraint',
  ER_CHECK_CONSTRAINT_VIOLATED: 'constraint',
  ER_CONSTRAINT_FAILED: 'constraint',
  ER_DATA_TOO_LONG: 'data',
  ER_WARN_DATA_OUT_OF_RANGE: 'data',
  ER_TRUNCATED_WRONG_VALUE: 'data',
  ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: 'data',
  ER_WRONG_VALUE_FOR_TYPE: 'data',
  ER_INVALID_JSON_TEXT: 'data',
  ER_DATA_OUT_OF_RANGE: 'data',
  // One statement larger than the target's max_allowed_packet: splitting the batch helps, retrying it whole does not.
  ER_NET_PACKET_TOO_LARGE: 'too-large',
  ER_PARSE_ERROR: 'schema',
  ER_WRONG_VALUE_COUNT_ON_ROW: 'schema',
  ER_INVALID_DEFAULT: 'schema',
  ER_TABLEACCESS_DENIED_ERROR: 'permission',
  ER_COLUMNACCESS_DENIED_ERROR: 'permission',
};
/** The library's own errors that no retry can fix, with their reason. */
const PERMANENT_CODES: Partial<Record<string, string>> = {
  TARGET_TABLE_MISSING: 'schema',
  TARGET_COLUMN_MISSING: 'schema',
  ENTITY_NOT_FOUND: 'schema',
  PAYLOAD_INVALID: 'payload',
  KEY_TOO_LONG: 'data',
  ROW_TOO_LARGE: 'too-large',
};
const NODE_TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const TRANSIENT_MESSAGES = /Connection terminated|connection is closed|Connection lost|timeout exceeded when trying to connect|Client has encountered a connection error|server closed the connection|Can't add new command when connection is in closed state|the database system is (starting up|shutting down)|is not currently accepting connections|Too many connections|Pool is closed/i;

/**
 * The ONE place that decides whether an apply failure is worth retrying.
 * Everything not known to be permanent is transient: retrying a permanent
 * error costs some attempts, dropping a transient one would cost data.
 */
export function classifyError(error: unknown): Classified {
  if (isDualWriteError(error)) {
    const reason = PERMANENT_CODES[error.code];
    return reason ? { class: 'permanent', reason, code: error.code } : { class: 'transient', reason: 'unknown', code: error.code };
  }
  const e = error as { driverError?: unknown; code?: unknown; errno?: unknown; message?: unknown } | undefined;
  const inner = (e?.driverError ?? e) as { code?: unknown; errno?: unknown; sqlState?: unknown; message?: unknown } | undefined;
  const code = typeof inner?.code === 'string' ? inner.code : undefined;
  if (code) {
    if (/^[0-9A-Z]{5}$/.test(code) && !code.startsWith('ER')) {
      if (PG_TRANSIENT[code]) return { class: 'transient', reason: PG_TRANSIENT[code], code };
      const cls = code.slice(0, 2);
      if (PG_TRANSIENT_CLASSES[cls]) return { class: 'transient', reason: PG_TRANSIENT_CLASSES[cls], code };
      if (PG_PERMANENT_CLASSES[cls]) return { class: 'permanent', reason: PG_PERMANENT_CLASSES[cls], code };
    }
    if (MYSQL_TRANSIENT[code]) return { class: 'transient', reason: MYSQL_TRANSIENT[code], code };
    if (MYSQL_PERMANENT[code]) return { class: 'permanent', reason: MYSQL_PERMANENT[code], code };
    if (NODE_TRANSIENT.has(code)) return { class: 'transient', reason: 'connection', code };
  }
  // mysql2 names errnos after MySQL's table, so MariaDB-only ones arrive misnamed (a failed CHECK, 4025,
  // as ER_INNODB_AUTOEXTEND_SIZE_OUT_OF_RANGE) or unnamed; their SQLSTATE class is still right.
  const sqlState = typeof inner?.sqlState === 'string' ? inner.sqlState : '';
  if (sqlState.startsWith('23')) return { class: 'permanent', reason: 'constraint', code };
  if (sqlState.startsWith('22')) return { class: 'permanent', reason: 'data', code };
  const message = String(inner?.message ?? e?.message ?? '');
  if (TRANSIENT_MESSAGES.test(message)) return { class: 'transient', reason: 'connection', code };
  return { class: 'transient', reason: 'unknown', code };
}
