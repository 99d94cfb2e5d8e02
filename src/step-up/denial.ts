import { ProxyError } from '../errors.js';
import { INSUFFICIENT_SCOPE, jsonRpcErrorBody } from '../mcp/jsonrpc-errors.js';
import type { McpAware } from '../mcp/state.js';
import type { ApprovalResult } from './approvals.js';

type Refusal = Exclude<ApprovalResult, { outcome: 'approved' }>;

/**
 * The agent's answer when a step-up does not end in approval: 403 insufficient_scope (RFC 6750 §3.1)
 * naming the scopes the call needed, or 503 when the approval channel itself failed. On MCP POSTs
 * the body is a JSON-RPC error per request id, like the MCP policy's own denials.
 */
export function stepUpDenial(
  ctx: McpAware,
  result: Refusal,
  scope: readonly string[],
  timeoutSeconds: number,
): ProxyError {
  const detail = `step-up ${result.outcome}${result.outcome === 'error' ? `: ${result.detail}` : ''}`;
  switch (result.outcome) {
    case 'denied':
      return refusal(ctx, 'step-up denied: a person declined to approve this request', scope, detail, 'step_up_denied');
    case 'timeout':
      return refusal(
        ctx,
        `step-up timed out: no approval decision arrived within ${timeoutSeconds} s; the approval request was withdrawn`,
        scope,
        detail,
        'step_up_timeout',
      );
    case 'withdrawn':
      if (result.reason === 'shutdown') {
        return new ProxyError(
          'temporarily_unavailable',
          'the proxy is shutting down; the approval request was withdrawn',
          { detail, retryAfterSeconds: 1 },
        );
      }
      return refusal(
        ctx,
        'step-up withdrawn: the request was cancelled before a decision',
        scope,
        detail,
        'step_up_withdrawn',
      );
    case 'error':
      return new ProxyError('temporarily_unavailable', 'the approval channel is unavailable; try again later', {
        detail,
        retryAfterSeconds: 5,
      });
  }
  throw new Error('unreachable');
}

function refusal(
  ctx: McpAware,
  description: string,
  scope: readonly string[],
  detail: string,
  reason: string,
): ProxyError {
  const requests = ctx.mcp?.decisions.filter((d) => d.isRequest) ?? [];
  if (requests.length === 0) return new ProxyError('insufficient_scope', description, { scope, detail });
  const body = jsonRpcErrorBody(
    ctx.mcp?.batch ?? false,
    requests.map((d) => ({
      id: d.id,
      code: INSUFFICIENT_SCOPE,
      message: description,
      data: { error: 'insufficient_scope', reason, requiredScopes: scope },
    })),
  );
  return new ProxyError('insufficient_scope', description, { scope, detail, body });
}
