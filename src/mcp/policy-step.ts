import type { IncomingHttpHeaders } from 'node:http';
import type { WithSubject } from '../auth/stage.js';
import type { McpConfig } from '../config/schema.js';
import { ProxyError } from '../errors.js';
import { mediaTypeOf } from '../http/media-type.js';
import type { Metrics } from '../observability/metrics.js';
import { addLogFields, type RequestContext } from '../pipeline/context.js';
import { hasBody, readBody } from '../pipeline/request-body.js';
import { PASS, type ResponseAction, type UpstreamHead } from '../pipeline/response-action.js';
import { normalizeScopes, type Route } from '../routing/route-table.js';
import { decide, type MessageDecision } from './decide.js';
import { exchangeDenial, policyDenial, withResourceMetadata } from './denial.js';
import { createJsonResponseFilter } from './json-response-filter.js';
import { type JsonRpcId, type McpMessage, parseJsonRpcBody } from './jsonrpc.js';
import { INVALID_REQUEST, jsonRpcErrorBody } from './jsonrpc-errors.js';
import { baseScopes, impliedGrants, type McpPolicy } from './method-scopes.js';
import { checkMirroredHeaders, type HeaderProblem } from './mirrored-headers.js';
import { McpPolicies } from './policies.js';
import { createSseResponseFilter } from './sse-response-filter.js';
import type { McpAware, McpRequestState } from './state.js';
import { filterToolsListMessage } from './tools-list-filter.js';

export interface PolicyDeps {
  readonly metrics: Metrics;
  /** Per-route policies and per-user grants made once (app.ts makes one); without it, per request. */
  readonly mcpPolicies?: McpPolicies | undefined;
}

/** Most a tools/list answer (JSON body or one SSE event) is held for filtering. */
const FILTER_LIMIT_BYTES = 8 * 1024 * 1024;
/** Longest tool or method name written to a log line (agent-controlled text). */
const LOG_NAME_MAX = 128;
const NO_DECISIONS: readonly MessageDecision[] = Object.freeze([]);
const NO_IDS: ReadonlySet<JsonRpcId> = new Set();

/**
 * What the step learned, for the later steps. A class, not an object with a closure: one
 * allocation per MCP request.
 */
class PolicyState implements McpRequestState {
  batch = false;
  decisions: readonly MessageDecision[] = NO_DECISIONS;
  toolsListIds: ReadonlySet<JsonRpcId> = NO_IDS;
  outcome: 'allowed' | 'denied' = 'allowed';
  #settled = false;

  constructor(
    readonly policy: McpPolicy,
    readonly grants: ReadonlySet<string> | undefined,
    private readonly ctx: WithSubject,
    private readonly policies: McpPolicies,
    private readonly config: McpConfig,
  ) {}

