/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven
 * by playwright-core), against real PostgreSQL, Redis and BullMQ.
 *
 * Two dead letters are made by a worker whose target columns are too narrow:
 * DlqItem 3 (no handler: the letter waits) and DlqNote 1 (its handler throws,
 * so the letter's job FAILS: the failed job bull-board shows). Then:
 * - an operator signs in, sees both on the overview, finds the failed job in
 *   bull-board and the letters on the dead-letters page, fixes nothing but the
 *   target, replays DlqItem 3 from the page and sees it applied in the target;
 *   bull-board's "retry" of the failed dead-letter job is a replay too;
 * - a viewer sees the same pages without replay buttons, and a direct
 *   replay/retry request gets 403;
 * - no or wrong credentials get 401; no page or API response holds the
 *   @NotReplicated value.
 * Screenshots go to a temporary folder; with DW_SCREENSHOTS=1 they replace the
 * ones in docs/ that the README embeds (so a test run leaves the tree clean).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { DataSource } from 'typeorm';
import { DualWrite, reconcile, runMigrations } from '../../../src';
import { startDashboard, type RunningDashboard } from '../../../src/dashboard/dashboard-server';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { createTargetTables, targetItems, widenTargetColumns } from '../dead-letter/dlq-tables';

jest.setTimeout(60_000);

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DOCS = process.env.DW_SCREENSHOTS === '1' ? path.resolve(__dirname, '../../../docs') : mkdtempSync(path.join(tmpdir(), 'dw-shots-'));
const SECRET = 'hunter2-not-replicated';
const LONG = 'too-long-for-the-target';
const OPERATOR = { user: 'otto', password: 'operator-pass' };
const VIEWER = { user: 'vera', password: 'viewer-pass' };

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('dashboard in Chromium (postgres → postgres)', () => {
  const source = dlqEntities({
    note: () => {
      throw new Error('paging the on-call failed: postgres://pager:s3cr3t@pager.internal/alerts');
    },
  });
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> };
  let dashboard: RunningDashboard;
  let browser: Browser;
  let operator: BrowserContext;
  let viewer: BrowserContext;
  let itemLetter: string;
  let itemLetter5: string;
  let noteLetter: string;

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase('postgres', 'dwbp'), createDatabase('postgres', 'dwbt')]);
    primary = dataSource(primaryDb, source.all);
    target = new DataSource({ ...targetDb.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, 'postgres');
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({
      primary,
      targets: { t: target },
      redis: REDIS,
      queuePrefix: prefix,
      logger: { level: 'silent' },
      retry: { attempts: 1 },
      reconcile: { every: 0 },
      deadLetter: { handlerAttempts: 1 },
    });
    worker = await dw.startWorker();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });

    await primary.getRepository(source.DlqItem).save(
      [1, 2, 3, 4, 5].map((id) => ({ id, label: id === 3 || id === 5 ? `${LONG}-${id}` : `i${id}`, qty: id, secret: SECRET })),
    );
    await primary.getRepository(source.DlqNote).save([{ id: 1, body: `${LONG}-note` }]);
    const made = await eventually(async () => {
      const letters = await dw.listDeadLetters();
      const failed = await dw.deadLetters.queue('t').getJobCountByTypes('failed');
      return letters.length === 3 && failed === 1;
    }, 30_000, 50);
    if (!made) throw new Error(`expected 3 dead letters, one with a failed handler: ${JSON.stringify(await dw.listDeadLetters())}`);
    const letters = await dw.listDeadLetters();
    itemLetter = letters.find((l) => l.change.entity === 'DlqItem' && l.change.key[0] === '3')!.id;
    itemLetter5 = letters.find((l) => l.change.entity === 'DlqItem' && l.change.key[0] === '5')!.id;
    // A reconcile report for the overview: the target lacks the dead-lettered rows (drift, not repaired).
    await reconcile(dw, { entity: 'DlqItem', lagWindow: 20 });
    noteLetter = letters.find((l) => l.change.entity === 'DlqNote')!.id;

    dashboard = await startDashboard(dw, { port: 0, credentials: { operator: OPERATOR, viewer: VIEWER } });
    operator = await browser.newContext({ httpCredentials: { username: OPERATOR.user, password: OPERATOR.password }, viewport: { width: 1280, height: 800 } });
    viewer = await browser.newContext({ httpCredentials: { username: VIEWER.user, password: VIEWER.password }, viewport: { width: 1280, height: 800 } });
    for (const context of [operator, viewer]) context.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await worker?.close();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  it('answers 401 without credentials or with wrong ones, in the browser and to direct requests', async () => {
    // (Chromium itself turns a 401 page into net::ERR_INVALID_AUTH_CREDENTIALS: ask through the context's request API.)
    const anonymous = await browser.newContext();
    try {
      const response = await anonymous.request.get(dashboard.url);
      expect(response.status()).toBe(401);
      expect(response.headers()['www-authenticate']).toMatch(/^Basic realm="dualwrite dashboard"/);
      expect(await response.text()).not.toContain('Dead letters');
    } finally {
      await anonymous.close();
    }
    const wrong = await fetch(dashboard.url, { headers: { authorization: basic(OPERATOR.user, 'nope') } });
    expect(wrong.status).toBe(401);
    const noAuthPost = await fetch(new URL('api/dead-letters/replay', dashboard.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids: [itemLetter] }),
    });
    expect(noAuthPost.status).toBe(401);
    const noAuthRetry = await fetch(new URL(`queues/api/queues/t.dead/d-1/retry`, dashboard.url), { method: 'PUT' });
    expect(noAuthRetry.status).toBe(401);
    expect(await dw.deadLetters.get(itemLetter)).toBeDefined();
  });

  it('shows an operator the overview, the failed job in bull-board and the dead letters, without secrets', async () => {
    const page = await operator.newPage();
    await page.goto(dashboard.url);
    await expect(page.locator('header .who').textContent()).resolves.toBe('otto (operator)');
    const row = page.locator('#targets tr[data-target="t"]');
    await expect(row.locator('[data-field="dead-letters"]').textContent()).resolves.toBe('3');
    await expect(page.locator('#reconcile tr', { hasText: 'DlqItem' }).textContent()).resolves.toMatch(/drift/);
    await page.screenshot({ path: path.join(DOCS, 'dashboard-overview.png'), fullPage: true });

    // bull-board: the dead-letter queue's failed job (the handler that threw).
    await page.goto(new URL('queues/queue/t.dead?status=failed', dashboard.url).href);
    await page.getByText('paging the on-call failed').first().waitFor();
    const html = await page.content();
    expect(html).not.toContain('s3cr3t');
    expect(html).toContain('postgres://[redacted]@pager.internal');
    await page.screenshot({ path: path.join(DOCS, 'dashboard-queues.png'), fullPage: true });

    // The JSON bull-board's UI reads: row images without the @NotReplicated value, errors redacted.
    const api = await page.request.get(new URL('queues/api/queues?activeQueue=t.dead&status=latest&page=1&jobsPerPage=10', dashboard.url).href);
    expect(api.status()).toBe(200);
    const body = await api.text();
    expect(body).toContain(`${LONG}-3`);
    expect(body).not.toContain(SECRET);
    expect(body).not.toContain('s3cr3t');

    await page.goto(new URL('dead-letters', dashboard.url).href);
    await page.locator(`tr[data-letter="${itemLetter}"]`).waitFor();
    await page.locator(`tr[data-letter="${noteLetter}"]`).waitFor();
    expect(await page.content()).not.toContain(SECRET);
    await page.screenshot({ path: path.join(DOCS, 'dashboard-dead-letters.png'), fullPage: true });
    await page.close();
  });

  it('shows a viewer the same pages without replay, and refuses a viewer\'s direct requests with 403', async () => {
    const page = await viewer.newPage();
    await page.goto(dashboard.url);
    await expect(page.locator('header .who').textContent()).resolves.toBe('vera (viewer)');
    await page.goto(new URL('dead-letters', dashboard.url).href);
    await page.locator(`tr[data-letter="${itemLetter}"]`).waitFor();
    expect(await page.locator('button[data-action="replay"]').count()).toBe(0);
    await page.getByText('Read-only: replaying and discarding need the operator role').waitFor();
    await page.goto(new URL('queues/queue/t.dead?status=failed', dashboard.url).href);
    await page.getByText('paging the on-call failed').first().waitFor();

    const asViewer = { authorization: basic(VIEWER.user, VIEWER.password) };
    const replay = await page.request.post(new URL('api/dead-letters/replay', dashboard.url).href, { data: { ids: [itemLetter] }, headers: asViewer });
    expect(replay.status()).toBe(403);
    const form = await page.request.post(new URL('dead-letters/replay', dashboard.url).href, { form: { id: itemLetter }, headers: asViewer });
    expect(form.status()).toBe(403);
    const version = noteLetter.split('/')[1];
    for (const [method, url] of [
      ['PUT', `queues/api/queues/t.dead/d-${version}/retry`],
      ['PUT', `queues/api/queues/t.dead/d-${version}/clean`],
      ['PUT', 'queues/api/queues/t.dead/retry/failed'],
      ['PUT', 'queues/api/queues/t/pause'],
      ['POST', 'queues/api/queues/t/add'],
    ] as const) {
      const response = await page.request.fetch(new URL(url, dashboard.url).href, { method, headers: asViewer, data: {} });
      expect([method, url, response.status()]).toEqual([method, url, 403]);
    }
    expect((await dw.listDeadLetters()).map((l) => l.id).sort()).toEqual([itemLetter, itemLetter5, noteLetter].sort());
    await page.close();
  });

  it('lets an operator replay a dead letter from the page (and by bull-board retry), and the rows are applied', async () => {
    // Even an operator cannot forge or drop changes through bull-board.
    const asOperator = { authorization: basic(OPERATOR.user, OPERATOR.password) };
    const add = await fetch(new URL('queues/api/queues/t/add', dashboard.url), { method: 'POST', headers: { ...asOperator, 'content-type': 'application/json' }, body: '{}' });
    expect(add.status).toBe(403);
    // Nor remove an apply job, or clean out jobs that still hold changes (only completed ones).
    for (const path of ['queues/api/queues/t/some-job/clean', 'queues/api/queues/t/clean/wait', 'queues/api/queues/t/clean/delayed', 'queues/api/queues/t/clean/failed']) {
      const response = await fetch(new URL(path, dashboard.url), { method: 'PUT', headers: asOperator });
      expect([path, response.status]).toEqual([path, 403]);
    }
    const crossSite = await fetch(new URL('dead-letters/replay', dashboard.url), {
      method: 'POST',
      headers: { ...asOperator, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: `id=${encodeURIComponent(itemLetter)}`,
    });
    expect(crossSite.status).toBe(403);

    await widenTargetColumns(target, 'postgres');
    const page = await operator.newPage();
    await page.goto(new URL('dead-letters', dashboard.url).href);
    await page.locator(`button[data-action="replay"][data-id="${itemLetter}"]`).click();
    await page.getByText('Replayed 1 dead letter(s)').waitFor();
    expect(await page.locator(`tr[data-letter="${itemLetter}"]`).count()).toBe(0);

    // bull-board's retry of one dead-letter job (here a direct request, as its job button sends) replays it too.
    const one = await page.request.put(new URL(`queues/api/queues/t.dead/d-${itemLetter5.split('/')[1]}/retry`, dashboard.url).href);
    expect(one.status()).toBe(200);

    // bull-board's own "Retry all" on the failed dead letters replays their rows (not the old jobs).
    await page.goto(new URL('queues/queue/t.dead?status=failed', dashboard.url).href);
    await page.getByText('paging the on-call failed').first().waitFor();
    const retried = page.waitForResponse((r) => r.request().method() === 'PUT' && /\/queues\/api\/queues\/t\.dead\/retry\/failed$/.test(r.url()));
    await page.getByRole('button', { name: 'Retry all', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm', exact: true }).click();
    expect((await retried).status()).toBe(200);

    const applied = await eventually(async () => {
      const items = await targetItems(target);
      const notes = (await target.query('SELECT body FROM dlq_note WHERE id = 1')) as Array<{ body: string }>;
      return items.labels.get(3) === `${LONG}-3` && items.labels.get(5) === `${LONG}-5` && notes[0]?.body === `${LONG}-note`;
    }, 30_000, 50);
    expect(applied).toBe(true);
    expect((await targetItems(target)).secrets).toBe(0);
    expect(await dw.listDeadLetters()).toEqual([]);
    await page.goto(dashboard.url);
    await expect(page.locator('#targets tr[data-target="t"] [data-field="dead-letters"]').textContent()).resolves.toBe('0');
    await page.close();
  });
});
