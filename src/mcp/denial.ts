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

/** What a method's scopes are derived from, when its params do not say (decide's `params` denial). */
const PARAMS_NEEDED: Readonly<Record<string, string>> = {
  'tools/call': 'tools/call needs a string params.name',
  'subscriptions/listen': 'subscriptions/listen needs a params.notifications object',
  'completion/complete': 'completion/complete needs params.ref.type ref/prompt or ref/resource',
};

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
        message: PARAMS_NEEDED[d.method ?? ''] ?? 'Invalid params',
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
 * §3.1 insufficient_scope challenge naming every scope the messages need (none for a method no
 * scope unlocks),
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
    return new ProxyError('invalid_request', 'an MCP request lacks the params its scopes depend on', {
      detail,
      body,
    });
  }
  // MCP basic/authorization "Scope Challenge Handling": one challenge names every scope the
  // operation needs (a batch: the union of its messages'), not only the ones found missing.
  const scope = denied.some((d) => d.denial === 'scope')
    ? [...new Set(decisions.flatMap((d) => d.requiredScopes))].sort()
    : [];
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

/**
 * The same error with the route's RFC 9728 metadata URL in its challenge (401 and 403 only: the
 * statuses that carry one).
 */
export function withResourceMetadata(err: ProxyError, url: string | undefined): ProxyError {
  if (url === undefined || (err.status !== 401 && err.status !== 403) || err.resourceMetadata !== undefined) return err;
  return new ProxyError(err.code, err.description, {
    ...(err.detail === undefined ? {} : { detail: err.detail }),
    cause: err.cause ?? err,
    ...(err.scope === undefined ? {} : { scope: err.scope }),
    ...(err.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: err.retryAfterSeconds }),
    ...(err.headers === undefined ? {} : { headers: err.headers }),
    ...(err.body === undefined ? {} : { body: err.body }),
    status: err.status,
    resourceMetadata: url,
  });
}