  settle(outcome: 'allowed' | 'denied'): void {
    if (this.#settled) return;
    this.#settled = true;
    this.outcome = outcome;
    const { ctx } = this;
    if (ctx.logFields === undefined) ctx.logFields = { mcpOutcome: outcome };
    else ctx.logFields.mcpOutcome = outcome;
    for (const d of this.decisions) this.policies.count(ctx.route, this.config, d.label, outcome);
  }
}

/**
 * Pipeline step 4 (docs/design.md "Request pipeline" step 4), a no-op on routes without `mcp`. On MCP routes it reads
 * and parses the JSON-RPC body of a POST, refuses what the route can never be granted (403, or 400
 * for malformed bodies) before any exchange, and sets `ctx.scopes` to what the messages need:
 * least privilege per call, not the route's whole list. GET (the SSE stream) and DELETE (end of
 * session) carry no message and get the base scope. Synchronous except for a POST, whose body it
 * waits for (one promise: the rest runs when the body is in).
 */
export function enforcePolicy(ctx: WithSubject & McpAware, deps: PolicyDeps): Promise<void> | undefined {
  const route = ctx.route;
  const config = route.mcp;
  if (config === undefined) return undefined;
  const policies = deps.mcpPolicies ?? new McpPolicies(deps.metrics, 1);
  const policy = policies.policyFor(route, config);
  const stated = policies.grantsFor(ctx.subject);
  const grants = stated === undefined ? undefined : impliedGrants(policy, stated);
  const state = new PolicyState(policy, grants, ctx, policies, config);
  ctx.mcp = state;

  const { req } = ctx;
  if (req.method === 'GET' || req.method === 'DELETE') {
    // Only POST bodies are inspected, so no other request may carry one to the upstream.
    if (hasBody(req)) throw new ProxyError('invalid_request', `an MCP ${req.method} request has no body`);
    ctx.scopes = baseScopes(policy, grants);
    return undefined;
  }
  if (req.method !== 'POST') {
    // Streamable HTTP uses POST, GET and DELETE only (MCP basic/transports).
    throw new ProxyError('method_not_allowed', 'MCP endpoints accept POST, GET and DELETE', {
      headers: { allow: 'GET, POST, DELETE' },
    });
  }
  const limit = policy.maxBodyBytes;
  const declared = Number(req.headers['content-length']);
  if (req.headers['transfer-encoding'] === undefined && declared > limit) throw tooLarge(limit);
  // One promise (the body's): decided as soon as it is in.
  return readBody(req, limit).then(
    (body) => decideBody(ctx, state, body),
    (err: unknown) => {
      throw err instanceof ProxyError && err.code === 'payload_too_large' ? tooLarge(limit, err) : err;
    },
  );
}

/** The POST body is in: parse it, decide each message, refuse or set the scopes to ask for. */
function decideBody(ctx: WithSubject & McpAware, state: PolicyState, body: Buffer): void {
  const { policy, grants } = state;
  ctx.body = body;
  const parsed = parseJsonRpcBody(body);
  const { messages } = parsed;
  // Before any decision, exchange or upstream contact: the headers a router may have acted on say
  // what the body says (MCP basic/transports/streamable-http "Server Validation").
  const headers = ctx.req.headers;
  const problem = checkMirroredHeaders((n) => headerValue(headers, n), messages, parsed.batch);
  if (problem !== undefined) throw headerMismatch(problem, parsed.batch, messages);
  // One message (the usual case) without the array helpers of a batch.
  const decisions =
    messages.length === 1 ? [decide(policy, messages[0] as McpMessage)] : messages.map((m) => decide(policy, m));
  state.batch = parsed.batch;
  state.decisions = decisions;
  const fields = logFieldsOf(decisions);
  if (fields.mcpDenied !== undefined) {
    putLogFields(ctx, fields);
    state.settle('denied');
    throw policyDenial(parsed.batch, decisions);
  }
  fields.mcpOutcome = 'allowed';
  putLogFields(ctx, fields);
  ctx.scopes = scopesFor(decisions, policy, grants);

  if (policy.filterToolsList && grants !== undefined) {
    let ids: Set<JsonRpcId> | undefined;
    for (const d of decisions) {
      if (!d.isRequest || d.method !== 'tools/list') continue;
      ids ??= new Set();
      ids.add(d.id as JsonRpcId);
    }
    if (ids !== undefined) {
      state.toolsListIds = ids;
      // The answer must be readable to be filtered: ask the upstream for an uncompressed one.
      delete ctx.req.headers['accept-encoding'];
    }
  }
}

/**
 * The scopes to ask for: what the messages need (one message: its requirement's own sorted array,
 * the same object every time), else the base scope.
 */
function scopesFor(
  decisions: readonly MessageDecision[],
  policy: McpPolicy,
  grants: ReadonlySet<string> | undefined,
): readonly string[] {
  if (decisions.length === 1) {
    const needed = (decisions[0] as MessageDecision).requiredScopes;
    return needed.length > 0 ? needed : baseScopes(policy, grants);
  }
  const needed = decisions.flatMap((d) => d.requiredScopes);
  return needed.length > 0 ? normalizeScopes(needed) : baseScopes(policy, grants);
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : v === undefined ? undefined : v.join(', ');
}

/** HTTP 400 with the JSON-RPC error for a header/body disagreement (-32020 HeaderMismatch). */
function headerMismatch(problem: HeaderProblem, batch: boolean, messages: readonly McpMessage[]): ProxyError {
  const only = messages.length === 1 ? messages[0] : undefined;
  const id = !batch && only?.kind === 'request' ? only.id : null;
  return new ProxyError('invalid_request', 'the MCP request headers do not match its body', {
    detail: `MCP ${problem.message}`,
    body: jsonRpcErrorBody(false, [
      {
        id,
        code: problem.code,
        message: problem.message,
        ...(problem.header === undefined ? {} : { data: { header: problem.header } }),
      },
    ]),
  });
}

/** More than `limit` bytes of body: 413 (RFC 9110 §15.5.14) with a JSON-RPC error body. */
function tooLarge(limit: number, cause?: unknown): ProxyError {
  return new ProxyError('payload_too_large', `the MCP request body is larger than ${limit} bytes`, {
    cause,
    // The rest of the body is discarded (readBody), and the connection closes after the answer.
    headers: { connection: 'close' },
    body: jsonRpcErrorBody(false, [
      { id: null, code: INVALID_REQUEST, message: 'Request body too large', data: { maxBodyBytes: limit } },
    ]),
  });
}

type LogFields = {
  mcpMethod: string | string[];
  mcpTool?: string | string[];
  mcpDenied?: { id: JsonRpcId | null; method: string; reason: string | undefined }[];
  mcpOutcome?: 'allowed';
};

/** addLogFields, taking the object itself when it is the request's first (it is made for this request). */
function putLogFields(ctx: RequestContext, fields: LogFields): void {
  if (ctx.logFields === undefined) ctx.logFields = fields;
  else addLogFields(ctx, fields);
}

function clip(s: string): string {
  return s.length > LOG_NAME_MAX ? `${s.slice(0, LOG_NAME_MAX)}…` : s;
}

function logFieldsOf(decisions: readonly MessageDecision[]): LogFields {
  if (decisions.length === 1) {
    const d = decisions[0] as MessageDecision;
    const fields: LogFields = { mcpMethod: clip(d.method ?? 'response') };
    if (d.tool !== undefined) fields.mcpTool = clip(d.tool);
    if (d.denial !== undefined)
      fields.mcpDenied = [{ id: d.id, method: clip(d.method ?? 'response'), reason: d.denial }];
    return fields;
  }
  const methods = decisions.map((d) => clip(d.method ?? 'response'));
  const tools = decisions.flatMap((d) => (d.tool === undefined ? [] : [clip(d.tool)]));
  const denied = decisions.filter((d) => d.denial !== undefined);
  const fields: LogFields = { mcpMethod: methods.length === 1 ? (methods[0] as string) : methods };
  if (tools.length > 0) fields.mcpTool = tools.length === 1 ? (tools[0] as string) : tools;
  if (denied.length > 0)
    fields.mcpDenied = denied.map((d) => ({ id: d.id, method: clip(d.method ?? 'response'), reason: d.denial }));
  return fields;
}

/**
 * How forward passes an MCP answer: through the tools/list filter when the request asked for
 * tools/list on a `filterToolsList` route and the user's grants are known; else untouched.
 */
export function mcpResponseAction(ctx: RequestContext & McpAware, head: UpstreamHead): ResponseAction {
  const state = ctx.mcp;
  // The upstream answered: the messages went through.
  state?.settle('allowed');
  if (state === undefined || state.toolsListIds.size === 0 || state.grants === undefined || head.status !== 200)
    return PASS;
  const encoding = head.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    ctx.log.warn({ contentEncoding: encoding }, 'tools/list answer is compressed; passed unfiltered');
    return PASS;
  }
  const mediaType = mediaTypeOf(head.headers['content-type']);
  const remaining = new Set(state.toolsListIds);
  const mayList = mayListFor(state.policy, state.grants);
  const rewrite = (value: unknown): unknown => {
    for (const m of Array.isArray(value) ? value : [value]) {
      const id = (m as { id?: unknown } | null)?.id;
      if ((typeof id === 'string' || typeof id === 'number') && !Object.hasOwn(m as object, 'method'))
        remaining.delete(id);
    }
    return filterToolsListMessage(value, state.toolsListIds, mayList);
  };
  const onGiveUp = () =>
    ctx.log.warn({ limitBytes: FILTER_LIMIT_BYTES }, 'tools/list answer too large to filter; passed unfiltered');
  if (mediaType === 'application/json') {
    return { kind: 'pass', transform: createJsonResponseFilter({ rewrite, limit: FILTER_LIMIT_BYTES, onGiveUp }) };
  }
  if (mediaType === 'text/event-stream') {
    return {
      kind: 'pass',
      transform: createSseResponseFilter({
        rewrite,
        limit: FILTER_LIMIT_BYTES,
        onGiveUp,
        done: () => remaining.size === 0,
      }),
    };
  }
  return PASS;
}

