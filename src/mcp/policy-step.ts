import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { WithSubject } from '../auth/stage.js';
import { addLogFields, type RequestContext } from '../pipeline/context.js';
import { PASS, type ResponseAction, type UpstreamHead } from '../pipeline/response-action.js';
import { hasBody, readBody } from '../pipeline/request-body.js';
import { normalizeScopes } from '../routing/route-table.js';
import { decide, type MessageDecision } from './decide.js';
import { exchangeDenial, policyDenial } from './denial.js';
import { grantsOf } from './grants.js';
import { createJsonResponseFilter } from './json-response-filter.js';
import { INVALID_REQUEST, jsonRpcErrorBody } from './jsonrpc-errors.js';
import { type JsonRpcId, parseJsonRpcBody } from './jsonrpc.js';
import { baseScopes, compilePolicy, type McpPolicy } from './method-scopes.js';
import { createSseResponseFilter } from './sse-response-filter.js';
import type { McpAware, McpRequestState } from './state.js';
import { filterToolsListMessage } from './tools-list-filter.js';

export interface PolicyDeps {
  readonly metrics: Metrics;
}

/** Most a tools/list answer (JSON body or one SSE event) is held for filtering. */
const FILTER_LIMIT_BYTES = 8 * 1024 * 1024;
/** Longest tool or method name written to a log line (agent-controlled text). */
const LOG_NAME_MAX = 128;

/**
 * Pipeline step 4 (docs/design.md "Request pipeline" step 4), a no-op on routes without `mcp`. On MCP routes it reads
 * and parses the JSON-RPC body of a POST, refuses what the route can never be granted (403, or 400
 * for malformed bodies) before any exchange, and sets `ctx.scopes` to what the messages need:
 * least privilege per call, not the route's whole list. GET (the SSE stream) and DELETE (end of
 * session) carry no message and get the base scope.
 */
export async function enforcePolicy(ctx: WithSubject & McpAware, deps: PolicyDeps): Promise<void> {
  const route = ctx.route;
  if (route.mcp === undefined) return;
  const policy = compilePolicy(route, route.mcp);
  const grants = grantsOf(ctx.subject.token);
  let settled = false;
  const state: McpRequestState = {
    policy,
    batch: false,
    decisions: [],
    grants,
    toolsListIds: new Set(),
    outcome: 'allowed',
    settle(outcome) {
      if (settled) return;
      settled = true;
      state.outcome = outcome;
      addLogFields(ctx, { mcpOutcome: outcome });
      for (const d of state.decisions) deps.metrics.mcpRequests.inc({ route: route.name, method: d.label, outcome });
    },
  };
  ctx.mcp = state;

  const { req } = ctx;
  if (req.method === 'GET' || req.method === 'DELETE') {
    // Only POST bodies are inspected, so no other request may carry one to the upstream.
    if (hasBody(req)) throw new ProxyError('invalid_request', `an MCP ${req.method} request has no body`);
    ctx.scopes = baseScopes(policy, grants);
    return;
  }
  if (req.method !== 'POST') {
    // Streamable HTTP uses POST, GET and DELETE only (MCP basic/transports).
    throw new ProxyError('method_not_allowed', 'MCP endpoints accept POST, GET and DELETE', {
      headers: { allow: 'GET, POST, DELETE' },
    });
  }

  const body = await readMcpBody(req, policy.maxBodyBytes);
  ctx.body = body;
  const parsed = parseJsonRpcBody(body);
  const decisions = parsed.messages.map((m) => decide(policy, m));
  state.batch = parsed.batch;
  state.decisions = decisions;
  addLogFields(ctx, logFieldsOf(decisions));
  if (decisions.some((d) => d.denial !== undefined)) {
    state.settle('denied');
    throw policyDenial(parsed.batch, decisions);
  }
  addLogFields(ctx, { mcpOutcome: 'allowed' });
  const needed = decisions.flatMap((d) => d.requiredScopes);
  ctx.scopes = needed.length > 0 ? normalizeScopes(needed) : baseScopes(policy, grants);

  if (policy.filterToolsList && grants !== undefined) {
    state.toolsListIds = new Set(decisions.filter((d) => d.isRequest && d.method === 'tools/list').map((d) => d.id as JsonRpcId));
    // The answer must be readable to be filtered: ask the upstream for an uncompressed one.
    if (state.toolsListIds.size > 0) delete req.headers['accept-encoding'];
  }
}

