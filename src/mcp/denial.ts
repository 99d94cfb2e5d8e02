import { ProxyError } from '../errors.js';
import type { MessageDecision } from './decide.js';
import type { JsonRpcId } from './jsonrpc.js';
import {
  INSUFFICIENT_SCOPE,
  INVALID_PARAMS,
  type JsonRpcErrorEntry,
  jsonRpcErrorBody,
  METHOD_NOT_FOUND,
} from './jsonrpc-errors.js';

function idsOf(decisions: readonly MessageDecision[]): Array<JsonRpcId | null> {
  return decisions.map((d) => d.id);
}

function errorFor(d: MessageDecision, deniedIds: Array<JsonRpcId | null>): JsonRpcErrorEntry {
  switch (d.denial) {
    case 'scope':
      return {
        id: d.id,
        code: INSUFFICIENT_SCOPE,
        message: 'Insufficient scope',
        data: { error: 'insufficient_scope', requiredScopes: d.requiredScopes },
      };
    case 'method':
      return {
        id: d.id,
        code: METHOD_NOT_FOUND,
        message: 'Method not allowed by the proxy policy',
        data: { error: 'method_not_allowed', method: d.method },
      };
    case 'params':
      return {
        id: d.id,
        code: INVALID_PARAMS,
        message: 'tools/call needs a string params.name',
        data: { error: 'invalid_params' },
      };
    case undefined:
      // Allowed itself, refused with its batch (JSON-RPC has no partial batches through a proxy).
      return {
        id: d.id,
        code: INSUFFICIENT_SCOPE,
        message: 'Batch refused: other messages in it were denied',
        data: { error: 'batch_denied', deniedIds },
      };
  }
}

/**
 * The policy refused at least one message: nothing reaches the upstream. HTTP 403 with an RFC 6750
 * §3.1 insufficient_scope challenge naming the scopes needed (none for a method no scope unlocks),
 * and a JSON-RPC error per request id (and per refused notification, id null). A bad tools/call
 * (no tool name) is a 400 instead: no scope would help.
 */
export function policyDenial(batch: boolean, decisions: readonly MessageDecision[]): ProxyError {
  const denied = decisions.filter((d) => d.denial !== undefined);
  const deniedIds = idsOf(denied);
  const answered = decisions.filter((d) => d.isRequest || d.denial !== undefined);
  const body = jsonRpcErrorBody(
    batch,
    answered.map((d) => errorFor(d, deniedIds)),
  );
  const detail = `MCP policy denied ${denied.map((d) => `${d.method ?? 'response'}${d.tool === undefined ? '' : ` ${d.tool}`} (${d.denial})`).join(', ')}`;
  if (denied.every((d) => d.denial === 'params')) {
    return new ProxyError('invalid_request', 'a tools/call request has no tool name', { detail, body });
  }
  const scope = [...new Set(denied.flatMap((d) => (d.denial === 'scope' ? d.requiredScopes : [])))].sort();
  return new ProxyError('insufficient_scope', 'the MCP request needs a scope or method this route does not allow', {
    detail,
    scope,
    body,
  });
}

/**
 * The AS refused the scopes the messages need (its invalid_scope): the same 403, in the same
 * JSON-RPC shape, for every request in the body.
 */
export function exchangeDenial(err: ProxyError, batch: boolean, decisions: readonly MessageDecision[]): ProxyError {
  const requiredScopes = err.scope ?? [];
  const requests = decisions.filter((d) => d.isRequest);
  if (requests.length === 0) return err;
  const message = 'Insufficient scope: the authorization server refused the delegation';
  return new ProxyError(err.code, err.description, {
    ...(err.detail === undefined ? {} : { detail: err.detail }),
    cause: err,
    scope: requiredScopes,
    ...(err.headers === undefined ? {} : { headers: err.headers }),
    body: jsonRpcErrorBody(
      batch,
      requests.map((d) => ({
        id: d.id,
        code: INSUFFICIENT_SCOPE,
        message,
        data: { error: 'insufficient_scope', requiredScopes },
      })),
    ),
  });
}