/**
 * A tool stays listed unless the user lacks one of the extra scopes this tool needs (`toolScopes`,
 * docs/mcp.md "filterToolsList"). Seeing the catalogue is what `tools/list` itself needs; calling a tool
 * (`mcp:tools:write`) is a separate right, so a reader still sees the tools they cannot call yet.
 */
function mayListFor(policy: McpPolicy, grants: ReadonlySet<string>): (tool: string) => boolean {
  return (tool) => (policy.toolScopes.get(tool) ?? []).every((s) => grants.has(s));
}

/**
 * Shapes a later step's 403 (the AS's invalid_scope) on an MCP POST as JSON-RPC errors for its
 * request ids, so MCP clients see the same denial as the policy's own. Other errors keep their shape.
 * On a route with `mcp.resourceMetadata`, every 401 and 403 challenge names it (RFC 9728 §5.1).
 */
export function mcpFailure(ctx: McpAware & { readonly route?: Route | undefined }, err: ProxyError): ProxyError {
  const metadata = ctx.route?.mcp?.resourceMetadata;
  const state = ctx.mcp;
  if (state === undefined) return withResourceMetadata(err, metadata);
  // A failure after the policy let the messages pass (AS or upstream unavailable) is not a denial.
  state.settle(err.status === 403 ? 'denied' : 'allowed');
  if (err.status !== 403 || err.body !== undefined || state.decisions.length === 0)
    return withResourceMetadata(err, metadata);
  return withResourceMetadata(exchangeDenial(err, state.batch, state.decisions), metadata);
}
