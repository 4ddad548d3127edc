import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { DualWriteError } from '../index';

/** What a dashboard user may do: a viewer looks, an operator also retries, replays and discards. */
export type DashboardRole = 'viewer' | 'operator';

/** One user name and password per role, from the environment. */
export interface DashboardCredentials {
  viewer?: { user: string; password: string };
  operator?: { user: string; password: string };
}

/** Environment variables holding `user:password` per role. */
export const VIEWER_ENV = 'DUALWRITE_DASHBOARD_VIEWER';
export const OPERATOR_ENV = 'DUALWRITE_DASHBOARD_OPERATOR';

function parsePair(env: NodeJS.ProcessEnv, name: string): { user: string; password: string } | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const colon = raw.indexOf(':');
  if (colon <= 0 || colon === raw.length - 1) {
    throw new DualWriteError(
      'CONFIG_INVALID',
      `${name} must be "user:password" (a non-empty user, a colon, a non-empty password); it has ${colon < 0 ? 'no colon' : 'an empty user or password'}.`,
      { option: name },
    );
  }
  return { user: raw.slice(0, colon), password: raw.slice(colon + 1) };
}

/** Reads DUALWRITE_DASHBOARD_VIEWER and DUALWRITE_DASHBOARD_OPERATOR (`user:password` each). */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): DashboardCredentials {
  const viewer = parsePair(env, VIEWER_ENV);
  const operator = parsePair(env, OPERATOR_ENV);
  if (viewer && operator && viewer.user === operator.user) {
    throw new DualWriteError(
      'CONFIG_INVALID',
      `${VIEWER_ENV} and ${OPERATOR_ENV} name the same user "${viewer.user}"; give each role its own user name.`,
      { option: OPERATOR_ENV },
    );
  }
  return { ...(viewer ? { viewer } : {}), ...(operator ? { operator } : {}) };
}

export function hasCredentials(credentials: DashboardCredentials): boolean {
  return credentials.viewer !== undefined || credentials.operator !== undefined;
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}

/**
 * Refuses to serve a host other machines can reach without any credentials:
 * everyone on the network could then read the queues.
 */
export function assertSafeBinding(host: string, credentials: DashboardCredentials): void {
  if (isLoopback(host) || hasCredentials(credentials)) return;
  throw new DualWriteError(
    'CONFIG_INVALID',
    `Refusing to serve the dashboard on "${host}" without credentials: anyone who can reach it could read the queues. ` +
      `Set ${VIEWER_ENV}=user:password and/or ${OPERATOR_ENV}=user:password, or listen on 127.0.0.1 (--host).`,
    { option: '--host' },
  );
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Constant-time equality of two strings (hashed first, so their lengths leak nothing either). */
function same(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Who a request is. */
export type Caller = { role: DashboardRole; user: string } | { role: 'anonymous' } | { role: 'invalid' };

/**
 * The caller of an HTTP Basic `Authorization` header. Both roles are always
 * compared, so the time taken does not say which user name exists.
 */
export function identify(header: string | undefined, credentials: DashboardCredentials): Caller {
  if (!header) return { role: 'anonymous' };
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return { role: 'invalid' };
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { role: 'invalid' };
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  let found: DashboardRole | undefined;
  for (const role of ['operator', 'viewer'] as const) {
    const expected = credentials[role];
    // Compare against a dummy when the role is unset, to keep the timing uniform.
    const userOk = same(user, expected?.user ?? '\u0000');
    const passwordOk = same(password, expected?.password ?? '\u0000');
    if (expected && userOk && passwordOk && !found) found = role;
  }
  return found ? { role: found, user } : { role: 'invalid' };
}
