import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { decide } from '../../src/mcp/decide.js';
import type { McpMessage } from '../../src/mcp/jsonrpc.js';
import { compilePolicy, impliedGrants } from '../../src/mcp/method-scopes.js';
import { checkMirroredHeaders, decodeHeaderValue, type MirroredMessage } from '../../src/mcp/mirrored-headers.js';
import { compileRoute } from '../../src/routing/route-table.js';

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' };

function policyOf(mcp: Record<string, unknown> = {}, scopes = ['mcp:tools:read', 'mcp:tools:write']) {
  const config = configSchema.parse({
    authorizationServer: { tokenEndpoint: 'http://as.test/token', clientId: 'c', clientAuth: 'none' },
    routes: [{ name: 'r', match: { pathPrefix: '/mcp' }, upstream: 'http://up.test', scopes, mcp }],
  });
  const route = compileRoute(config.routes[0]!);
  return compilePolicy(route, route.mcp!);
}

const modern = (id: number, method: string, params: Record<string, unknown> = {}): McpMessage => ({
  kind: 'request',
  id,
  method,
  params: { ...params, _meta: META },
});
const legacy = (id: number, method: string, params?: unknown): McpMessage => ({ kind: 'request', id, method, params });

describe('method scopes of both eras', () => {
  const policy = policyOf();

  it('server/discover needs no scope (the base scope), like initialize', () => {
    expect(decide(policy, modern(1, 'server/discover'))).toMatchObject({ requiredScopes: [], denial: undefined });
    expect(decide(policy, legacy(1, 'initialize'))).toMatchObject({ requiredScopes: [], denial: undefined });
  });

  it('subscriptions/listen needs the read scope of each notification type it opts into', () => {
    const listen = (notifications: unknown) => decide(policy, modern(1, 'subscriptions/listen', { notifications }));
    expect(listen({ toolsListChanged: true }).requiredScopes).toEqual(['mcp:tools:read']);
    expect(listen({ toolsListChanged: true, resourceSubscriptions: ['file:///a'] }).requiredScopes).toEqual([
      'mcp:resources:read',
      'mcp:tools:read',
    ]);
    expect(listen({ promptsListChanged: true, resourcesListChanged: true }).requiredScopes).toEqual([
      'mcp:prompts:read',
      'mcp:resources:read',
    ]);
    expect(listen({}).requiredScopes).toEqual([]);
    expect(listen(undefined).denial).toBe('params');
  });

  it('tasks: get and cancel read, update write; completion/complete per ref', () => {
    expect(decide(policy, modern(1, 'tasks/get', { taskId: 't' })).requiredScopes).toEqual(['mcp:tools:read']);
    expect(decide(policy, modern(1, 'tasks/cancel', { taskId: 't' })).requiredScopes).toEqual(['mcp:tools:read']);
    expect(decide(policy, modern(1, 'tasks/update', { taskId: 't' })).requiredScopes).toEqual(['mcp:tools:write']);
    const complete = (ref: unknown) => decide(policy, modern(1, 'completion/complete', { ref }));
    expect(complete({ type: 'ref/prompt', name: 'p' }).requiredScopes).toEqual(['mcp:prompts:read']);
    expect(complete({ type: 'ref/resource', uri: 'u' }).requiredScopes).toEqual(['mcp:resources:read']);
    expect(complete({ type: 'ref/other' }).denial).toBe('params');
    expect(decide(policy, legacy(1, 'completion/complete', { ref: { type: 'ref/prompt' } })).requiredScopes).toEqual([
      'mcp:prompts:read',
    ]);
  });

  it('methods the revision removed pass for 2025 traffic only; its new methods for modern traffic only', () => {
    for (const m of ['ping', 'logging/setLevel', 'initialize', 'resources/subscribe']) {
      expect(decide(policy, legacy(1, m, { uri: 'u' })).denial).not.toBe('method');
      expect(decide(policy, modern(1, m, { uri: 'u' })).denial).toBe('method');
    }
    for (const m of ['server/discover', 'tasks/update']) {
      expect(decide(policy, modern(1, m)).denial).toBeUndefined();
      expect(decide(policy, legacy(1, m)).denial).toBe('method');
    }
  });

  it('methodScopes overrides apply to both eras, and move the derived listen scopes too', () => {
    const custom = policyOf({ methodScopes: { 'tools/list': ['catalog:read'] } }, ['catalog:read', 'mcp:tools:write']);
    expect(decide(custom, modern(1, 'tools/list')).requiredScopes).toEqual(['catalog:read']);
    expect(decide(custom, legacy(1, 'tools/list')).requiredScopes).toEqual(['catalog:read']);
    expect(
      decide(custom, modern(1, 'subscriptions/listen', { notifications: { toolsListChanged: true } })).requiredScopes,
    ).toEqual(['catalog:read']);
  });

  it('scopeImplies widens what a token is judged to grant, transitively', () => {
    const p = policyOf({ scopeImplies: { 'mcp:tools:write': ['mcp:tools:read'], 'mcp:admin': ['mcp:tools:write'] } });
    expect([...impliedGrants(p, new Set(['mcp:admin']))].sort()).toEqual([
      'mcp:admin',
      'mcp:tools:read',
      'mcp:tools:write',
    ]);
    const plain = new Set(['mcp:tools:read']);
    expect(impliedGrants(p, plain)).toBe(plain);
  });
});

