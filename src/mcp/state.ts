import type { MessageDecision } from './decide.js';
import type { JsonRpcId } from './jsonrpc.js';
import type { McpPolicy } from './method-scopes.js';

/** What the MCP policy step learned about a request, for the later steps (forward, fail, record). */
export interface McpRequestState {
  readonly policy: McpPolicy;
  /** The body was a JSON-RPC batch. */
  batch: boolean;
  /** One per message; empty for GET, DELETE and bodies that did not parse. */
  decisions: readonly MessageDecision[];
  /** The user's grants from the subject token's `scope` claim when it is a JWT (decoded only). */
  readonly grants: ReadonlySet<string> | undefined;
  /** Ids of tools/list requests whose results are filtered; empty: no filtering. */
  toolsListIds: ReadonlySet<JsonRpcId>;
  outcome: 'allowed' | 'denied';
  /**
   * Counts the messages once with their final outcome (later calls do nothing). Called where the
   * outcome becomes known: the policy's denial, the upstream's answer, or a later step's failure.
   */
  settle(outcome: 'allowed' | 'denied'): void;
}

/** The MCP policy step's slice of the context (set on routes with an `mcp` block only). */
export interface McpAware {
  mcp?: McpRequestState | undefined;
}
