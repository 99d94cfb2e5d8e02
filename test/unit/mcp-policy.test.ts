import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { WithSubject } from '../../src/auth/stage.js';
import { describeSubject } from '../../src/auth/token-service.js';
import { configSchema } from '../../src/config/schema.js';
import { ProxyError } from '../../src/errors.js';
import { decide } from '../../src/mcp/decide.js';
import { exchangeDenial, policyDenial } from '../../src/mcp/denial.js';
import { grantsOf } from '../../src/mcp/grants.js';
import { type McpMessage, parseJsonRpcBody } from '../../src/mcp/jsonrpc.js';
import { baseScopes, compilePolicy } from '../../src/mcp/method-scopes.js';
import { enforcePolicy, mcpResponseAction } from '../../src/mcp/policy-step.js';
import type { McpAware } from '../../src/mcp/state.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { type Building, createContext } from '../../src/pipeline/context.js';
import { PASS } from '../../src/pipeline/response-action.js';
import { compileRoute, type Route } from '../../src/routing/route-table.js';

function routeWith(scopes: string[], mcp: Record<string, unknown> = {}): Route {
  const config = configSchema.parse({
    authorizationServer: { tokenEndpoint: 'http://as.test/token', clientId: 'c', clientAuth: 'none' },
    routes: [{ name: 'tools', match: { pathPrefix: '/mcp' }, upstream: 'http://mcp.test', scopes, mcp }],
  });
  return compileRoute(config.routes[0]!);
}

function policyOf(scopes: string[], mcp: Record<string, unknown> = {}) {
  const route = routeWith(scopes, mcp);
  return compilePolicy(route, route.mcp!);
}

const req = (id: number, method: string, params?: unknown): McpMessage => ({ kind: 'request', id, method, params });
const parse = (v: unknown) => parseJsonRpcBody(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));

function thrown(fn: () => unknown): ProxyError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyError);
    return err as ProxyError;
  }
  throw new Error('did not throw');
}

/** A JWT-shaped token with the given payload (decoded, never verified, by the policy). */
function fakeJwt(payload: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none' })}.${b64(payload)}.sig`;
}

describe('parseJsonRpcBody', () => {
  it('parses requests, notifications and responses, single and batched', () => {
    expect(parse({ jsonrpc: '2.0', id: 1, method: 'tools/list' })).toEqual({
      batch: false,
      messages: [{ kind: 'request', id: 1, method: 'tools/list', params: undefined }],
    });
    const batch = parse([
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 'a', result: {} },
      { jsonrpc: '2.0', id: 2, error: { code: 1, message: 'x' } },
    ]);
    expect(batch.batch).toBe(true);
    expect(batch.messages.map((m) => m.kind)).toEqual(['notification', 'response', 'response']);
  });

  it('answers malformed JSON with -32700 and HTTP 400', () => {
    const err = thrown(() => parse('{"jsonrpc":'));
    expect(err.status).toBe(400);
    expect(err.body).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
  });

  it('refuses a byte-order mark and bytes that are not UTF-8 as parse errors', () => {
    const bom = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping"}'),
    ]);
    expect((thrown(() => parseJsonRpcBody(bom)).body as { error: { code: number } }).error.code).toBe(-32700);
    const latin1 = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xe9"}}', 'latin1');
    expect((thrown(() => parseJsonRpcBody(latin1)).body as { error: { code: number } }).error.code).toBe(-32700);
  });

  it.each([
    ['a scalar', 42],
    ['an empty batch', []],
    ['no jsonrpc member', { id: 1, method: 'ping' }],
    ['a numeric method', { jsonrpc: '2.0', id: 1, method: 5 }],
    ['a null request id', { jsonrpc: '2.0', id: null, method: 'ping' }],
    ['scalar params', { jsonrpc: '2.0', id: 1, method: 'ping', params: 'x' }],
    ['a response with both result and error', { jsonrpc: '2.0', id: 1, result: {}, error: {} }],
    ['a batch with one bad element', [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { id: 2 }]],
  ])('answers %s with -32600', (_name, value) => {
    const err = thrown(() => parse(value));
    expect(err.status).toBe(400);
    const body = err.body as { error: { code: number } } | Array<{ error: { code: number } }>;
    expect((Array.isArray(body) ? body[0]! : body).error.code).toBe(-32600);
  });
});

