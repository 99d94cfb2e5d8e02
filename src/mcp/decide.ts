import { MCP_METHOD_LABELS, type McpMethodLabel } from '../observability/metrics.js';
import type { JsonRpcId, McpMessage } from './jsonrpc.js';
import { derivedRequirement, type McpPolicy, toolCallRequirement } from './method-scopes.js';
import { envelopeClaim } from './mirrored-headers.js';

/** Why a message is refused: it needs a scope the route can never ask for, or its method is not allowed. */
export type Denial = 'scope' | 'method' | 'params';

/** What the policy says about one message. */
export interface MessageDecision {
  readonly method: string | undefined;
  /** JSON-RPC id to answer; null for notifications and responses. */
  readonly id: JsonRpcId | null;
  readonly isRequest: boolean;
  readonly label: McpMethodLabel;
  /** tools/call only. */
  readonly tool: string | undefined;
  /** Sorted, de-duplicated. */
  readonly requiredScopes: readonly string[];
  readonly denial: Denial | undefined;
  /** The message carries the 2026-07-28 `_meta` claim (its era's method table applied). */
  readonly modern: boolean;
}

// The pseudo-labels are never taken from a method name.
const LABELS: ReadonlySet<string> = new Set(
  MCP_METHOD_LABELS.filter((l) => l !== 'notification' && l !== 'response' && l !== 'other'),
);
const NOTIFICATION_NAMESPACE = 'notifications/';
const NONE: readonly string[] = Object.freeze([]);

/**
 * Scopes one message needs. The method decides, with or without an id: a `tools/call` sent as a
 * notification still needs the tools/call scopes (a server might act on it without answering).
 * Notifications in the MCP `notifications/` namespace and responses need none.
 */
export function decide(policy: McpPolicy, message: McpMessage): MessageDecision {
  if (message.kind === 'response') {
    return {
      method: undefined,
      id: null,
      isRequest: false,
      label: 'response',
      tool: undefined,
      requiredScopes: NONE,
      denial: undefined,
      modern: false,
    };
  }
  const { method, params } = message;
  const isRequest = message.kind === 'request';
  const id = isRequest ? message.id : null;
  const label = labelOf(method, isRequest);
  const modern = envelopeClaim(params) !== undefined;
  const table = modern ? policy.modern : policy.legacy;
  let requirement = table.requirements.get(method);
  if (requirement === undefined) {
    const free = !isRequest && method.startsWith(NOTIFICATION_NAMESPACE);
    return {
      method,
      id,
      isRequest,
      label,
      tool: undefined,
      requiredScopes: NONE,
      denial: free ? undefined : 'method',
      modern,
    };
  }
  let tool: string | undefined;
  if (method === 'tools/call') {
    const name = (params as { name?: unknown } | undefined)?.name;
    // Without a string name the tool (and so its scopes) is unknowable: refuse, never guess.
    if (typeof name !== 'string') {
      return { method, id, isRequest, label, tool: undefined, requiredScopes: NONE, denial: 'params', modern };
    }
    tool = name;
    requirement = toolCallRequirement(policy, table, name);
  } else {
    const derive = table.derived.get(method);
    if (derive !== undefined) {
      const derived = derivedRequirement(policy, table, derive, params);
      if (derived === undefined)
        return { method, id, isRequest, label, tool: undefined, requiredScopes: NONE, denial: 'params', modern };
      requirement = derived;
    }
  }
  // Computed once per route (compilePolicy): the same frozen array for every such message.
  return {
    method,
    id,
    isRequest,
    label,
    tool,
    requiredScopes: requirement.scopes,
    denial: requirement.withinCeiling ? undefined : 'scope',
    modern,
  };
}

function labelOf(method: string, isRequest: boolean): McpMethodLabel {
  if (!isRequest && method.startsWith(NOTIFICATION_NAMESPACE)) return 'notification';
  return LABELS.has(method) ? (method as McpMethodLabel) : 'other';
}
