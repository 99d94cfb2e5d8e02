import { hash } from 'node:crypto';
import type { ListedApproval } from './inbox.js';

/** Every value on the page is untrusted (paths, tool names and reasons come from the agent). */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
body{font:15px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{text-align:left;vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #ddd}
th{width:11rem;color:#555;font-weight:600}code{font-size:.9em;word-break:break-all}
.card{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.reason{white-space:pre-wrap;background:#fff8e1;padding:.2rem .4rem}
button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.6rem;cursor:pointer}
.approve{background:#1b7f3b;color:#fff;border:0}.deny{background:#b3261e;color:#fff;border:0}
.msg{padding:.5rem 1rem;background:#eef;border-radius:4px}.err{background:#fdecea}
label{display:block;margin:.6rem 0}input{font-size:1rem;padding:.3rem;width:22rem;max-width:100%}
`;

/**
 * No script at all and no external asset; the one inline style is allowed by its hash. Framing is
 * refused (clickjacking on the Approve button) and forms may only post back here.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${hash('sha256', STYLE, 'base64')}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="same-origin"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>`;
}

export function loginPage(error: string | undefined): string {
  return layout(
    'delegate-proxy step-up approvals: sign in',
    `${error === undefined ? '' : `<p class="msg err">${escapeHtml(error)}</p>`}
<form method="post" action="/step-up/login">
<label>Your name (recorded as the approver)<br><input name="approver" required maxlength="128" autocomplete="name"></label>
<label>Approval secret (stepUp.approval.callbackSecretFile)<br><input name="secret" type="password" required autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>`,
  );
}

export interface ListPageInput {
  readonly approver: string;
  readonly csrf: string;
  readonly pending: readonly ListedApproval[];
  readonly now: number;
  readonly message: string | undefined;
  readonly error?: boolean;
  /** Fleet mode: every pod's approvals, or only this pod's while Redis is unavailable. */
  readonly fleet?: 'fleet' | 'local-only' | undefined;
}

function row(label: string, value: string | undefined, cls = ''): string {
  if (value === undefined || value === '') return '';
  return `<tr><th>${escapeHtml(label)}</th><td${cls ? ` class="${cls}"` : ''}>${value}</td></tr>`;
}

function card(a: ListedApproval, csrf: string, now: number): string {
  const code = (v: string) => `<code>${escapeHtml(v)}</code>`;
  const left = Math.max(0, Math.round((a.expiresAt - now) / 1000));
  return `<section class="card" data-approval-id="${escapeHtml(a.id)}">
<table>
${row('Route', code(a.route))}
${row('Elevated scope', code(a.scopes.join(' ')))}
${row('User (sub)', a.sub === undefined ? '<em>unknown</em>' : code(a.sub))}
${row('Agent (actor)', a.actor === undefined ? undefined : code(a.actor))}
${row('Request', `${code(a.method)} ${code(a.path)}`)}
${row('MCP tool', a.mcpTools.length === 0 ? undefined : code(a.mcpTools.join(', ')))}
${row('Agent’s reason (unverified)', a.reason === undefined ? undefined : escapeHtml(a.reason), 'reason')}
${row('Body SHA-256', code(a.bodySha256))}
${row('Trigger', escapeHtml(a.trigger === 'rule' ? 'step-up rule' : 'upstream asked (insufficient_scope)'))}
${row('Expires', `${escapeHtml(new Date(a.expiresAt).toISOString())} (in ${left} s)`)}
${row('Held by pod', a.pod === undefined ? undefined : code(a.pod))}
${row('Approval id', code(a.id))}
</table>
<form method="post" action="/step-up/${encodeURIComponent(a.id)}">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<input type="hidden" name="bodySha256" value="${escapeHtml(a.bodySha256)}">
<button class="approve" name="decision" value="approved">Approve</button>
<button class="deny" name="decision" value="denied">Deny</button>
</form>
</section>`;
}

export function listPage(input: ListPageInput): string {
  const cards = input.pending.map((a) => card(a, input.csrf, input.now)).join('\n');
  return layout(
    'delegate-proxy step-up approvals',
    `<p>Signed in as <strong>${escapeHtml(input.approver)}</strong>.
<a href="/step-up">Refresh</a></p>
<form method="post" action="/step-up/logout"><input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}"><button type="submit">Sign out</button></form>
${input.message === undefined ? '' : `<p class="msg${input.error ? ' err' : ''}" role="status">${escapeHtml(input.message)}</p>`}
${
  input.fleet === 'local-only'
    ? '<p class="msg err" id="local-only">local-only: the fleet inbox (Redis) is unavailable; only the requests held by this pod are shown.</p>'
    : ''
}<h2>Pending (${input.pending.length})</h2>
${cards === '' ? '<p id="none">No request is waiting for approval.</p>' : cards}`,
  );
}
