import { redactText } from './redact';

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Escaped and redacted: for any text that came from a failure or a driver. */
export function safeText(value: unknown): string {
  return escapeHtml(redactText(String(value)));
}

/** A duration in ms, for people. */
export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function time(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '—' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export interface PageContext {
  title: string;
  /** Who is looking, e.g. `alice (operator)` or `read-only (no credentials configured)`. */
  who: string;
  active: 'overview' | 'dead-letters';
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#d0d7de;text-decoration:none}header a.active,header a:hover{color:#fff;font-weight:600}
header .who{margin-left:auto;color:#adbac7;font-size:13px}
main{padding:16px 24px;max-width:1280px}
h1{font-size:20px;margin:8px 0 16px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:8px}
th,td{border:1px solid #d0d7de;padding:6px 10px;text-align:left;vertical-align:top}
th{background:#eaeef2;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#cf222e;font-weight:600}.ok{color:#1a7f37}.muted{color:#656d76}
.notice{padding:8px 12px;border-radius:6px;margin:8px 0 16px;background:#ddf4ff;border:1px solid #54aeff}
.notice.error{background:#ffebe9;border-color:#ff8182}
form.inline{display:inline}button{font:inherit;padding:3px 10px;border-radius:6px;border:1px solid #8c959f;background:#f6f8fa;cursor:pointer}
button.primary{background:#1f883d;color:#fff;border-color:#1a7f37}button.danger{color:#cf222e}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
`;

/** The shared page frame: navigation, who is signed in, content. */
export function layout(page: PageContext, body: string): string {
  const link = (href: string, label: string, key?: PageContext['active']) =>
    `<a href="${href}"${key === page.active ? ' class="active"' : ''}>${label}</a>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.title)} · dualwrite</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body><header><strong>dualwrite</strong>${link('./', 'Overview', 'overview')}${link('dead-letters', 'Dead letters', 'dead-letters')}${link('queues', 'Queues (bull-board)')}
<span class="who">${escapeHtml(page.who)}</span></header>
<main><h1>${escapeHtml(page.title)}</h1>
${body}
</main></body></html>`;
}