describe('decide: required scopes per message', () => {
  const policy = policyOf(['mcp:tools:read', 'mcp:tools:write', 'mcp:resources:read', 'mcp:prompts:read'], {
    toolScopes: { delete_file: ['files:delete'] },
  });

  it.each([
    ['tools/list', ['mcp:tools:read']],
    ['resources/list', ['mcp:resources:read']],
    ['resources/templates/list', ['mcp:resources:read']],
    ['resources/read', ['mcp:resources:read']],
    ['resources/subscribe', ['mcp:resources:read']],
    ['resources/unsubscribe', ['mcp:resources:read']],
    ['prompts/list', ['mcp:prompts:read']],
    ['prompts/get', ['mcp:prompts:read']],
    ['initialize', []],
    ['ping', []],
  ])('%s needs %j', (method, scopes) => {
    expect(decide(policy, req(1, method))).toMatchObject({ requiredScopes: scopes, denial: undefined });
  });

  it('tools/call needs the write scope plus the tool’s own scopes', () => {
    expect(decide(policy, req(1, 'tools/call', { name: 'read_file' })).requiredScopes).toEqual(['mcp:tools:write']);
    expect(decide(policy, req(1, 'tools/call', { name: 'delete_file' }))).toMatchObject({
      tool: 'delete_file',
      requiredScopes: ['files:delete', 'mcp:tools:write'],
      denial: undefined,
    });
  });

  it('does not take tool scopes from the prototype chain', () => {
    expect(decide(policy, req(1, 'tools/call', { name: '__proto__' })).requiredScopes).toEqual(['mcp:tools:write']);
    expect(decide(policy, req(1, 'tools/call', { name: 'constructor' })).requiredScopes).toEqual(['mcp:tools:write']);
  });

  it('refuses a tools/call without a string tool name', () => {
    expect(decide(policy, req(1, 'tools/call', {})).denial).toBe('params');
    expect(decide(policy, req(1, 'tools/call', { name: 3 })).denial).toBe('params');
  });

  it('needs nothing for notifications in the notifications/ namespace and for responses', () => {
    expect(
      decide(policy, { kind: 'notification', method: 'notifications/initialized', params: undefined }),
    ).toMatchObject({
      requiredScopes: [],
      denial: undefined,
      label: 'notification',
    });
    expect(decide(policy, { kind: 'response', id: 1 })).toMatchObject({ requiredScopes: [], label: 'response' });
  });

  it('checks a method sent as a notification like the request (a server may act on it)', () => {
    expect(
      decide(policy, { kind: 'notification', method: 'tools/call', params: { name: 'delete_file' } }),
    ).toMatchObject({
      requiredScopes: ['files:delete', 'mcp:tools:write'],
      id: null,
      isRequest: false,
    });
    expect(decide(policy, { kind: 'notification', method: 'admin/wipe', params: undefined }).denial).toBe('method');
  });

  it('denies unknown methods unless allowMethods names them', () => {
    expect(decide(policy, req(1, 'tasks/list'))).toMatchObject({ denial: 'method', label: 'other' });
    expect(decide(policy, req(1, 'x/y'))).toMatchObject({ denial: 'method', label: 'other' });
    const allowing = policyOf(['mcp:tools:read'], { allowMethods: ['x/y'] });
    expect(decide(allowing, req(1, 'x/y'))).toMatchObject({ denial: undefined, requiredScopes: [] });
  });

  it('never labels a method with a pseudo-label', () => {
    expect(decide(policy, req(1, 'notification')).label).toBe('other');
    expect(decide(policy, req(1, 'response')).label).toBe('other');
  });

  it('applies methodScopes overrides', () => {
    const custom = policyOf(['mcp:tools:read', 'tools:list'], { methodScopes: { 'tools/list': ['tools:list'] } });
    expect(decide(custom, req(1, 'tools/list')).requiredScopes).toEqual(['tools:list']);
  });

  it('denies a message that needs a scope outside route scopes and tool scopes, before any exchange', () => {
    const narrow = policyOf(['mcp:tools:read', 'mcp:tools:write']);
    expect(decide(narrow, req(1, 'resources/read'))).toMatchObject({
      denial: 'scope',
      requiredScopes: ['mcp:resources:read'],
    });
    const noWrite = policyOf(['mcp:tools:read']);
    expect(decide(noWrite, req(1, 'tools/call', { name: 'x' })).denial).toBe('scope');
  });
});

