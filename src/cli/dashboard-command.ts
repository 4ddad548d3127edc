import { DualWrite, loadConfig, type DualWriteConfig } from '../index';
import { assertSafeBinding, credentialsFromEnv, OPERATOR_ENV, VIEWER_ENV } from '../dashboard/dashboard-access';
import { startDashboard, type RunningDashboard } from '../dashboard/dashboard-server';
import { usageError } from './cli-error';

/** Options of `dualwrite dashboard` (besides `--config`), for `parseArgs`. */
export const DASHBOARD_OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
} as const satisfies Record<string, { type: 'string' | 'boolean' }>;

export const DASHBOARD_HELP = `  dashboard [--host 127.0.0.1] [--port 3000]
                          web dashboard: overview, dead letters (replay/discard), bull-board queues;
                          users from ${VIEWER_ENV} / ${OPERATOR_ENV} (user:password);
                          without them: read-only, and only on a loopback host
`;

export interface DashboardDeps {
  config?: DualWriteConfig;
  env?: NodeJS.ProcessEnv;
  /** Resolves when the dashboard should stop. @defaultValue SIGINT or SIGTERM */
  until?: (dashboard: RunningDashboard) => Promise<void>;
  write?: (text: string) => void;
}

/** `dualwrite dashboard [--config path] [--host h] [--port n]`: serves until SIGINT/SIGTERM. */
export async function dashboardCommand(values: Record<string, string | boolean | undefined>, deps: DashboardDeps = {}): Promise<number> {
  const host = typeof values.host === 'string' ? values.host.trim() : '127.0.0.1';
  if (!host) throw usageError('dualwrite dashboard: --host needs a host name or address, e.g. 127.0.0.1 or 0.0.0.0.');
  const rawPort = typeof values.port === 'string' ? values.port.trim() : '3000';
  const port = /^\d+$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!Number.isInteger(port) || port > 65535) {
    throw usageError(`dualwrite dashboard: --port takes a port number from 0 to 65535, got ${JSON.stringify(values.port)}.`);
  }
  // Before connecting anywhere: bad credentials or an unsafe binding fail fast.
  const credentials = credentialsFromEnv(deps.env ?? process.env);
  assertSafeBinding(host, credentials);

  const dw = await DualWrite.start(deps.config ?? loadConfig(typeof values.config === 'string' ? values.config : undefined));
  let dashboard: RunningDashboard;
  try {
    dashboard = await startDashboard(dw, { host, port, credentials });
  } catch (error) {
    await dw.close();
    throw usageError(`dualwrite dashboard: cannot listen on ${host}:${port} (${(error as Error).message}); choose another --port or --host.`);
  }
  const roles = [
    credentials.operator ? `operator "${credentials.operator.user}"` : undefined,
    credentials.viewer ? `viewer "${credentials.viewer.user}"` : undefined,
  ].filter(Boolean);
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  write(
    `dualwrite dashboard on ${dashboard.url} (${roles.length ? `users: ${roles.join(', ')}` : `read-only: no credentials set; set ${OPERATOR_ENV}=user:password to replay and retry`})\n`,
  );
  dw.logger.info({ url: dashboard.url, roles: roles.length }, 'dualwrite dashboard started');
  const until =
    deps.until ??
    (() =>
      new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      }));
  try {
    await until(dashboard);
  } finally {
    await dashboard.close();
    await dw.close();
  }
  return 0;
}
