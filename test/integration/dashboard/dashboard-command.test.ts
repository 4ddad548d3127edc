/**
 * `dualwrite dashboard` and its access rules without a browser: credentials
 * from the environment, the refusal to serve a non-loopback host without
 * them, the read-only default on loopback, and HTTP Basic identification.
 * Real PostgreSQL and Redis for the served part.
 */
import type { DataSource } from 'typeorm';
import { main } from '../../../src/cli/main';
import { dashboardCommand } from '../../../src/cli/dashboard-command';
import { credentialsFromEnv, identify, isLoopback } from '../../../src/dashboard/dashboard-access';
import { redactDeep } from '../../../src/dashboard/redact';
import { runMigrations } from '../../../src';
import { obsEntities } from '../observability/obs-entities';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';

jest.setTimeout(60_000);

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('dashboard access rules', () => {
  it('reads user:password per role from the environment and rejects malformed values', () => {
    expect(credentialsFromEnv({})).toEqual({});
    expect(credentialsFromEnv({ DUALWRITE_DASHBOARD_VIEWER: 'vera:pa:ss', DUALWRITE_DASHBOARD_OPERATOR: 'otto:x' })).toEqual({
      viewer: { user: 'vera', password: 'pa:ss' },
      operator: { user: 'otto', password: 'x' },
    });
    expect(() => credentialsFromEnv({ DUALWRITE_DASHBOARD_OPERATOR: 'otto' })).toThrow(/DUALWRITE_DASHBOARD_OPERATOR must be "user:password".*it has no colon/);
    expect(() => credentialsFromEnv({ DUALWRITE_DASHBOARD_VIEWER: 'vera:' })).toThrow(/DUALWRITE_DASHBOARD_VIEWER must be "user:password".*an empty user or password/);
    expect(() => credentialsFromEnv({ DUALWRITE_DASHBOARD_VIEWER: 'sam:a', DUALWRITE_DASHBOARD_OPERATOR: 'sam:b' })).toThrow(/name the same user "sam"/);
  });

  it('identifies callers by HTTP Basic credentials', () => {
    const credentials = { viewer: { user: 'vera', password: 'v' }, operator: { user: 'otto', password: 'o' } };
    expect(identify(undefined, credentials)).toEqual({ role: 'anonymous' });
    expect(identify(basic('otto', 'o'), credentials)).toEqual({ role: 'operator', user: 'otto' });
    expect(identify(basic('vera', 'v'), credentials)).toEqual({ role: 'viewer', user: 'vera' });
    expect(identify(basic('vera', 'o'), credentials)).toEqual({ role: 'invalid' });
    expect(identify(basic('otto', 'o '), credentials)).toEqual({ role: 'invalid' });
    expect(identify('Bearer abc', credentials)).toEqual({ role: 'invalid' });
    expect(identify(basic('', ''), { viewer: { user: 'vera', password: 'v' } })).toEqual({ role: 'invalid' });
  });

  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect([host, isLoopback(host)]).toEqual([host, true]);
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'dashboard.example.com']) expect([host, isLoopback(host)]).toEqual([host, false]);
  });

  it('redacts connection strings and passwords in bull-board responses', () => {
    expect(
      redactDeep({ jobs: [{ failedReason: 'connect mysql://root:toor@db/x failed', stacktrace: ['at x (password=toor)'], data: { password: 'toor', n: 1 } }] }),
    ).toEqual({ jobs: [{ failedReason: 'connect mysql://[redacted]@db/x failed', stacktrace: ['at x (password=[redacted])'], data: { password: '[redacted]', n: 1 } }] });
  });

  it('refuses a non-loopback host without credentials before connecting anywhere, and bad ports', async () => {
    const saved = { viewer: process.env.DUALWRITE_DASHBOARD_VIEWER, operator: process.env.DUALWRITE_DASHBOARD_OPERATOR };
    delete process.env.DUALWRITE_DASHBOARD_VIEWER;
    delete process.env.DUALWRITE_DASHBOARD_OPERATOR;
    try {
      await expect(main(['dashboard', '--host', '0.0.0.0', '--config', '/nonexistent/ormconfig.ts'])).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('Refusing to serve the dashboard on "0.0.0.0" without credentials'),
      });
      await expect(main(['dashboard', '--port', 'http'])).rejects.toMatchObject({
        code: 'CLI_USAGE',
        message: expect.stringContaining('--port takes a port number from 0 to 65535, got "http"'),
      });
      await expect(main(['dashboard', '--port', '70000'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
    } finally {
      if (saved.viewer !== undefined) process.env.DUALWRITE_DASHBOARD_VIEWER = saved.viewer;
      if (saved.operator !== undefined) process.env.DUALWRITE_DASHBOARD_OPERATOR = saved.operator;
    }
  });
});

describe('dualwrite dashboard (served, postgres)', () => {
  const source = obsEntities(true);
  const replica = obsEntities(false);
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase('postgres', 'dwdcp'), createDatabase('postgres', 'dwdct')]);
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all);
    await Promise.all([primary.initialize(), target.initialize()]);
    await runMigrations({ primary, targets: { t: target } });
  });

  afterAll(async () => {
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  const config = () => ({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' as const } });

  it('without credentials on loopback: everyone may look, nobody may change anything (403 naming the variable)', async () => {
    const printed: string[] = [];
    const code = await dashboardCommand(
      { port: '0' },
      {
        config: config(),
        env: {},
        write: (text) => printed.push(text),
        until: async ({ url }) => {
          const overview = await fetch(url);
          expect(overview.status).toBe(200);
          const html = await overview.text();
          expect(html).toContain('read-only viewer (no credentials configured)');
          expect(html).toMatch(/<tr data-target="t">/);
          const api = (await (await fetch(new URL('api/overview', url))).json()) as { overview: { targets: Array<{ target: string }> } };
          expect(api.overview.targets.map((t) => t.target)).toEqual(['t']);
          const queues = await fetch(new URL('queues/api/queues', url));
          expect(queues.status).toBe(200);
          const replay = await fetch(new URL('api/dead-letters/replay', url), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ids: ['t/1'] }),
          });
          expect(replay.status).toBe(403);
          expect(await replay.text()).toContain('set DUALWRITE_DASHBOARD_OPERATOR=user:password');
          const pause = await fetch(new URL('queues/api/queues/t/pause', url), { method: 'PUT' });
          expect(pause.status).toBe(403);
        },
      },
    );
    expect(code).toBe(0);
    expect(printed.join('')).toMatch(/^dualwrite dashboard on http:\/\/127\.0\.0\.1:\d+\/ \(read-only: no credentials set; set DUALWRITE_DASHBOARD_OPERATOR=user:password to replay and retry\)\n$/);
  });

  it('with credentials: prints the users (never the passwords) and serves 401 to strangers', async () => {
    const printed: string[] = [];
    await dashboardCommand(
      { port: '0', host: 'localhost' },
      {
        config: config(),
        env: { DUALWRITE_DASHBOARD_OPERATOR: 'otto:s3cret-op', DUALWRITE_DASHBOARD_VIEWER: 'vera:s3cret-view' },
        write: (text) => printed.push(text),
        until: async ({ port }) => {
          expect((await fetch(`http://localhost:${port}/`)).status).toBe(401);
          const ok = await fetch(`http://localhost:${port}/`, { headers: { authorization: basic('vera', 's3cret-view') } });
          expect(ok.status).toBe(200);
          expect(await ok.text()).toContain('vera (viewer)');
        },
      },
    );
    expect(printed.join('')).toContain('users: operator "otto", viewer "vera"');
    expect(printed.join('')).not.toContain('s3cret');
  });
});
