import type { DeadLetter } from '../index';
import { escapeHtml, layout, safeText, time, type PageContext } from './html';

export interface DeadLettersModel {
  letters: DeadLetter[];
  /** Only an operator gets the replay and discard buttons (the server checks the role again on each request). */
  canOperate: boolean;
  /** Target filter in effect, if any. */
  target?: string;
  /** Result of the last action, shown once. */
  notice?: { text: string; error?: boolean };
}

function actions(letter: DeadLetter): string {
  const id = escapeHtml(letter.id);
  return `<form class="inline" method="post" action="dead-letters/replay"><input type="hidden" name="id" value="${id}">
<button class="primary" type="submit" data-action="replay" data-id="${id}" title="Send the row's CURRENT state through the version gate again">Replay</button></form>
<form class="inline" method="post" action="dead-letters/discard" onsubmit="return confirm('Discard dead letter ${id} for good?')"><input type="hidden" name="id" value="${id}">
<button class="danger" type="submit" data-action="discard" data-id="${id}">Discard</button></form>`;
}

/** The dead letters, newest failures last, with replay/discard for operators. */
export function renderDeadLetters(page: PageContext, model: DeadLettersModel): string {
  const { letters, canOperate } = model;
  const rows = letters
    .map(
      (l) => `<tr data-letter="${escapeHtml(l.id)}">
<td><code>${escapeHtml(l.id)}</code><br><a class="muted" href="queues/queue/${encodeURIComponent(`${l.target}.dead`)}/${encodeURIComponent(`d-${l.change.version}`)}">job</a></td>
<td>${escapeHtml(l.change.entity)}</td><td><code>${escapeHtml(l.change.key.join(', '))}</code></td><td>${escapeHtml(l.change.op)}</td>
<td>${escapeHtml(l.failure.class)} ${escapeHtml(l.failure.reason)}${l.failure.code ? ` <code>${escapeHtml(l.failure.code)}</code>` : ''}</td>
<td class="message">${safeText(l.failure.message.length > 300 ? `${l.failure.message.slice(0, 300)}…` : l.failure.message)}</td>
<td class="num">${l.attempts}</td><td>${escapeHtml(time(l.firstFailedAt))}<br>${escapeHtml(time(l.lastFailedAt))}</td>
${canOperate ? `<td>${actions(l)}</td>` : ''}</tr>`,
    )
    .join('\n');
  const notice = model.notice ? `<div class="notice${model.notice.error ? ' error' : ''}" role="status">${safeText(model.notice.text)}</div>` : '';
  const readOnly = canOperate
    ? ''
    : '<p class="notice">Read-only: replaying and discarding need the operator role (DUALWRITE_DASHBOARD_OPERATOR).</p>';
  const filter = model.target
    ? `<p>Target <strong>${escapeHtml(model.target)}</strong> only · <a href="dead-letters">all targets</a></p>`
    : '';
  const body = `${notice}${readOnly}${filter}
<p class="muted">A dead letter is a change that can never apply to its target as it is. <strong>Replay</strong> re-reads the row's current state on the primary
(a locking read) and sends it with a fresh version through the version gate, so an old letter never rolls a target back; a row deleted meanwhile replays as a delete.
Fix the cause first (e.g. widen the target column), then replay.</p>
<table id="dead-letters"><tr><th>Id</th><th>Entity</th><th>Key</th><th>Op</th><th>Failure</th><th>Message</th><th>Attempts</th><th>First / last failed</th>${canOperate ? '<th>Actions</th>' : ''}</tr>
${rows || `<tr><td colspan="${canOperate ? 9 : 8}" class="muted">No dead letters.</td></tr>`}</table>`;
  return layout(page, body);
}
