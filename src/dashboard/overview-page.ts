import type { DualWrite, ReconcileReport } from '../index';
import { duration, escapeHtml, layout, time, type PageContext } from './html';

type Overview = Awaited<ReturnType<DualWrite['overview']>>;

/** What the overview page shows: the same measurements as `dualwrite status`, plus the last reconcile reports. */
export interface OverviewModel {
  overview: Overview;
  thresholds: { lagMs: number; deadLetters: number; outboxAgeMs: number };
  reports: ReconcileReport[];
}

function flagged(value: string, bad: boolean): string {
  return bad ? `<span class="bad">${value}</span>` : value;
}

/** The overview: outbox backlog, per target lag, queue depth and dead letters, and the last reconcile report per entity × target. */
export function renderOverview(page: PageContext, model: OverviewModel): string {
  const { overview, thresholds, reports } = model;
  const { outbox } = overview;
  const queueLink = (name: string, label: string) => `<a href="queues/queue/${encodeURIComponent(name)}">${escapeHtml(label)}</a>`;
  const targets = overview.targets
    .map(
      (t) => `<tr data-target="${escapeHtml(t.target)}">
<td><strong>${escapeHtml(t.target)}</strong><br><span class="muted">${queueLink(t.target, 'apply queue')} · ${queueLink(`${t.target}.dead`, 'dead-letter queue')}</span></td>
<td class="num" data-field="lag">${flagged(duration(t.lagMs), t.lagMs > thresholds.lagMs)}</td>
<td class="num">${t.queue.waiting}</td><td class="num">${t.queue.prioritized}</td><td class="num">${t.queue.delayed}</td>
<td class="num">${t.queue.active}</td><td class="num">${flagged(String(t.queue.failed), t.queue.failed > 0)}</td>
<td class="num" data-field="dead-letters">${t.deadLetters > 0 ? `<a href="dead-letters?target=${encodeURIComponent(t.target)}">${flagged(String(t.deadLetters), t.deadLetters > thresholds.deadLetters)}</a>` : '0'}</td>
</tr>`,
    )
    .join('\n');
  const reportRows = reports.length
    ? reports
        .map(
          (r) => `<tr><td>${escapeHtml(r.entity)}</td><td>${escapeHtml(r.target)}</td>
<td>${flagged(escapeHtml(r.status), r.status === 'drift' || r.status === 'incomplete')}</td>
<td class="num">${r.rowsCompared}</td><td class="num">${r.missing}</td><td class="num">${r.extra}</td><td class="num">${r.changed}</td>
<td class="num">${r.repaired}</td><td class="num">${r.hotKeys}</td><td>${escapeHtml(r.finishedAt)} <span class="muted">(${duration(r.durationMs)})</span></td></tr>`,
        )
        .join('\n')
    : '<tr><td colspan="10" class="muted">No reconcile run yet (run <code>dualwrite reconcile</code>, or set <code>reconcile.every</code> for the worker).</td></tr>';
  const body = `
<p class="muted">Measured ${escapeHtml(time(overview.at))}. Thresholds (as for <code>dualwrite status</code>): lag ≤ ${duration(thresholds.lagMs)}, dead letters ≤ ${thresholds.deadLetters}, outbox age ≤ ${duration(thresholds.outboxAgeMs)}. <a href="./">Refresh</a></p>
<h2>Outbox (primary)</h2>
<table id="outbox"><tr><th>Rows not relayed yet</th><th>Oldest row</th><th>Oldest age</th></tr>
<tr><td class="num" data-field="outbox-count">${outbox.count}</td><td>${escapeHtml(time(outbox.oldestCapturedAt))}</td>
<td class="num">${flagged(outbox.count ? duration(outbox.oldestAgeMs) : '—', outbox.oldestAgeMs > thresholds.outboxAgeMs)}</td></tr></table>
<h2>Targets</h2>
<table id="targets"><tr><th>Target</th><th title="now − capture time of the oldest change not applied yet">Replication lag</th>
<th>Waiting</th><th>Prioritized</th><th>Delayed (retrying)</th><th>Active</th><th>Failed</th><th>Dead letters</th></tr>
${targets}</table>
<h2>Last reconcile report per entity × target</h2>
<table id="reconcile"><tr><th>Entity</th><th>Target</th><th>Status</th><th>Rows compared</th><th>Missing</th><th>Extra</th><th>Changed</th><th>Repaired</th><th>Hot keys</th><th>Finished</th></tr>
${reportRows}</table>`;
  return layout(page, body);
}