describe('checkMirroredHeaders', () => {
  const headers =
    (h: Record<string, string>) =>
    (n: string): string | undefined =>
      h[n];
  const msg = (method: string, params: Record<string, unknown>, kind: MirroredMessage['kind'] = 'request') => ({
    kind,
    method,
    params,
  });
  const ok = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };

  it('passes agreeing headers, and 2025-era messages without them', () => {
    expect(
      checkMirroredHeaders(headers(ok), [msg('tools/call', { name: 'echo', _meta: META })], false),
    ).toBeUndefined();
    expect(checkMirroredHeaders(headers({}), [msg('tools/call', { name: 'echo' })], false)).toBeUndefined();
    expect(
      checkMirroredHeaders(headers({ 'mcp-protocol-version': '2025-11-25' }), [msg('ping', {})], false),
    ).toBeUndefined();
  });

  it('holds 2025-era messages to the mirrored headers they do carry', () => {
    expect(
      checkMirroredHeaders(headers({ 'mcp-method': 'tools/list' }), [msg('tools/call', { name: 'x' })], false),
    ).toMatchObject({ code: -32020, header: 'Mcp-Method' });
    expect(checkMirroredHeaders(headers({ 'mcp-name': 'y' }), [msg('tools/call', { name: 'x' })], false)).toMatchObject(
      { code: -32020, header: 'Mcp-Name' },
    );
  });

  it('modern notifications need no headers but must agree with those they carry', () => {
    const n = msg('notifications/cancelled', { _meta: META }, 'notification');
    expect(checkMirroredHeaders(headers({}), [n], false)).toBeUndefined();
    expect(checkMirroredHeaders(headers({ 'mcp-method': 'tools/call' }), [n], false)).toMatchObject({ code: -32020 });
  });

  it('refuses a non-string _meta version, a Mcp-Name on a method without one, and joined duplicates', () => {
    const claim = { 'io.modelcontextprotocol/protocolVersion': 7 };
    expect(checkMirroredHeaders(headers(ok), [msg('tools/call', { name: 'echo', _meta: claim })], false)).toMatchObject(
      {
        code: -32602,
      },
    );
    expect(
      checkMirroredHeaders(headers({ ...ok, 'mcp-method': 'tools/list' }), [msg('tools/list', { _meta: META })], false),
    ).toMatchObject({ header: 'Mcp-Name' });
    expect(
      checkMirroredHeaders(
        headers({ ...ok, 'mcp-name': 'echo, echo' }),
        [msg('tools/call', { name: 'echo', _meta: META })],
        false,
      ),
    ).toMatchObject({ header: 'Mcp-Name' });
  });

  it('decodes the Base64 sentinel strictly', () => {
    expect(decodeHeaderValue('=?base64?SGVsbG8sIOS4lueVjA==?=')).toBe('Hello, 世界');
    expect(decodeHeaderValue('=?base64?SGVsbG8?=')).toBeUndefined(); // not canonical (no padding)
    expect(decodeHeaderValue('=?base64?/w==?=')).toBeUndefined(); // not UTF-8
    expect(decodeHeaderValue('plain name')).toBe('plain name');
    expect(decodeHeaderValue('caf\u00e9')).toBeUndefined(); // a plain value must be ASCII
  });
});