describe('baseScopes: the scope for messages that need none', () => {
  it('picks the first read scope of the route the user holds', () => {
    const policy = policyOf(['mcp:prompts:read', 'mcp:tools:read', 'mcp:tools:write']);
    expect(baseScopes(policy, new Set(['mcp:tools:read', 'mcp:prompts:read']))).toEqual(['mcp:tools:read']);
    expect(baseScopes(policy, new Set(['mcp:prompts:read']))).toEqual(['mcp:prompts:read']);
  });

  it('takes the first candidate when the grants are unknown or hold none', () => {
    const policy = policyOf(['mcp:prompts:read', 'mcp:tools:read']);
    expect(baseScopes(policy, undefined)).toEqual(['mcp:tools:read']);
    expect(baseScopes(policy, new Set(['other']))).toEqual(['mcp:tools:read']);
  });

  it('falls back to one of the route scopes when it has no read scope, and honours mcp.baseScopes', () => {
    expect(baseScopes(policyOf(['mcp:tools:write']), undefined)).toEqual(['mcp:tools:write']);
    expect(baseScopes(policyOf(['mcp:tools:read', 'mcp:session'], { baseScopes: ['mcp:session'] }), undefined)).toEqual(
      ['mcp:session'],
    );
    expect(baseScopes(policyOf(['mcp:tools:read'], { baseScopes: [] }), undefined)).toEqual([]);
  });
});

describe('denial bodies', () => {
  const policy = policyOf(['mcp:tools:read']);

  it('gives a single denied request one JSON-RPC error with requiredScopes and a scope challenge', () => {
    const err = policyDenial(false, [decide(policy, req(9, 'tools/call', { name: 'x' }))]);
    expect(err.status).toBe(403);
    expect(err.code).toBe('insufficient_scope');
    expect(err.scope).toEqual(['mcp:tools:write']);
    expect(err.body).toEqual({
      jsonrpc: '2.0',
      id: 9,
      error: {
        code: -32003,
        message: 'Insufficient scope',
        data: { error: 'insufficient_scope', requiredScopes: ['mcp:tools:write'] },
      },
    });
  });

  it('refuses a whole batch and names the denied ids in every answer', () => {
    const decisions = [
      decide(policy, req(1, 'tools/list')),
      decide(policy, req(2, 'prompts/get')),
      decide(policy, { kind: 'notification', method: 'notifications/initialized', params: undefined }),
      decide(policy, req(3, 'x/y')),
    ];
    const err = policyDenial(true, decisions);
    // One challenge names every scope the batch needs, not only the missing one.
    expect(err.scope).toEqual(['mcp:prompts:read', 'mcp:tools:read']);
    expect(err.body).toEqual([
      expect.objectContaining({
        id: 1,
        error: expect.objectContaining({ data: { error: 'batch_denied', deniedIds: [2, 3] } }),
      }),
      expect.objectContaining({ id: 2, error: expect.objectContaining({ code: -32003 }) }),
      expect.objectContaining({ id: 3, error: expect.objectContaining({ code: -32601 }) }),
    ]);
  });

  it('answers a tools/call without a name with 400 and -32602', () => {
    const err = policyDenial(false, [decide(policy, req(1, 'tools/call', {}))]);
    expect(err.status).toBe(400);
    expect((err.body as { error: { code: number } }).error.code).toBe(-32602);
  });

  it('reshapes an AS refusal into JSON-RPC errors for each request and keeps the challenge scope', () => {
    const asError = new ProxyError('insufficient_scope', 'refused', {
      scope: ['mcp:tools:write'],
      detail: 'AS said invalid_scope',
    });
    const decisions = [decide(policy, req(5, 'tools/list')), decide(policy, { kind: 'response', id: 1 })];
    const err = exchangeDenial(asError, true, decisions);
    expect(err.status).toBe(403);
    expect(err.scope).toEqual(['mcp:tools:write']);
    expect(err.body).toEqual([expect.objectContaining({ id: 5, error: expect.objectContaining({ code: -32003 }) })]);
    expect(exchangeDenial(asError, false, [decide(policy, { kind: 'response', id: 1 })])).toBe(asError);
  });
});

describe('grantsOf', () => {
  it('reads the scope claim of a JWT and nothing from an opaque token', () => {
    expect(grantsOf(fakeJwt({ scope: 'a b  c' }))).toEqual(new Set(['a', 'b', 'c']));
    expect(grantsOf(fakeJwt({ scp: ['a'] }))).toBeUndefined();
    expect(grantsOf('opaque-token-value')).toBeUndefined();
  });
});

