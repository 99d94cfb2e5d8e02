import { MCP_METHOD_LABELS, type McpMethodLabel } from '../observability/metrics.js';
import type { JsonRpcId, McpMessage } from './jsonrpc.js';
import { type McpPolicy, toolCallRequirement } from './method-scopes.js';

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
    };
  }
  const { method } = message;
  const isRequest = message.kind === 'request';
  const id = isRequest ? message.id : null;
  const label = labelOf(method, isRequest);
  let requirement = policy.requirements.get(method);
  if (requirement === undefined) {
    const free = !isRequest && method.startsWith(NOTIFICATION_NAMESPACE);
    return { method, id, isRequest, label, tool: undefined, requiredScopes: NONE, denial: free ? undefined : 'method' };
  }
  let tool: string | undefined;
  if (method === 'tools/call') {
    const name = (message.params as { name?: unknown } | undefined)?.name;
    // Without a string name the tool (and so its scopes) is unknowable: refuse, never guess.
    if (typeof name !== 'string') {
      return { method, id, isRequest, label, tool: undefined, requiredScopes: NONE, denial: 'params' };
    }
    tool = name;
    requirement = toolCallRequirement(policy, name);
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
  };
}

function labelOf(method: string, isRequest: boolean): McpMethodLabel {
  if (!isRequest && method.startsWith(NOTIFICATION_NAMESPACE)) return 'notification';
  return LABELS.has(method) ? (method as McpMethodLabel) : 'other';
}