/** Reads the POST body, refusing more than `limit` bytes with 413 (RFC 9110 §15.5.14). */
async function readMcpBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (cause?: unknown) =>
    new ProxyError('payload_too_large', `the MCP request body is larger than ${limit} bytes`, {
      cause,
      // The rest of the body is not read: the connection cannot be reused.
      headers: { connection: 'close' },
      body: jsonRpcErrorBody(false, [{ id: null, code: INVALID_REQUEST, message: 'Request body too large', data: { maxBodyBytes: limit } }]),
    });
  const declared = Number(req.headers['content-length']);
  if (req.headers['transfer-encoding'] === undefined && declared > limit) throw tooLarge();
  try {
    return await readBody(req, limit);
  } catch (err) {
    if (err instanceof ProxyError && err.code === 'payload_too_large') throw tooLarge(err);
    throw err;
  }
}

function logFieldsOf(decisions: readonly MessageDecision[]): Record<string, unknown> {
  const clip = (s: string) => (s.length > LOG_NAME_MAX ? `${s.slice(0, LOG_NAME_MAX)}…` : s);
  const methods = decisions.map((d) => clip(d.method ?? 'response'));
  const tools = decisions.flatMap((d) => (d.tool === undefined ? [] : [clip(d.tool)]));
  const denied = decisions.filter((d) => d.denial !== undefined);
  return {
    mcpMethod: methods.length === 1 ? methods[0] : methods,
    ...(tools.length === 0 ? {} : { mcpTool: tools.length === 1 ? tools[0] : tools }),
    ...(denied.length === 0 ? {} : { mcpDenied: denied.map((d) => ({ id: d.id, method: clip(d.method ?? 'response'), reason: d.denial })) }),
  };
}

/**
 * How forward passes an MCP answer: through the tools/list filter when the request asked for
 * tools/list on a `filterToolsList` route and the user's grants are known; else untouched.
 */
export function mcpResponseAction(ctx: RequestContext & McpAware, head: UpstreamHead): ResponseAction {
  const state = ctx.mcp;
  // The upstream answered: the messages went through.
  state?.settle('allowed');
  if (state === undefined || state.toolsListIds.size === 0 || state.grants === undefined || head.status !== 200) return PASS;
  const encoding = head.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    ctx.log.warn({ contentEncoding: encoding }, 'tools/list answer is compressed; passed unfiltered');
    return PASS;
  }
  const mediaType = String(head.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const remaining = new Set(state.toolsListIds);
  const mayList = mayListFor(state.policy, state.grants);
  const rewrite = (value: unknown): unknown => {
    for (const m of Array.isArray(value) ? value : [value]) {
      const id = (m as { id?: unknown } | null)?.id;
      if ((typeof id === 'string' || typeof id === 'number') && !Object.hasOwn(m as object, 'method')) remaining.delete(id);
    }
    return filterToolsListMessage(value, state.toolsListIds, mayList);
  };
  const onGiveUp = () => ctx.log.warn({ limitBytes: FILTER_LIMIT_BYTES }, 'tools/list answer too large to filter; passed unfiltered');
  if (mediaType === 'application/json') {
    return { kind: 'pass', transform: createJsonResponseFilter({ rewrite, limit: FILTER_LIMIT_BYTES, onGiveUp }) };
  }
  if (mediaType === 'text/event-stream') {
    return {
      kind: 'pass',
      transform: createSseResponseFilter({ rewrite, limit: FILTER_LIMIT_BYTES, onGiveUp, done: () => remaining.size === 0 }),
    };
  }
  return PASS;
}

/**
 * A tool stays listed unless the user lacks one of the extra scopes this tool needs (`toolScopes`,
 * README "filterToolsList"). Seeing the catalogue is what `tools/list` itself needs; calling a tool
 * (`mcp:tools:write`) is a separate right, so a reader still sees the tools they cannot call yet.
 */
function mayListFor(policy: McpPolicy, grants: ReadonlySet<string>): (tool: string) => boolean {
  return (tool) => (policy.toolScopes.get(tool) ?? []).every((s) => grants.has(s));
}

/**
 * Shapes a later step's 403 (the AS's invalid_scope) on an MCP POST as JSON-RPC errors for its
 * request ids, so MCP clients see the same denial as the policy's own. Other errors keep their shape.
 */
export function mcpFailure(ctx: McpAware, err: ProxyError): ProxyError {
  const state = ctx.mcp;
  if (state === undefined) return err;
  // A failure after the policy let the messages pass (AS or upstream unavailable) is not a denial.
  state.settle(err.status === 403 ? 'denied' : 'allowed');
  if (err.status !== 403 || err.body !== undefined || state.decisions.length === 0) return err;
  return exchangeDenial(err, state.batch, state.decisions);
}