describe('enforcePolicy (step 4)', () => {
  function contextFor(route: Route, method: string, token: string, body?: unknown) {
    const raw = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { host: 'proxy.test', 'accept-encoding': 'gzip' };
    if (raw !== undefined) headers['content-length'] = String(raw.length);
    const request = Object.assign(Readable.from(raw === undefined ? [] : [raw]), { method, headers, url: '/mcp' });
    const response = { setHeader() {}, once() {} };
    const ctx = createContext(
      request as unknown as IncomingMessage,
      response as unknown as ServerResponse,
      pino({ level: 'silent' }),
    );
    const stage: Building<WithSubject & McpAware> = Object.assign(ctx, {
      route,
      forwardPath: '/mcp',
      scopes: route.scopes,
      cacheable: true,
      subject: describeSubject(token),
    });
    return stage;
  }
  const deps = () => ({ metrics: createMetrics({ registry: new Registry(), version: 't', defaultMetrics: false }) });
  const head = { status: 200, headers: { 'content-type': 'application/json' } };

  it('is a no-op on routes without mcp', async () => {
    const config = configSchema.parse({
      authorizationServer: { tokenEndpoint: 'http://as.test/token', clientId: 'c', clientAuth: 'none' },
      routes: [{ name: 'plain', match: { pathPrefix: '/p' }, upstream: 'http://up.test', scopes: ['a'] }],
    });
    const route = compileRoute(config.routes[0]!);
    const ctx = contextFor(route, 'POST', 'opaque', { not: 'json-rpc' });
    await enforcePolicy(ctx, deps());
    expect(ctx.mcp).toBeUndefined();
    expect(ctx.body).toBeUndefined();
    expect(ctx.scopes).toBe(route.scopes);
  });

  it('exchanges only what the messages need, and buffers the body for forward', async () => {
    const route = routeWith(['mcp:tools:read', 'mcp:tools:write'], { toolScopes: { delete_file: ['files:delete'] } });
    const body = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_file' } };
    const ctx = contextFor(route, 'POST', 'opaque', body);
    await enforcePolicy(ctx, deps());
    expect(ctx.scopes).toEqual(['files:delete', 'mcp:tools:write']);
    expect(JSON.parse(ctx.body!.toString())).toEqual(body);
    expect(ctx.logFields).toMatchObject({ mcpMethod: 'tools/call', mcpTool: 'delete_file', mcpOutcome: 'allowed' });
  });

  it('uses the base scope for the GET stream, picked from the user’s grants', async () => {
    const route = routeWith(['mcp:prompts:read', 'mcp:tools:read']);
    const ctx = contextFor(route, 'GET', fakeJwt({ sub: 'u', scope: 'mcp:prompts:read' }));
    await enforcePolicy(ctx, deps());
    expect(ctx.scopes).toEqual(['mcp:prompts:read']);
  });

  it('filters tools/list only when the subject token is a JWT with a scope claim', async () => {
    const route = routeWith(['mcp:tools:read', 'mcp:tools:write'], { filterToolsList: true });
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    const opaque = contextFor(route, 'POST', 'opaque-token', list);
    await enforcePolicy(opaque, deps());
    expect(mcpResponseAction(opaque, head)).toBe(PASS);
    expect(opaque.req.headers['accept-encoding']).toBe('gzip');

    const jwt = contextFor(route, 'POST', fakeJwt({ sub: 'u', scope: 'mcp:tools:read' }), list);
    await enforcePolicy(jwt, deps());
    expect(mcpResponseAction(jwt, head)).toMatchObject({ kind: 'pass', transform: expect.anything() });
    // Asked uncompressed so the answer can be read.
    expect(jwt.req.headers['accept-encoding']).toBeUndefined();
    expect(mcpResponseAction(jwt, { status: 200, headers: { 'content-type': 'text/plain' } })).toBe(PASS);
  });

  it('counts each message once with its final outcome', async () => {
    const route = routeWith(['mcp:tools:read']);
    const d = deps();
    const ctx = contextFor(route, 'POST', 'opaque', [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ]);
    await enforcePolicy(ctx, d);
    mcpResponseAction(ctx, head);
    mcpResponseAction(ctx, head);
    const text = await d.metrics.registry.metrics();
    expect(text).toContain('delegate_proxy_mcp_requests_total{route="tools",method="tools/list",outcome="allowed"} 1');
    expect(text).toContain(
      'delegate_proxy_mcp_requests_total{route="tools",method="notification",outcome="allowed"} 1',
    );
  });
});
